"""The close of a period (ERSATTNINGSMODELL.md sections 1, 4 and 7).

At or after the deadline, the close of P as of instant T:

1. takes, per unit active in P and its filtyp, the gällande file among those received before the
   deadline (or the unit's dispens) and not after T;
2. computes every unit's underlag (units without a file get the parts that do not depend on one);
3. looks again at every earlier closed period Q: where Q's gällande file as of T is not the one
   last settled, Q is recomputed and the difference is a RATTELSE line of P;
4. records the snapshot (files and hashes, spec, price list, fee table and reference data used),
   the lines and the settlements in one transaction, and writes the Parquet datasets.

Closing a period again returns the recorded close unchanged (idempotent).
"""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import itertools
import json
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import polars as pl

from filespec import Unit, fee_table_for, listing_path, load_listing, price_list_for, spec_for
from filespec.calendar import STOCKHOLM, Period
from reports import UnderlagLine, rattelse_line, total, underlag_for
from vardfil.app import App
from vardfil.delivery import (
    FILE_TYPES,
    ensure_closable,
    ensure_no_open_dispens,
    on_time_file,
    open_dispens,
    period_status,
    unit_deadline,
)
from vardfil.errors import Refused
from vardfil.ledger import FileKey, PeriodClose, ReceivedFile, Settlement, UnderlagLineRow, utcnow
from vardfil.mail import notify_close
from vardfil.metrics import CLOSE_DURATION, CLOSE_LINES, CLOSES
from vardfil.publish.datasets import VisitDatasets, publish_deliveries, publish_period_datasets, write_underlag_parquet
from vardfil.publish.inputs import (
    UnitListings,
    active_units,
    history_since,
    read_accepted,
    reh_history,
    required_listing,
)
from vardfil.publish.record import record_published

_T = TypeVar("_T")
_R = TypeVar("_R")


def unit_underlag(
    app: App,
    unit: Unit,
    period: Period,
    f: ReceivedFile | None,
    at: dt.datetime,
    listing: pl.DataFrame | None,
    *,
    accepted: pl.DataFrame | None = None,
) -> list[UnderlagLine]:
    """The underlag of one unit for one period on a given file (None: no file); ``accepted``: the
    file's accepted rows when the caller has read them already."""
    history = reh_history(app, unit, period, at) if unit.filtyp == "REH" else None
    if accepted is None:
        accepted = read_accepted(app, f)
    return underlag_for(
        unit=unit, period=period, accepted=accepted, listing=listing, history=history, prices=price_list_for(period)
    )


def read_ahead(read: Callable[[_T], _R], items: Iterable[_T], ahead: int = 1) -> Iterator[tuple[_T, _R]]:
    """``(item, read(item))`` in order, the next ``ahead`` items read in a thread meanwhile.

    The close reads each unit's Parquet (pyarrow and polars decode without the GIL) while its own
    thread pseudonymises the unit before; a few files ahead at most, so memory stays a unit or
    two, not the month. A failed read raises here, in order, and fails the close.
    """
    if ahead < 1:
        raise ValueError("read_ahead needs ahead >= 1")
    it = iter(items)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead") as reader:
        pending = collections.deque((item, reader.submit(read, item)) for item in itertools.islice(it, ahead))
        while pending:
            item, reading = pending.popleft()
            for following in itertools.islice(it, 1):
                pending.append((following, reader.submit(read, following)))
            yield item, reading.result()


def close_period(
    period: Period, *, at: dt.datetime, app: App, actor: str, despite_dispens: bool = False
) -> dict[str, Any]:
    """:func:`_close_period`, counted (``vardfil_closes_total`` by result, the duration and lines
    of a close that recorded one). Counted in this process: the portal's closes reach ``/metrics``;
    a CLI's or a DAG task's close shows there through the ledger (the last close per period)."""
    started = time.perf_counter()
    try:
        summary = _close_period(period, at=at, app=app, actor=actor, despite_dispens=despite_dispens)
    except Refused:
        CLOSES.labels("refused").inc()
        raise
    except Exception:
        CLOSES.labels("failed").inc()
        raise
    CLOSES.labels("done").inc()
    if not summary.get("already_closed"):
        CLOSE_DURATION.observe(time.perf_counter() - started)
    return summary


