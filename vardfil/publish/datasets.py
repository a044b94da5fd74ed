"""The Parquet datasets a close publishes: the underlag lines, the pseudonymised visits and the ACG
input. Their columns are a contract (``underlag.parquet``: the README; the others: docs).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from filespec.calendar import Period
from vardfil.analysis import dataset_root
from vardfil.ledger import FileKey, Ledger, ReceivedFile

UNDERLAG_SCHEMA = pa.schema(
    [
        ("period", pa.string()),
        ("file_type", pa.string()),
        ("unit_hsaid", pa.string()),
        ("component", pa.string()),
        ("quantity", pa.decimal128(18, 3)),
        ("unit_price", pa.decimal128(18, 4)),
        ("amount", pa.decimal128(18, 2)),
        ("corrected_period", pa.string()),
    ]
)
# The ACG grouper looks 18 months back (ERSATTNINGSMODELL.md section 5).
ACG_MONTHS = 18

_VGP_ONLY = ("akut", "diagnos_4", "diagnos_5")
_REH_ONLY = ("antal_deltagare",)
_ACG_SCHEMA = pa.schema(
    [
        ("besoksdatum_dat", pa.date32()),
        ("diagnosfalt", pa.string()),
        ("diagnos", pa.string()),
        ("period", pa.string()),
        ("file_type", pa.string()),
        ("vardenhet_hsaid", pa.string()),
        ("listad_vid", pa.string()),
        ("pseudonym", pa.string()),
    ]
)


def atomic(path: Path, write: Callable[[Path], object]) -> Path:
    """Write through a temporary name and rename: a reader sees the old file or the new one. The
    temporary name is the writer's own, so two writers of one file at once (a rerun of a close's
    publishing, the nightly payment run beside the board's button) never rename each other's."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".tmp-{path.name}-")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_underlag_parquet(lines: Iterable[Mapping[str, Any]], path: Path) -> Path:
    """The underlag lines as Parquet with exact decimals (the README's column contract)."""
    lines = list(lines)

    # Through str: a Decimal keeps its digits, a float would bring its binary tail into an amount.
    def dec(v: object, scale: int) -> Decimal | None:
        return None if v is None else Decimal(str(v)).quantize(Decimal(1).scaleb(-scale))

    table = pa.table(
        {
            "period": [ln["period"] for ln in lines],
            "file_type": [ln["file_type"] for ln in lines],
            "unit_hsaid": [ln["unit_hsaid"] for ln in lines],
            "component": [ln["component"] for ln in lines],
            "quantity": [dec(ln["quantity"], 3) for ln in lines],
            "unit_price": [dec(ln["unit_price"], 4) for ln in lines],
            "amount": [dec(ln["amount"], 2) for ln in lines],
            "corrected_period": [ln["corrected_period"] for ln in lines],
        },
        schema=UNDERLAG_SCHEMA,
    )
    return atomic(path, lambda tmp: pq.write_table(table, tmp))


_NOT_SEEN = object()


def pseudonymise(ids: pl.Series, key: bytes) -> pl.Series:
    """A keyed pseudonym (HMAC-SHA256, hex, 32 characters) per patient id; computed per unique id.

    The keyed HMAC state is made once and copied per id (``hmac.HMAC.copy``, the standard
    library's own: ~1.1 µs an id here, as fast as the hand-written HMAC on CPython's private SHA-256
    it replaced). ``tests/test_close.py`` checks the value against ``hmac.new`` for random keys
    and ids, and that a null stays null.
    """
    keyed = hmac.new(key, digestmod=hashlib.sha256)
    # Row by row with the digests kept per id: one HMAC a unique id, and no unique() and
    # replace_strict() round trip (which cost polars as much as the HMACs of a month file).
    seen: dict[str | None, str | None] = {None: None}
    out = []
    for i in ids.to_list():
        d = seen.get(i, _NOT_SEEN)
        if d is _NOT_SEEN:
            h = keyed.copy()
            h.update(i.encode())
            d = seen[i] = h.digest()[:16].hex()  # the first 32 hex characters
        out.append(d)
    return pl.Series(ids.name, out, dtype=pl.Utf8)


