"""The close of a period (ERSATTNINGSMODELL.md sections 1, 4 and 7).

At or after the deadline, the close of P as of instant T:

1. takes, per unit active in P and its filtyp, the most recently received non-AVVISAD file with
   ``received_at`` before the deadline (or the unit's dispens) and not after T;
2. computes every unit's underlag (units without a file get the parts that do not depend on one);
3. looks again at every earlier closed period Q: where Q's newest non-AVVISAD file received up to
   T is not the one last settled, Q is recomputed and the difference is a RATTELSE line of P;
4. records the snapshot (files and hashes, spec, price list, fee table and reference data used),
   the lines and the settlements in one transaction, and writes the Parquet datasets.

Closing a period again returns the recorded close unchanged (idempotent).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from filespec import (
    Reference,
    ReferenceDataError,
    Unit,
    fee_table_for,
    listing_path,
    load_listing,
    price_list_for,
    spec_for,
)
from reports import UnderlagLine, rattelse_line, total, underlag_for
from validators.window import STOCKHOLM, window_for
from vardfil.ledger import FileKey, Ledger, utcnow
from vardfil.models import PeriodClose, PeriodState, ReceivedFile, Settlement, UnderlagLineRow
from vardfil.store import RawStore

UNDERLAG_SCHEMA = pa.schema([
    ("period", pa.string()), ("file_type", pa.string()), ("unit_hsaid", pa.string()),
    ("component", pa.string()), ("quantity", pa.decimal128(18, 3)), ("unit_price", pa.decimal128(18, 4)),
    ("amount", pa.decimal128(18, 2)), ("corrected_period", pa.string()),
])
ACG_MONTHS = 18


class CloseError(Exception):
    """A close cannot be made as asked."""


class CloseTooEarly(CloseError):
    """The instant is before the period's deadline."""


@dataclass(frozen=True, kw_only=True)
class CloseContext:
    """What a close reads besides the ledger."""

    ledger: Ledger
    store: RawStore
    reference: Reference
    out_root: Path
    pseudonym_key: bytes


def _period_add(period: str, months: int) -> str:
    y, m = int(period[:4]), int(period[5:])
    n = y * 12 + (m - 1) + months
    return f"{n // 12:04d}-{n % 12 + 1:02d}"


def _accepted(ctx: CloseContext, f: ReceivedFile | None) -> pl.DataFrame | None:
    if f is None:
        return None
    if f.accepted_path is None:
        return pl.DataFrame()
    return pl.read_parquet(ctx.store.resolve(f.accepted_path))


def _newest_file(ctx: CloseContext, key: FileKey, at: dt.datetime) -> ReceivedFile | None:
    """Q's newest non-AVVISAD file received up to T (late files included)."""
    return ctx.ledger.gallande(key, as_of=at)


def reh_history(ctx: CloseContext, unit: Unit, period: str, at: dt.datetime) -> pl.DataFrame | None:
    """Accepted rows of the unit's earlier periods: each period's newest non-AVVISAD file as of T."""
    with ctx.ledger.reading() as s:
        periods = sorted(set(s.scalars(select(ReceivedFile.period).where(
            ReceivedFile.unit_hsaid == unit.hsaid, ReceivedFile.file_type == unit.filtyp,
            ReceivedFile.period < period, ReceivedFile.status.in_(("GODKAND", "DELVIS_GODKAND"))))))
    frames = []
    for q in periods:
        acc = _accepted(ctx, _newest_file(ctx, FileKey(unit_hsaid=unit.hsaid, file_type=unit.filtyp, period=q), at))
        if acc is not None and acc.height:
            frames.append(acc.select("patient_id", "besoksdatum_dat", "besok_id"))
    return pl.concat(frames) if frames else None


def _listing(ctx: CloseContext, period: str, units: list[Unit]) -> pl.DataFrame | None:
    listing = load_listing(ctx.reference.root, period)
    if listing is None and any(u.filtyp == "VGP" for u in units):
        raise ReferenceDataError(f"the VGP listing {listing_path(ctx.reference.root, period).name} is missing",
                                 path=listing_path(ctx.reference.root, period))
    return listing


class UnitListings:
    """The listing split by unit once, so each unit's rules read only its own listed persons (a
    filter of the whole listing per unit made the close O(units × listing): 69 s at 10×)."""

    def __init__(self, listing: pl.DataFrame | None):
        self.listing = listing
        self.parts = ({} if listing is None else
                      {k[0]: v for k, v in listing.partition_by("vardenhet_hsaid", as_dict=True).items()})

    def of(self, unit_hsaid: str) -> pl.DataFrame | None:
        if self.listing is None:
            return None
        return self.parts.get(unit_hsaid, self.listing.clear())