def _close_period(
    period: Period, *, at: dt.datetime, app: App, actor: str, despite_dispens: bool = False
) -> dict[str, Any]:
    """Close ``period`` as of ``at``; returns the JSON summary (the recorded one if already closed).

    Refused (:class:`~vardfil.errors.DispensOpen`) while a unit's dispens is still open at ``at``,
    unless ``despite_dispens``: then the confirmation and the units it passed over are in the
    audit log and the snapshot.

    The walk: choose each unit's file → compute the underlag (and the visit datasets) → the
    corrections of earlier periods → the snapshot → record it all in one transaction → publish."""
    p = Period.parse(period)  # the same period when a caller (a test) names it as text
    ensure_closable(p, at)
    # A close is recorded once: a rerun (Airflow retry, the nightly fallback, an analyst's second
    # click) answers with what was recorded, never with a second, possibly different, underlag.
    existing = close_summary(app, p)
    if existing is not None:
        publish_year(app, p, fresh=False)  # refreshes what an interrupted close did not write
        notify_close(app, existing)  # sends only what a failed or interrupted close did not
        return existing

    passed_over = open_dispens(app.ledger, p, at)
    if passed_over and not despite_dispens:
        ensure_no_open_dispens(app.ledger, p, at)
    now = utcnow()
    units = active_units(app, p)
    listing = required_listing(app, p, units)
    taken = _choose(app, p, units, at)
    lines, settlements = _compute(app, p, at, now, taken, listing)
    rattelser = _corrections(app, p, at, now)
    lines += [line for line, _ in rattelser if line is not None]
    settlements += [s for _, s in rattelser]
    line_dicts = [ln.as_dict() for ln in lines]
    underlag_path = write_underlag_parquet(line_dicts, app.output / str(p) / "underlag.parquet")
    chosen = [(unit, f) for unit, _, f in taken]
    snapshot = _snapshot(app, p, at, chosen, listing)
    if passed_over:  # only then: the snapshots of every other close stay as they were
        snapshot["despite_dispens"] = {u: until.isoformat() for u, until in passed_over.items()}
    _record(
        app,
        PeriodClose(
            period=str(p),
            closed_at=at,
            recorded_at=now,
            actor=actor,
            snapshot=json.dumps(snapshot, ensure_ascii=False, sort_keys=True),
            underlag_path=str(underlag_path),
            total=str(total(lines)),
        ),
        line_dicts,
        settlements,
        audit_detail={
            "at": snapshot["at"],
            "total": str(total(lines)),
            "lines": len(line_dicts),
            "rattelser": sum(line is not None for line, _ in rattelser),
            "missing": [u.hsaid for u, f in chosen if f is None],
            **({"despite_dispens": snapshot["despite_dispens"]} if passed_over else {}),
        },
    )
    CLOSE_LINES.inc(len(line_dicts))
    summary = close_summary(app, p, already_closed=False)
    assert summary is not None  # recorded just now, by this close or a concurrent one
    publish_year(app, p, fresh=True)
    # The units hear that their underlag is ready, the analysts how the month went (each once).
    notify_close(app, summary)
    return summary


def _gallrade(app: App, receipts: list[str]) -> list[dict[str, str]]:
    gone = []
    for rid in receipts:
        f = app.ledger.files.file_by_receipt(rid)
        if f is not None and f.gallrad_at is not None:
            gone.append({"receipt_id": rid, "gallrad_at": f.gallrad_at.isoformat(), "decision": f.gallrad_by or ""})
    return gone


Taken = list[tuple[Unit, FileKey, ReceivedFile | None]]