def _widen(schema: pa.Schema) -> pa.Schema:
    """One schema for VGP and REH visits: every field of either filtyp, as text where absent."""
    names = schema.names
    extra = [pa.field(n, pa.string()) for n in (*_VGP_ONLY, *_REH_ONLY) if n not in names]
    return pa.schema([*schema, *extra])


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` in ``schema``: its columns in that order, a missing one all null, a column cast
    only where its type differs (casting the whole table was 0.7–1.4 ms a unit file)."""
    present = set(table.column_names)
    columns = []
    for f in schema:
        if f.name not in present:
            columns.append(pa.nulls(table.num_rows, f.type))
        elif (column := table.column(f.name)).type != f.type:
            columns.append(column.cast(f.type))
        else:
            columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema)


class _RowGroups:
    """A Parquet writer that writes row groups of ~64 K rows from the small tables it is given,
    in a thread of its own.

    Written as given, each unit's file was a row group of its own (~1,700 rows; 600 a month over
    the two datasets): the metadata and compressor set-up per row group were a seventh of the
    close (1.0 s of 7.2 s), and readers paid for them again. pyarrow compresses without holding
    the GIL, so a row group is written while the close computes the next units' pseudonyms and
    underlag (at 10× the month's rows the writes were 8 s of a 31 s close). One row group is in
    flight at a time: memory stays two row groups, and the order is the order given.
    """

    ROWS = 65_536

    def __init__(self, path: Path, schema: pa.Schema, *, without_period: Path | None = None):
        """``without_period``: also write the same rows there without the ``period`` column (the
        period's part of the dataset across periods, ``publish_period_datasets``)."""
        self.schema = schema
        self._writer = pq.ParquetWriter(path, schema)
        self._second = (
            pq.ParquetWriter(without_period, schema.remove(schema.get_field_index("period")))
            if without_period is not None
            else None
        )
        self._pending: list[pa.Table] = []
        self._rows = 0
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet")
        self._inflight: Future[None] | None = None

    def write_table(self, table: pa.Table) -> None:
        self._pending.append(table)
        self._rows += table.num_rows
        if self._rows >= self.ROWS:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            batch = pa.concat_tables(self._pending)
            self._pending, self._rows = [], 0
            self._wait()
            self._inflight = self._thread.submit(self._write, batch)

    def _write(self, batch: pa.Table) -> None:
        self._writer.write_table(batch)
        if self._second is not None:
            self._second.write_table(batch.drop_columns(["period"]))

    def _wait(self) -> None:
        if self._inflight is not None:
            inflight, self._inflight = self._inflight, None
            inflight.result()  # a failed write fails the close here

    def close(self) -> None:
        try:
            self._flush()
            self._wait()
        finally:
            self._thread.shutdown(wait=True)
            self._writer.close()
            if self._second is not None:
                self._second.close()

    def discard(self) -> None:
        """Stop without writing what is pending (the close failed; its error is the one to tell)."""
        self._pending = []
        # The close's own error is already on its way up: a write failing as well must not replace it.
        with contextlib.suppress(Exception):
            self._wait()
        self._thread.shutdown(wait=True)
        for writer in (self._writer, self._second):
            with contextlib.suppress(Exception):
                if writer is not None:
                    writer.close()


class VisitDatasets:
    """The close's two visit-level Parquet datasets, written file by file as the close reads each
    unit's accepted rows once (memory follows the largest file, not the month):

    - ``besok.parquet``: the accepted visits of the files the close took, with a keyed pseudonym
      instead of the patient id;
    - ``acg.parquet``: every accepted diagnosis of a person listed in P over the last 18 periods,
      pseudonymised. P's own rows are those of the files the close took; each earlier period
      contributes the gällande file of each unit as of the close (late files included).

    Each file's pseudonyms are computed once (HMAC per unique id) and serve both datasets. Both
    are written to temporary names and renamed by :meth:`commit`.
    """

    def __init__(
        self,
        *,
        ledger: Ledger,
        read_accepted: Callable[[ReceivedFile | None], pl.DataFrame | None],
        pseudonym_key: bytes,
        period: Period,
        at: dt.datetime,
        listing: pl.DataFrame | None,
        out_dir: Path,
    ):
        self.period, self.key = period, pseudonym_key
        out_dir.mkdir(parents=True, exist_ok=True)
        self.paths = {name: out_dir / f"{name}.parquet" for name in ("besok", "acg")}
        self.paths["besok-dataset"] = dataset_ready(out_dir)
        self.tmp = {name: p.with_name(f".tmp-{p.name}") for name, p in self.paths.items()}
        self.listed = (
            listing.select("patient_id", pl.col("vardenhet_hsaid").alias("listad_vid")) if listing is not None else None
        )
        self.visits: _RowGroups | None = None
        self.acg = _RowGroups(self.tmp["acg"], _ACG_SCHEMA) if self.listed is not None else None
        self._acg_pending: list[pl.DataFrame] = []
        self._acg_rows = 0
        if self.acg is not None:
            # The earlier periods go in first, as of the close: a file sent late for one of them
            # is in this close's ACG input even though it is settled as a RATTELSE.
            first = Period.parse(period).shift(-(ACG_MONTHS - 1))
            for key, f in ledger.files.gallande_files(since=first, before=period, as_of=at).items():
                acc = read_accepted(f)
                if acc is not None and acc.height:
                    self._add_acg(acc, key, None)

    # Diagnosis rows gathered before they are matched with the listing: one join per ~256 K rows,
    # not one per file. Each join reads the whole listing, ~22 ms a file at national scale (1.4 M
    # persons), 6.6 s of the close's 300 files and again for each of the 17 earlier periods.
    ACG_BATCH_ROWS = 262_144

    def _add_acg(self, acc: pl.DataFrame, key: FileKey, pseudonyms: pl.Series | None) -> None:
        """A file's diagnoses for the ACG input; ``pseudonyms``: the file's own, row for row (the
        close's files), or None (an earlier period's: computed for its listed persons only)."""
        assert self.acg is not None
        diag_cols = [c for c in acc.columns if c.startswith("diagnos_")]
        pseudonym = pseudonyms if pseudonyms is not None else pl.lit(None, pl.Utf8)
        long = (
            acc.select("patient_id", pseudonym.alias("pseudonym"), "besoksdatum_dat", *diag_cols)
            .unpivot(
                index=["patient_id", "pseudonym", "besoksdatum_dat"],
                on=diag_cols,
                variable_name="diagnosfalt",
                value_name="diagnos",
            )
            .drop_nulls("diagnos")
            .with_columns(
                pl.lit(str(key.period)).alias("period"),
                pl.lit(key.file_type).alias("file_type"),
                pl.lit(key.unit_hsaid).alias("vardenhet_hsaid"),
            )
        )
        self._acg_pending.append(long)
        self._acg_rows += long.height
        if self._acg_rows >= self.ACG_BATCH_ROWS:
            self._flush_acg()

    def _flush_acg(self) -> None:
        """Match the gathered diagnoses with the listing (in the order added) and write them."""
        assert self.acg is not None and self.listed is not None
        if not self._acg_pending:
            return
        batch = pl.concat(self._acg_pending, how="vertical")
        self._acg_pending, self._acg_rows = [], 0
        listed = batch.join(self.listed, on="patient_id", how="inner", maintain_order="left")
        unknown = listed.filter(pl.col("pseudonym").is_null())["patient_id"].unique()
        if unknown.len():  # an earlier period's persons: one HMAC each, for the listed ones only
            named = pl.col("patient_id").replace_strict(unknown, pseudonymise(unknown, self.key), default=None)
            listed = listed.with_columns(pl.col("pseudonym").fill_null(named))
        if listed.height:
            self.acg.write_table(listed.select(_ACG_SCHEMA.names).to_arrow().cast(_ACG_SCHEMA))

    def add(self, key: FileKey, f: ReceivedFile | None, acc: pl.DataFrame | None) -> None:
        """The accepted rows of a file the close took (None or empty: nothing to add)."""
        if f is None or acc is None or acc.height == 0:
            return
        pseudonyms = pseudonymise(acc["patient_id"], self.key)
        # The patient id never leaves the store: the dataset carries the keyed pseudonym instead.
        table = (
            acc.with_columns(
                pl.lit(str(self.period)).alias("period"),
                pl.lit(key.file_type).alias("file_type"),
                pl.lit(f.receipt_id).alias("receipt_id"),
                pseudonyms.alias("pseudonym"),
            )
            .drop("patient_id")
            .to_arrow()
        )
        # One schema for both filtyper, fixed by the first file: later files are conformed to it
        # (a Parquet file has one schema, and analysts read VGP and REH visits together).
        if self.visits is None:
            # The period's part of the visit dataset across periods is written beside it, in the
            # writer's thread: copied after the close it was ~1 s of the month's close (~6 s at 10×).
            self.visits = _RowGroups(self.tmp["besok"], _widen(table.schema), without_period=self.tmp["besok-dataset"])
        self.visits.write_table(_conform(table, self.visits.schema))
        if self.acg is not None:
            self._add_acg(acc, key, pseudonyms)

    def commit(self) -> None:
        """Close both writers and rename the datasets into place (an empty frame where none)."""
        if self.acg is not None:
            self._flush_acg()
        for writer in (self.visits, self.acg):
            if writer is not None:
                writer.close()
        for name, writer in (("besok", self.visits), ("acg", self.acg)):
            if writer is None:
                pl.DataFrame().write_parquet(self.tmp[name])
            self.tmp[name].replace(self.paths[name])
        if self.visits is not None:
            self.tmp["besok-dataset"].replace(self.paths["besok-dataset"])

    def abandon(self) -> None:
        """Close both writers and remove the temporary files (the close failed)."""
        self._acg_pending = []
        for writer in (self.visits, self.acg):
            if writer is not None:
                writer.discard()
        for tmp in self.tmp.values():
            tmp.unlink(missing_ok=True)


# --- datasets across periods (the analysts' year) ----------------------------------------------

DATASETS = ("underlag", "besok", "leveranser")
_DELIVERY_SCHEMA = pa.schema(
    [
        ("unit_hsaid", pa.string()),
        ("file_type", pa.string()),
        ("namn", pa.string()),
        ("receipt_id", pa.string()),
        ("file_name", pa.string()),
        ("received_at", pa.timestamp("us", tz="UTC")),
        ("on_time", pa.bool_()),
        ("delivery", pa.string()),
        ("rows_total", pa.int64()),
        ("rows_accepted", pa.int64()),
        ("rows_rejected", pa.int64()),
        ("rejected_share", pa.float64()),
        # Persons listed at the unit on the period's last day (VGP; null for REH): visits per listed person.
        ("listed", pa.int64()),
    ]
)


def _partition(root: Path, name: str, period: Period, table: pa.Table) -> Path:
    # Hive partitioning: the period is the folder's name, not a column of the file, so pyarrow and
    # pandas read `period` from the path and a filter on it reads only that folder.
    if "period" in table.column_names:
        table = table.drop_columns(["period"])
    return atomic(root / name / f"period={period}" / "part-0.parquet", lambda tmp: pq.write_table(table, tmp))


def dataset_ready(period_dir: Path) -> Path:
    """Where a close leaves its period's part of the visit dataset across periods until it is
    published (``publish_period_datasets`` moves it into place)."""
    return period_dir / ".besok-dataset.parquet"


def publish_period_datasets(*, output: Path, period: Period, deliveries: list[dict[str, Any]]) -> list[Path]:
    """Add a closed period to the datasets across periods: its underlag lines and pseudonymised
    visits (copied from the close's own files) and its delivery facts. Rewriting a period gives the
    same files, so a re-close or a re-run only refreshes them."""
    root, here = dataset_root(output), output / str(period)
    paths = [
        _partition(root, "underlag", period, pq.read_table(here / "underlag.parquet")),
        _partition(root, "leveranser", period, pa.Table.from_pylist(deliveries, schema=_DELIVERY_SCHEMA)),
    ]
    ready = dataset_ready(here)
    visits: Path | None
    if ready.is_file():  # written by the close beside besok.parquet (the same rows, no period)
        visits = root / "besok" / f"period={period}" / "part-0.parquet"
        visits.parent.mkdir(parents=True, exist_ok=True)
        ready.replace(visits)
    else:  # a re-run of an earlier close's publishing: copied from besok.parquet
        visits = _partition_streamed(root, "besok", period, here / "besok.parquet")
    if visits is not None:  # a close without accepted visits writes an empty file
        paths.append(visits)
    return paths


def _partition_streamed(root: Path, name: str, period: Period, source: Path) -> Path | None:
    """``_partition`` of a Parquet file copied batch by batch: a national month's visits (5 M rows)
    read whole took 2.6 GB at the close; a batch at a time the copy needs a few megabytes."""
    pf = pq.ParquetFile(source)
    names = [n for n in pf.schema_arrow.names if n != "period"]
    if not names:
        return None
    schema = pa.schema([pf.schema_arrow.field(n) for n in names])

    def write(tmp: Path) -> None:
        with pq.ParquetWriter(tmp, schema) as writer:
            for batch in pf.iter_batches(batch_size=65_536, columns=names):
                writer.write_batch(batch)

    return atomic(root / name / f"period={period}" / "part-0.parquet", write)


def publish_deliveries(*, output: Path, period: Period, deliveries: list[dict[str, Any]]) -> Path:
    """(Re)write one period's delivery facts."""
    return _partition(
        dataset_root(output), "leveranser", period, pa.Table.from_pylist(deliveries, schema=_DELIVERY_SCHEMA)
    )