def unit_underlag(ctx: CloseContext, unit: Unit, period: str, f: ReceivedFile | None, at: dt.datetime,
                  listing: pl.DataFrame | None, *, accepted: pl.DataFrame | None = None) -> list[UnderlagLine]:
    """The underlag of one unit for one period on a given file (None: no file); ``accepted``: the
    file's accepted rows when the caller has read them already."""
    history = reh_history(ctx, unit, period, at) if unit.filtyp == "REH" else None
    if accepted is None:
        accepted = _accepted(ctx, f)
    return underlag_for(unit=unit, period=period, accepted=accepted, listing=listing,
                        history=history, prices=price_list_for(period))


def _settled(session, period: str, unit: Unit) -> Settlement | None:
    q = select(Settlement).where(Settlement.period == period, Settlement.file_type == unit.filtyp,
                                 Settlement.unit_hsaid == unit.hsaid).order_by(Settlement.id.desc())
    return session.scalars(q).first()


def _d(v: Decimal | None) -> str | None:
    return None if v is None else str(v)


def _write_underlag_parquet(lines: list[dict], path: Path) -> Path:
    def dec(v, scale):
        return None if v is None else Decimal(v).quantize(Decimal(1).scaleb(-scale))

    table = pa.table({
        "period": [ln["period"] for ln in lines], "file_type": [ln["file_type"] for ln in lines],
        "unit_hsaid": [ln["unit_hsaid"] for ln in lines], "component": [ln["component"] for ln in lines],
        "quantity": [dec(ln["quantity"], 3) for ln in lines],
        "unit_price": [dec(ln["unit_price"], 4) for ln in lines],
        "amount": [dec(ln["amount"], 2) for ln in lines],
        "corrected_period": [ln["corrected_period"] for ln in lines],
    }, schema=UNDERLAG_SCHEMA)
    return _atomic(path, lambda tmp: pq.write_table(table, tmp))


def _atomic(path: Path, write) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    write(tmp)
    tmp.replace(path)
    return path


def pseudonymise(ids: pl.Series, key: bytes) -> pl.Series:
    """A keyed pseudonym (HMAC-SHA256, hex, 32 characters) per patient id; computed per unique id.

    HMAC(K, m) = H((K ⊕ opad) ‖ H((K ⊕ ipad) ‖ m)) (RFC 2104). The two keyed SHA-256 states are
    computed once and copied per id: 0.8 µs an id against 2.3 µs for ``hmac.new`` and 1.6 µs for
    ``HMAC.copy`` (whose Python wrapper is most of its cost) — five million ids at national scale.
    ``tests/test_close.py`` checks the value against ``hmac.new`` for random keys and ids.
    """
    uniq = ids.unique().drop_nulls().to_list()
    block = hashlib.sha256().block_size
    k = (hashlib.sha256(key).digest() if len(key) > block else key).ljust(block, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in k))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in k))
    mapping = {}
    for i in uniq:
        h = inner.copy()
        h.update(i.encode())
        o = outer.copy()
        o.update(h.digest())
        mapping[i] = o.hexdigest()[:32]
    return ids.replace_strict(mapping, default=None, return_dtype=pl.Utf8)


def pseudonym_key(home: Path, configured: str | None) -> bytes:
    """The HMAC key: ``VARDFIL_PSEUDONYM_KEY`` when set, else a key file made once under the home."""
    if configured:
        return configured.encode()
    path = home / "pseudonym.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(".tmp-pseudonym.key")
        tmp.write_text(secrets.token_hex(32))
        tmp.chmod(0o600)
        try:
            tmp.rename(path) if not path.exists() else tmp.unlink()
        except FileExistsError:
            tmp.unlink(missing_ok=True)
    return path.read_text().strip().encode()


_VGP_ONLY = ("akut", "diagnos_4", "diagnos_5")
_REH_ONLY = ("antal_deltagare",)
_ACG_SCHEMA = pa.schema([("besoksdatum_dat", pa.date32()), ("diagnosfalt", pa.string()), ("diagnos", pa.string()),
                         ("period", pa.string()), ("file_type", pa.string()), ("vardenhet_hsaid", pa.string()),
                         ("listad_vid", pa.string()), ("pseudonym", pa.string())])