def _choose(app: App, p: Period, units: list[Unit], at: dt.datetime) -> Taken:
    """Each active unit's file: the newest usable one received before its own deadline (its
    dispens, if any) and not after ``at``; a later file is settled as a RATTELSE later."""
    dispens = app.ledger.decisions.dispens_for_period(p)
    # Every unit's files of the period asked for once (one query a unit each was ~0.5 s of a
    # 300-unit close); each unit's file is chosen by the same rule.
    slots = app.ledger.files.files_of_period(p)
    taken: Taken = []
    for unit in units:
        key = FileKey(unit_hsaid=unit.hsaid, file_type=unit.filtyp, period=p)
        taken.append((unit, key, on_time_file(slots.get(key, ()), unit_deadline(p, dispens.get(unit.hsaid)), as_of=at)))
    return taken


def _compute(
    app: App, p: Period, at: dt.datetime, now: dt.datetime, taken: Taken, listing: pl.DataFrame | None
) -> tuple[list[UnderlagLine], list[Settlement]]:
    """Every unit's underlag and settlement on its chosen file, and the period's visit datasets."""
    listings = UnitListings(listing, p)
    # Every REH unit's history asked for once, for the first-visit rule.
    reh_files: dict[str, list[ReceivedFile]] = {}
    for hkey, hf in app.ledger.files.gallande_files(
        before=p, since=history_since(p), file_type="REH", as_of=at
    ).items():
        reh_files.setdefault(hkey.unit_hsaid, []).append(hf)
    datasets = VisitDatasets(
        ledger=app.ledger,
        read_accepted=lambda f: read_accepted(app, f),
        pseudonym_key=app.pseudonym_key,
        period=p,
        at=at,
        listing=listing,
        out_dir=app.output / str(p),
    )
    prices = price_list_for(p)
    lines: list[UnderlagLine] = []
    settlements: list[Settlement] = []

    def read(item: tuple[Unit, FileKey, ReceivedFile | None]) -> tuple[pl.DataFrame | None, pl.DataFrame | None]:
        unit, _, f = item
        history = reh_history(app, unit, p, at, files=reh_files.get(unit.hsaid, ())) if unit.filtyp == "REH" else None
        return read_accepted(app, f), history  # read once: the underlag and both datasets

    # A unit's underlag (polars, mostly outside the GIL) is computed in a thread while this one
    # pseudonymises and writes its visits (Python's HMACs, pyarrow): the ledger is read here only.
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="underlag")
    try:
        for (unit, key, f), (accepted, history) in read_ahead(read, taken):
            computing = pool.submit(
                underlag_for,
                unit=unit,
                period=p,
                accepted=accepted,
                listing=listings.of(unit.hsaid),
                history=history,
                prices=prices,
                listed=listings.counted(unit.hsaid),
            )
            datasets.add(key, f, accepted)
            unit_lines = computing.result()
            lines += unit_lines
            settlements.append(
                Settlement(
                    period=str(p),
                    file_type=unit.filtyp,
                    unit_hsaid=unit.hsaid,
                    received_file_id=f.id if f else None,
                    total=str(total(unit_lines)),
                    settled_in=str(p),
                    settled_at=now,
                )
            )
        datasets.commit()
    except BaseException:
        datasets.abandon()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return lines, settlements


def _snapshot(
    app: App, p: Period, at: dt.datetime, chosen: list[tuple[Unit, ReceivedFile | None]], listing: pl.DataFrame | None
) -> dict[str, Any]:
    """Everything the close used: the files and their hashes, the spec versions, the price list,
    the fee table and the reference data (with the listing) by hash."""
    period = str(p)
    prices, fees = price_list_for(period), fee_table_for(period)
    listing_file = listing_path(app.reference.root, period)
    return {
        "period": period,
        "at": at.astimezone(STOCKHOLM).isoformat(),
        "deadline": p.deadline.isoformat(),
        "files": [
            {
                "unit_hsaid": u.hsaid,
                "file_type": u.filtyp,
                "receipt_id": f.receipt_id if f else None,
                "sha256": f.sha256 if f else None,
                "file_name": f.file_name if f else None,
            }
            for u, f in chosen
        ],
        "spec_versions": sorted({s.spec_version for ft in FILE_TYPES if (s := spec_for(ft, period))}),
        "price_list": {"version": prices.version, "sha256": prices.sha256},
        "fee_table": {"version": fees.version, "sha256": fees.sha256},
        "reference": dict(
            sorted(
                {
                    **app.reference.hashes,
                    **(
                        {listing_file.name: hashlib.sha256(listing_file.read_bytes()).hexdigest()}
                        if listing is not None
                        else {}
                    ),
                }.items()
            )
        ),
    }


def _record(
    app: App,
    close: PeriodClose,
    line_dicts: list[dict[str, Any]],
    settlements: list[Settlement],
    *,
    audit_detail: dict[str, Any],
) -> None:
    """The close, its lines and settlements in one transaction (a concurrent close of the same
    period that won is kept: the summary is then read from what it recorded)."""
    app.ledger.closes.record_close(
        close,
        [
            UnderlagLineRow(
                close_period=close.period,
                period=ln["period"],
                file_type=ln["file_type"],
                unit_hsaid=ln["unit_hsaid"],
                component=ln["component"],
                quantity=_text(ln["quantity"]),
                unit_price=_text(ln["unit_price"]),
                amount=str(ln["amount"]),
                corrected_period=ln["corrected_period"],
            )
            for ln in line_dicts
        ],
        settlements,
        audit_detail=audit_detail,
    )


def publish_year(app: App, period: Period, *, fresh: bool) -> None:
    """The closed period in the datasets across periods (``vardfil.analysis``): its lines, visits
    and the delivery of every unit; and, for each earlier period this close corrects, that period's
    deliveries again (its late files have arrived since its own close). Every file is recorded
    with its hash (``fresh``: written by this close; else a rerun, which adds only what is missing)."""
    here = app.output / str(period)
    written = [here / name for name in ("underlag.parquet", "besok.parquet", "acg.parquet")]
    written += publish_period_datasets(output=app.output, period=period, deliveries=delivery_rows(app, period))
    record_published(app, period, written, replace=fresh)
    corrected = {
        Period.parse(ln.corrected_period) for ln in app.ledger.closes.underlag_lines(period) if ln.corrected_period
    }
    for q in sorted(corrected):
        path = publish_deliveries(output=app.output, period=q, deliveries=delivery_rows(app, q))
        record_published(app, q, [path])


def delivery_rows(app: App, period: Period) -> list[dict[str, Any]]:
    """Per active unit of a closed period: the file its close took, or what arrived since."""
    pc = app.ledger.closes.close_of(period)
    assert pc is not None
    taken = {f["unit_hsaid"]: f["receipt_id"] for f in json.loads(pc.snapshot)["files"]}
    listing = load_listing(app.reference.root, period)
    listed = {} if listing is None else dict(listing.group_by("vardenhet_hsaid").len().iter_rows())
    rows = []
    # Everything received by now, not only by the close: a late file shows as late (it is paid as
    # a correction later), not as missing.
    for st in period_status(app.ledger, app.reference, period).units:
        shown = st.counted_file
        rows.append(
            {
                "unit_hsaid": st.unit.hsaid,
                "file_type": st.unit.filtyp,
                "namn": st.unit.namn,
                "receipt_id": taken.get(st.unit.hsaid),
                "file_name": shown.file_name if shown else None,
                "received_at": shown.received_at if shown else None,
                "on_time": shown.on_time if shown else None,
                "delivery": st.delivery.value,
                "rows_total": shown.rows_total if shown else None,
                "rows_accepted": shown.rows_accepted if shown else None,
                "rows_rejected": shown.rows_rejected if shown else None,
                "rejected_share": (shown.rows_rejected / shown.rows_total) if shown and shown.rows_total else None,
                "listed": listed.get(st.unit.hsaid, 0) if st.unit.filtyp == "VGP" and listing is not None else None,
            }
        )
    return rows


def _text(v: Decimal | None) -> str | None:
    return None if v is None else str(v)