def _widen(schema: pa.Schema) -> pa.Schema:
    """One schema for VGP and REH visits: every field of either filtyp, as text where absent."""
    names = schema.names
    extra = [pa.field(n, pa.string()) for n in (*_VGP_ONLY, *_REH_ONLY) if n not in names]
    return pa.schema([*schema, *extra])


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    for field in schema:
        if field.name not in table.column_names:
            table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    return table.select(schema.names).cast(schema)


class _Datasets:
    """The close's two visit-level Parquet datasets, written file by file as the close reads each
    unit's accepted rows once (memory follows the largest file, not the month):

    - ``besok.parquet``: the accepted visits of the files the close took, with a keyed pseudonym
      instead of the patient id;
    - ``acg.parquet``: every accepted diagnosis of a person listed in P over the last 18 periods,
      pseudonymised. P's own rows are those of the files the close took; each earlier period
      contributes the newest non-AVVISAD file of each unit as of the close (late files included).

    Each file's pseudonyms are computed once (HMAC per unique id) and serve both datasets. Both
    are written to temporary names and renamed by :meth:`commit`.
    """

    def __init__(self, ctx: CloseContext, period: str, at: dt.datetime, listing: pl.DataFrame | None, out_dir: Path):
        self.ctx, self.period = ctx, period
        out_dir.mkdir(parents=True, exist_ok=True)
        self.paths = {name: out_dir / f"{name}.parquet" for name in ("besok", "acg")}
        self.tmp = {name: p.with_name(f".tmp-{p.name}") for name, p in self.paths.items()}
        self.listed = (listing.select("patient_id", pl.col("vardenhet_hsaid").alias("listad_vid"))
                       if listing is not None else None)
        self.visits: pq.ParquetWriter | None = None
        self.acg = pq.ParquetWriter(self.tmp["acg"], _ACG_SCHEMA) if self.listed is not None else None
        if self.acg is not None:
            first = _period_add(period, -(ACG_MONTHS - 1))
            with ctx.ledger.reading() as s:
                keys = set(s.execute(select(ReceivedFile.unit_hsaid, ReceivedFile.file_type, ReceivedFile.period).where(
                    ReceivedFile.period >= first, ReceivedFile.period < period,
                    ReceivedFile.status.in_(("GODKAND", "DELVIS_GODKAND")))).all())
            for unit_hsaid, file_type, q in sorted(keys):
                f = _newest_file(ctx, FileKey(unit_hsaid=unit_hsaid, file_type=file_type, period=q), at)
                acc = _accepted(ctx, f)
                if acc is not None and acc.height:
                    self._add_acg(acc, unit_hsaid, file_type, q, None)

    def _add_acg(self, acc: pl.DataFrame, unit_hsaid: str, file_type: str, q: str,
                 pseudonyms: pl.DataFrame | None) -> None:
        diag_cols = [c for c in acc.columns if c.startswith("diagnos_")]
        long = acc.select("patient_id", "besoksdatum_dat", *diag_cols).unpivot(
            index=["patient_id", "besoksdatum_dat"], on=diag_cols, variable_name="diagnosfalt",
            value_name="diagnos").drop_nulls("diagnos").join(self.listed, on="patient_id", how="inner")
        if long.height == 0:
            return
        if pseudonyms is None:
            long = long.with_columns(pseudonymise(long["patient_id"], self.ctx.pseudonym_key).alias("pseudonym"))
        else:  # the file's own pseudonyms (patient_id, pseudonym), computed once for both datasets
            long = long.join(pseudonyms, on="patient_id", how="left", maintain_order="left")
        part = long.with_columns(pl.lit(q).alias("period"), pl.lit(file_type).alias("file_type"),
                                 pl.lit(unit_hsaid).alias("vardenhet_hsaid"))
        self.acg.write_table(part.select(_ACG_SCHEMA.names).to_arrow().cast(_ACG_SCHEMA))

    def add(self, unit: Unit, f: ReceivedFile | None, acc: pl.DataFrame | None) -> None:
        """The accepted rows of a file the close took (None or empty: nothing to add)."""
        if f is None or acc is None or acc.height == 0:
            return
        pseudonyms = pseudonymise(acc["patient_id"], self.ctx.pseudonym_key)
        table = acc.with_columns(pl.lit(self.period).alias("period"), pl.lit(unit.filtyp).alias("file_type"),
                                 pl.lit(f.receipt_id).alias("receipt_id"),
                                 pseudonyms.alias("pseudonym")).drop("patient_id").to_arrow()
        if self.visits is None:
            self.visits = pq.ParquetWriter(self.tmp["besok"], _widen(table.schema))
        self.visits.write_table(_conform(table, self.visits.schema))
        if self.acg is not None:
            by_id = pl.DataFrame([acc["patient_id"], pseudonyms.alias("pseudonym")]).unique("patient_id")
            self._add_acg(acc, unit.hsaid, unit.filtyp, self.period, by_id)

    def commit(self) -> None:
        for writer in (self.visits, self.acg):
            if writer is not None:
                writer.close()
        for name, writer in (("besok", self.visits), ("acg", self.acg)):
            if writer is None:
                pl.DataFrame().write_parquet(self.tmp[name])
            self.tmp[name].replace(self.paths[name])

    def abandon(self) -> None:
        for writer in (self.visits, self.acg):
            if writer is not None:
                writer.close()
        for tmp in self.tmp.values():
            tmp.unlink(missing_ok=True)


def close_period(period: str, *, at: dt.datetime, ctx: CloseContext, actor: str) -> dict:
    """Close ``period`` as of ``at``; returns the JSON summary (the recorded one if already closed)."""
    window = window_for(period)
    if at < window.deadline:
        raise CloseTooEarly(f"period {period} cannot be closed before its deadline {window.deadline.isoformat()}")
    existing = _existing_summary(ctx, period)
    if existing is not None:
        return existing

    units = sorted((u for u in ctx.reference.units.values() if u.active_in(period)), key=lambda u: (u.filtyp, u.hsaid))
    listing = _listing(ctx, period, units)
    listings = UnitListings(listing)
    lines: list[UnderlagLine] = []
    chosen: list[tuple[Unit, ReceivedFile | None]] = []
    settlements: list[Settlement] = []
    now = utcnow()
    out_dir = ctx.out_root / period
    datasets = _Datasets(ctx, period, at, listing, out_dir)
    try:
        for unit in units:
            key = FileKey(unit_hsaid=unit.hsaid, file_type=unit.filtyp, period=period)
            limit = ctx.ledger.dispens_deadline(unit.hsaid, period) or window.deadline
            f = ctx.ledger.gallande(key, received_before=limit, as_of=at)
            accepted = _accepted(ctx, f)  # read once: the underlag and both datasets
            unit_lines = unit_underlag(ctx, unit, period, f, at, listings.of(unit.hsaid), accepted=accepted)
            datasets.add(unit, f, accepted)
            lines += unit_lines
            chosen.append((unit, f))
            settlements.append(Settlement(period=period, file_type=unit.filtyp, unit_hsaid=unit.hsaid,
                                          received_file_id=f.id if f else None, total=str(total(unit_lines)),
                                          settled_in=period, settled_at=now))
        datasets.commit()
    except BaseException:
        datasets.abandon()
        raise

    rattelser = _corrections(ctx, period, at, now)
    lines += [line for line, _ in rattelser if line is not None]
    settlements += [s for _, s in rattelser]

    line_dicts = [ln.as_dict() for ln in lines]
    underlag_path = _write_underlag_parquet(line_dicts, out_dir / "underlag.parquet")

    prices, fees = price_list_for(period), fee_table_for(period)
    snapshot = {
        "period": period, "at": at.astimezone(STOCKHOLM).isoformat(), "deadline": window.deadline.isoformat(),
        "files": [{"unit_hsaid": u.hsaid, "file_type": u.filtyp,
                   "receipt_id": f.receipt_id if f else None, "sha256": f.sha256 if f else None,
                   "file_name": f.file_name if f else None} for u, f in chosen],
        "spec_versions": sorted({s.spec_version for ft in ("VGP", "REH") if (s := spec_for(ft, period))}),
        "price_list": {"version": prices.version, "sha256": prices.sha256},
        "fee_table": {"version": fees.version, "sha256": fees.sha256},
        "reference": dict(sorted({**ctx.reference.hashes, **(
            {listing_path(ctx.reference.root, period).name:
             hashlib.sha256(listing_path(ctx.reference.root, period).read_bytes()).hexdigest()}
            if listing is not None else {})}.items())),
    }
    grand_total = total(lines)
    try:
        with ctx.ledger.transaction() as s:
            s.add(PeriodClose(period=period, closed_at=at, recorded_at=now, actor=actor,
                              snapshot=json.dumps(snapshot, ensure_ascii=False, sort_keys=True),
                              underlag_path=str(underlag_path), total=str(grand_total)))
            s.flush()
            for ln in line_dicts:
                s.add(UnderlagLineRow(close_period=period, period=ln["period"], file_type=ln["file_type"],
                                      unit_hsaid=ln["unit_hsaid"], component=ln["component"],
                                      quantity=_d(ln["quantity"]), unit_price=_d(ln["unit_price"]),
                                      amount=str(ln["amount"]), corrected_period=ln["corrected_period"]))
            s.add_all(settlements)
            state = s.get(PeriodState, period)
            if state is None:
                s.add(PeriodState(period=period, state="CLOSED", updated_at=now))
            ctx.ledger.audit(s, actor=actor, action="period_closed", subject=period,
                             detail={"at": snapshot["at"], "total": str(grand_total), "lines": len(line_dicts),
                                     "rattelser": sum(line is not None for line, _ in rattelser),
                                     "missing": [u.hsaid for u, f in chosen if f is None]})
    except IntegrityError:
        pass  # a concurrent close of the same period won: answer with what it recorded
    return _existing_summary(ctx, period, already_closed=False)