def _corrections(
    app: App, period: Period, at: dt.datetime, now: dt.datetime
) -> list[tuple[UnderlagLine | None, Settlement]]:
    """RATTELSE lines for earlier closed periods whose gällande file changed since it was settled."""
    out = []
    # Every earlier closed period, not only the last twelve: F10 already refuses files older than
    # that, so a period with nothing new costs one query per unit and changes nothing.
    for q in app.ledger.closes.closed_periods(before=period):
        units = active_units(app, q)
        listing = None
        for unit in units:
            settled = app.ledger.closes.settled(q, unit.filtyp, unit.hsaid)
            if settled is None:
                continue
            newest = app.ledger.files.gallande(
                FileKey(unit_hsaid=unit.hsaid, file_type=unit.filtyp, period=q), as_of=at
            )
            if (newest.id if newest else None) == settled.received_file_id:
                continue
            if listing is None and unit.filtyp == "VGP":
                listing = required_listing(app, q, units)
            new_total = total(unit_underlag(app, unit, q, newest, at, listing))
            diff = new_total - Decimal(settled.total)
            settlement = Settlement(
                period=str(q),
                file_type=unit.filtyp,
                unit_hsaid=unit.hsaid,
                received_file_id=newest.id if newest else None,
                total=str(new_total),
                settled_in=str(period),
                settled_at=now,
            )
            line = rattelse_line(unit=unit, period=period, corrected_period=q, amount=diff)
            # A correction of zero kronor changes what was settled on, but pays nothing: no line.
            out.append((line if line.amount != 0 else None, settlement))
    return out


def close_summary(app: App, period: Period, already_closed: bool = True) -> dict[str, Any] | None:
    """The JSON of a recorded close (None: not closed). The Parquet file is derived: rewritten from
    the recorded lines when it has gone missing."""
    pc = app.ledger.closes.close_of(period)
    if pc is None:
        return None
    lines = app.ledger.closes.underlag_lines(period)
    snapshot = json.loads(pc.snapshot)
    path = Path(pc.underlag_path)
    if not path.exists():
        write_underlag_parquet(
            (
                {
                    "period": ln.period,
                    "file_type": ln.file_type,
                    "unit_hsaid": ln.unit_hsaid,
                    "component": ln.component,
                    "quantity": ln.quantity,
                    "unit_price": ln.unit_price,
                    "amount": ln.amount,
                    "corrected_period": ln.corrected_period,
                }
                for ln in lines
            ),
            path,
        )
    totals: dict[tuple[str, str], Decimal] = {}
    for ln in lines:
        if ln.corrected_period is None:
            totals[(ln.unit_hsaid, ln.file_type)] = totals.get((ln.unit_hsaid, ln.file_type), Decimal(0)) + Decimal(
                ln.amount
            )
    return {
        "period": str(period),
        "closed_at": snapshot["at"],
        "deadline": snapshot["deadline"],
        "already_closed": already_closed,
        "underlag_parquet": str(path),
        "besok_parquet": str(path.with_name("besok.parquet")),
        "acg_parquet": str(path.with_name("acg.parquet")),
        "units": [
            {
                "unit_hsaid": f["unit_hsaid"],
                "file_type": f["file_type"],
                "receipt_id": f["receipt_id"],
                "total": str(totals.get((f["unit_hsaid"], f["file_type"]), Decimal("0.00"))),
            }
            for f in snapshot["files"]
        ],
        "missing_units": [f["unit_hsaid"] for f in snapshot["files"] if f["receipt_id"] is None],
        "rattelse": [
            {
                "unit_hsaid": ln.unit_hsaid,
                "file_type": ln.file_type,
                "corrected_period": ln.corrected_period,
                "amount": ln.amount,
            }
            for ln in lines
            if ln.component == "RATTELSE"
        ],
        "total": pc.total,
        "snapshot_sha256": hashlib.sha256(pc.snapshot.encode()).hexdigest(),
        # The received files whose rows were gallrade since (under a recorded decision): the lines
        # and totals above are as recorded, the rows behind them are gone.
        "gallrade": _gallrade(app, [f["receipt_id"] for f in snapshot["files"] if f["receipt_id"]]),
    }