def _corrections(ctx: CloseContext, period: str, at: dt.datetime,
                 now: dt.datetime) -> list[tuple[UnderlagLine | None, Settlement]]:
    """RATTELSE lines for earlier closed periods whose newest file changed since it was settled."""
    out = []
    with ctx.ledger.reading() as s:
        earlier = list(s.scalars(select(PeriodClose.period).where(PeriodClose.period < period)
                                 .order_by(PeriodClose.period)))
        for q in earlier:
            units = sorted((u for u in ctx.reference.units.values() if u.active_in(q)), key=lambda u: (u.filtyp, u.hsaid))
            listing = None
            for unit in units:
                settled = _settled(s, q, unit)
                if settled is None:
                    continue
                newest = _newest_file(ctx, FileKey(unit_hsaid=unit.hsaid, file_type=unit.filtyp, period=q), at)
                if (newest.id if newest else None) == settled.received_file_id:
                    continue
                if listing is None and unit.filtyp == "VGP":
                    listing = _listing(ctx, q, units)
                new_total = total(unit_underlag(ctx, unit, q, newest, at, listing))
                diff = new_total - Decimal(settled.total)
                settlement = Settlement(period=q, file_type=unit.filtyp, unit_hsaid=unit.hsaid,
                                        received_file_id=newest.id if newest else None, total=str(new_total),
                                        settled_in=period, settled_at=now)
                line = rattelse_line(unit=unit, period=period, corrected_period=q, amount=diff)
                # A correction of zero kronor changes what was settled on, but pays nothing: no line.
                out.append((line if line.amount != 0 else None, settlement))
    return out


def _existing_summary(ctx: CloseContext, period: str, already_closed: bool = True) -> dict | None:
    with ctx.ledger.reading() as s:
        pc = s.get(PeriodClose, period)
        if pc is None:
            return None
        lines = list(s.scalars(select(UnderlagLineRow).where(UnderlagLineRow.close_period == period)
                               .order_by(UnderlagLineRow.id)))
    snapshot = json.loads(pc.snapshot)
    path = Path(pc.underlag_path)
    if not path.exists():  # outputs are derived: rewrite from the recorded lines
        _write_underlag_parquet([{
            "period": ln.period, "file_type": ln.file_type, "unit_hsaid": ln.unit_hsaid, "component": ln.component,
            "quantity": ln.quantity, "unit_price": ln.unit_price, "amount": ln.amount,
            "corrected_period": ln.corrected_period} for ln in lines], path)
    totals: dict[tuple[str, str], Decimal] = {}
    for ln in lines:
        if ln.corrected_period is None:
            totals[(ln.unit_hsaid, ln.file_type)] = totals.get((ln.unit_hsaid, ln.file_type), Decimal(0)) + Decimal(ln.amount)
    return {
        "period": period,
        "closed_at": snapshot["at"],
        "deadline": snapshot["deadline"],
        "already_closed": already_closed,
        "underlag_parquet": str(path),
        "besok_parquet": str(path.with_name("besok.parquet")),
        "acg_parquet": str(path.with_name("acg.parquet")),
        "units": [{"unit_hsaid": f["unit_hsaid"], "file_type": f["file_type"], "receipt_id": f["receipt_id"],
                   "total": str(totals.get((f["unit_hsaid"], f["file_type"]), Decimal("0.00")))}
                  for f in snapshot["files"]],
        "missing_units": [f["unit_hsaid"] for f in snapshot["files"] if f["receipt_id"] is None],
        "rattelse": [{"unit_hsaid": ln.unit_hsaid, "file_type": ln.file_type,
                      "corrected_period": ln.corrected_period, "amount": ln.amount}
                     for ln in lines if ln.component == "RATTELSE"],
        "total": pc.total,
        "snapshot_sha256": hashlib.sha256(pc.snapshot.encode()).hexdigest(),
    }
