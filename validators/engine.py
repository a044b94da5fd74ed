"""A file in, a kvittens and the accepted rows out.

Order of work (FILSPECIFIKATION.md section 6, reading 2): the name (F01); the size (F06, then the
content is not read); decoding (F02) and splitting (F05); header and records (F03, F04); the unit
register (F07); the window (F08, F10) and the earlier sequence numbers (F09). Every file rule that
can be evaluated is reported once. A file without a file finding is then judged row by row: R01 by
the reader, every other row rule by the pandera schema built from the spec (``validators.rules``).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import itertools
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandera.polars as pa
import polars as pl
from polars.io.plugins import register_io_source

if TYPE_CHECKING:
    pass

from filespec import (
    FILE_TYPES,
    FileSpec,
    Reference,
    Severity,
    fee_table_for,
    file_rule_messages,
    max_file_bytes,
    spec_for,
)
from filespec.calendar import Period, Window, to_stockholm, window_for
from filespec.errors import InvalidPeriod
from validators.identifiers import mask_expr, mask_identifiers
from validators.kvittens import FINDINGS_CAP, Kvittens, RowCounts, Status, empty_findings
from validators.reader import NFIELDS_COL, ROW_COL, ContentError, NotExact, Records, scan, split_records, stream_frames
from validators.rules import (
    FILE_CHECKS,
    RULE_PREFIX,
    CheckContext,
    RuleColumn,
    build_schema,
    failing,
    prepare,
    rule_columns,
)

FILE_NAME = re.compile(
    rf"^(?P<file_type>{'|'.join(FILE_TYPES)})_"
    r"(?P<hsaid>SE[0-9]{10}-[A-Za-z0-9]{1,18})_"
    r"(?P<year>[0-9]{4})(?P<month>0[1-9]|1[0-2])_(?P<seq>0[1-9]|[1-9][0-9])\.csv"
)


@dataclass(frozen=True, kw_only=True)
class FileName:
    """The parts of a valid file name (section 2)."""

    file_type: str
    unit_hsaid: str
    period: str
    sequence: int


def parse_file_name(name: str) -> FileName | None:
    """The parts of ``FILTYP_HSAID_YYYYMM_NN.csv``, or None (F01)."""
    # fullmatch: ``$`` also matches before a trailing line break, and "….csv\n" is no valid name.
    m = FILE_NAME.fullmatch(name)
    if m is None:
        return None
    try:
        period = Period(int(m["year"]), int(m["month"]))
    except InvalidPeriod:  # year 0000: no such month, so no valid name either
        return None
    return FileName(file_type=m["file_type"], unit_hsaid=m["hsaid"], period=str(period), sequence=int(m["seq"]))


@dataclass(frozen=True, kw_only=True)
class ValidationResult:
    """What validating one file gives: the kvittens, every finding, and the accepted rows.

    ``accepted`` is a polars frame of the accepted rows (``accepted_rows`` the same as a lazy
    query: a scan of the Parquet ``validate_file`` wrote when given ``accepted_to``, else the rows
    in memory; empty with ``keep_accepted=False``): the spec's fields as trimmed strings (null
    when empty), ``rad`` (row number), and the typed values the reimbursement needs
    (``besoksdatum_dat``, ``alder``, ``kon_enligt_id``, ``forvantad_avgift``).
    """

    kvittens: Kvittens
    findings: pl.DataFrame = field(repr=False)
    accepted_rows: pl.LazyFrame = field(repr=False)
    spec: FileSpec | None = None

    @functools.cached_property
    def accepted(self) -> pl.DataFrame:
        """The accepted rows, collected (for tests and tools: the intake has them written to
        Parquet while they are judged, ``validate_file(accepted_to=…)``)."""
        return self.accepted_rows.collect()


def receipt_id(sha256: str, received_at: dt.datetime, file_name: str) -> str:
    """An opaque id, unique per received file, stable for the same bytes, name and instant."""
    # The instant, not its text: the same arrival given with another UTC offset is the same file.
    key = f"{sha256}|{received_at.astimezone(dt.UTC).isoformat()}|{file_name}".encode()
    return "KV-" + hashlib.sha256(key).hexdigest()[:24]


def _file_finding(code: str, message: str, where: str | None = None) -> dict[str, Any]:
    """A file rule's finding; ``where`` says where in the bytes it fired (F02, F05) when known."""
    return {
        "rule": code,
        "severity": Severity.AVVISA_FIL.value,
        "row": None,
        "besok_id": None,
        "field": None,
        "value": where,
        "message": message,
    }


def _sha256_and_size(source: bytes | Path) -> tuple[str, int]:
    if isinstance(source, bytes):
        return hashlib.sha256(source).hexdigest(), len(source)
    h = hashlib.sha256()
    with open(source, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest(), source.stat().st_size


def validate_file(
    source: bytes | Path,
    *,
    file_name: str,
    received_at: dt.datetime,
    reference: Reference,
    earlier_sequences: Iterable[int] = (),
    deadline: dt.datetime | None = None,
    receipt: str | None = None,
    accepted_to: Path | None = None,
    keep_accepted: bool = True,
) -> ValidationResult:
    """Validate one received file.

    ``source`` is the received bytes or a path to them; ``file_name`` the name it was received
    under (only its last path component counts). ``earlier_sequences`` are the sequence numbers of
    every earlier received file of the same unit, filtyp and period, AVVISAD ones included (F09;
    the ledger supplies them). ``deadline`` replaces the period's deadline for ``on_time`` when the
    unit has a dispens. Bad input never raises: it becomes findings.

    ``accepted_to``: write the accepted rows there as Parquet while the rows are judged (a large
    file's rows are then never all in memory); ``accepted_rows`` reads that file. Nothing is left
    there when no row is accepted. Without it the accepted rows are kept in memory, or with
    ``keep_accepted=False`` only counted (``accepted_rows`` is then empty: for a check that needs
    the kvittens alone, such as ``vardfil validate``).
    """
    attempt = functools.partial(
        _validate,
        source,
        file_name=file_name,
        received_at=received_at,
        reference=reference,
        earlier_sequences=tuple(earlier_sequences),
        deadline=deadline,
        receipt=receipt,
        accepted_to=accepted_to,
        keep_accepted=keep_accepted,
    )
    try:
        return attempt(streamed=True)
    except NotExact:
        # A record the piecewise fast path cannot prove (R01, an empty line): the whole file is
        # read again by the paths that handle it; whatever the first attempt wrote is replaced.
        return attempt(streamed=False)


@dataclass(frozen=True, kw_only=True)
class _Rows:
    """The records of a file as the judge takes them: frames of the records with the header's
    number of fields, and the rows without it (R01)."""

    header: list[str]
    frames: Callable[[], Iterator[pl.DataFrame]]  # at least one frame, maybe empty
    broken: pl.DataFrame  # __row of the R01 rows


def _whole_rows(records: Records) -> _Rows:
    header = records.header or []
    k = len(header)
    frame = records.frame
    broken = frame.filter(pl.col(NFIELDS_COL) != k).select(ROW_COL)
    # Without broken rows the frame is used as it is: a filter would copy every column.
    good = frame.filter(pl.col(NFIELDS_COL) == k) if broken.height else frame

    def frames() -> Iterator[pl.DataFrame]:
        for offset in range(0, max(good.height, 1), CHUNK_ROWS):
            yield good.slice(offset, CHUNK_ROWS)

    return _Rows(header=header, frames=frames, broken=broken)


def _validate(
    source: bytes | Path,
    *,
    streamed: bool,
    file_name: str,
    received_at: dt.datetime,
    reference: Reference,
    earlier_sequences: tuple[int, ...],
    deadline: dt.datetime | None,
    receipt: str | None,
    accepted_to: Path | None,
    keep_accepted: bool,
) -> ValidationResult:
    received_at = to_stockholm(received_at)
    deadline = to_stockholm(deadline) if deadline is not None else None
    name = parse_file_name(file_name)
    spec = spec_for(name.file_type, name.period) if name else None
    messages = (spec and {c: r.message for c, r in spec.file_rules.items()}) or file_rule_messages()
    fired: list[str] = [] if name is not None else ["F01"]
    read = _read_container(source, streamed=streamed, max_bytes=spec.max_bytes if spec else max_file_bytes())
    fired += read.fired
    if read.rows is not None and spec is not None:
        header = read.rows.header
        if len(set(header)) != len(header) or set(header) != set(spec.field_names):
            fired.append("F04")
    window = window_for(name.period) if name is not None else None
    if name is not None and window is not None:
        fired += _name_rules(name, spec, window, reference, received_at, earlier_sequences)
    fired = sorted(set(fired))
    base: dict[str, Any] = {
        "receipt_id": receipt or receipt_id(read.sha, received_at, file_name),
        "file_name": file_name,
        "sha256": read.sha,
        "received_at": received_at,
        "file_type": name.file_type if name else None,
        "unit_hsaid": name.unit_hsaid if name else None,
        "period": name.period if name else None,
        "sequence": name.sequence if name else None,
        "spec_version": spec.spec_version if spec else None,
        "deadline": (deadline or window.deadline) if window else None,
        "on_time": window.on_time(received_at, deadline) if window else None,
    }
    if fired:
        return _rejected(base, fired, messages, read.count(), accepted_to, spec, read.where)
    assert spec is not None and read.rows is not None and name is not None
    ctx = CheckContext(
        spec=spec, period=name.period, file_hsaid=name.unit_hsaid, reference=reference, fees=fee_table_for(name.period)
    )
    return _judged_result(
        base, file_name, spec, judge_rows(read.rows, ctx, accepted_to, keep=keep_accepted), accepted_to
    )


@dataclass(frozen=True, kw_only=True)
class _Container:
    """What the container rules found: the bytes' hash and size, the records (None when they
    cannot be read), a way to count them, and the file rules that fired."""

    sha: str
    size: int
    rows: _Rows | None
    count: Callable[[], int]
    fired: list[str]
    where: dict[str, str] = field(default_factory=dict)  # rule -> where in the bytes it fired


def _read_container(source: bytes | Path, *, streamed: bool, max_bytes: int) -> _Container:
    size = len(source) if isinstance(source, bytes) else Path(source).stat().st_size
    if size > max_bytes:
        sha, size = _sha256_and_size(source)  # streamed: an oversized file is never held in memory
        return _Container(sha=sha, size=size, rows=None, count=lambda: 0, fired=["F06"])
    scanned = scan(source)
    if streamed and scanned.streamable:
        assert scanned.header is not None

        def frames() -> Iterator[pl.DataFrame]:
            return stream_frames(source, scanned)

        rows = _Rows(
            header=scanned.header, frames=frames, broken=pl.DataFrame({ROW_COL: []}, schema={ROW_COL: pl.Int64})
        )
        # Every piece proved: at least one record.
        return _Container(
            sha=scanned.sha256, size=scanned.size, rows=rows, count=lambda: sum(f.height for f in frames()), fired=[]
        )
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    try:
        records = split_records(data)
    except ContentError as e:
        return _Container(
            sha=scanned.sha256, size=scanned.size, rows=None, count=lambda: 0, fired=[e.code], where={e.code: e.detail}
        )
    del data
    fired = ["F03"] if records.header is None or records.count == 0 else []
    whole = _whole_rows(records) if records.header is not None else None
    return _Container(
        sha=scanned.sha256,
        size=scanned.size,
        rows=whole,
        count=(lambda: records.count) if whole is not None else (lambda: 0),
        fired=fired,
    )


def _name_rules(
    name: FileName,
    spec: FileSpec | None,
    window: Window,
    reference: Reference,
    received_at: dt.datetime,
    earlier_sequences: tuple[int, ...],
) -> list[str]:
    """The file rules the name, the calendar, the register and the history decide (F07–F10)."""
    fired = []
    if spec is None:
        # Periods before the first spec (2025-01) were settled by the region's earlier system.
        fired.append("F10")
    if not reference.unit_active(name.unit_hsaid, name.file_type, name.period):
        fired.append("F07")
    if window.before_open(received_at):
        fired.append("F08")
    if any(s >= name.sequence for s in earlier_sequences):
        fired.append("F09")
    if spec is not None and window.closed_for_corrections(received_at):
        fired.append("F10")
    return fired


def _rejected(
    base: dict[str, Any],
    fired: list[str],
    messages: dict[str, str],
    total: int,
    accepted_to: Path | None,
    spec: FileSpec | None,
    where: dict[str, str],
) -> ValidationResult:
    """An AVVISAD file by its file rules: every row rejected, no row judged."""
    if accepted_to is not None:
        accepted_to.unlink(missing_ok=True)
    file_findings = [_file_finding(c, messages[c], where.get(c)) for c in fired]
    kv = Kvittens(
        **base,
        status=Status.AVVISAD,
        rows=RowCounts(total=total, accepted=0, rejected=total, with_warnings=0),
        counts_by_rule=dict.fromkeys(fired, 1),
        findings=tuple(file_findings),
        findings_truncated=False,
    )
    return ValidationResult(
        kvittens=kv,
        findings=pl.DataFrame(file_findings, schema=empty_findings().schema),
        accepted_rows=pl.LazyFrame(),
        spec=spec,
    )


def _judged_result(
    base: dict[str, Any], file_name: str, spec: FileSpec, judged: Judged, accepted_to: Path | None
) -> ValidationResult:
    """The kvittens of a file whose rows were judged, with the file rules judged on their outcome."""
    findings, accepted, total = judged.findings, judged.accepted, judged.total
    counts = findings.group_by("rule").len().sort("rule")
    rejected_rows = findings.filter(pl.col("severity") == Severity.FEL.value)["row"].n_unique()
    warned_rows = findings.filter(pl.col("severity") == Severity.VARNING.value)["row"].n_unique()
    if judged.kept != total - rejected_rows:  # the rows written against the findings: never apart
        raise RuntimeError(f"{file_name}: {judged.kept} rows kept, findings reject {rejected_rows} of {total}")
    status = Status.GODKAND if rejected_rows == 0 else Status.DELVIS_GODKAND
    # File rules judged on the outcome of the row rules (F11 from 2026.2, reading 20): they make
    # the file AVVISAD but keep its row findings; their own finding comes first (row null).
    after = [r for r in spec.checked_file_rules if FILE_CHECKS[r.check or ""](total, total - rejected_rows)]
    if after:
        status = Status.AVVISAD
        # The schema is read before the file goes (a scan of a removed file has none).
        accepted = pl.LazyFrame(schema=accepted.collect_schema())
        if accepted_to is not None:
            accepted_to.unlink(missing_ok=True)
        file_part = pl.DataFrame([_file_finding(r.code, r.message) for r in after], schema=empty_findings().schema)
        findings = pl.concat([file_part, findings], how="vertical")
        counts = findings.group_by("rule").len().sort("rule")
    shown = findings.head(FINDINGS_CAP)
    kv = Kvittens(
        **base,
        status=status,
        rows=RowCounts(total=total, accepted=total - rejected_rows, rejected=rejected_rows, with_warnings=warned_rows),
        counts_by_rule=dict(zip(counts["rule"].to_list(), counts["len"].to_list(), strict=True)),
        findings=tuple(shown.iter_rows(named=True)),
        findings_truncated=findings.height > FINDINGS_CAP,
    )
    return ValidationResult(kvittens=kv, findings=findings, accepted_rows=accepted, spec=spec)


# Rows judged at a time when a file is read whole (a streamed file is judged a piece of
# ``reader.CHUNK_BYTES`` at a time): the derived columns and the rules' intermediate columns of a
# whole million-row file were ~4× the file again (benchmarks/RESULTS.md).
CHUNK_ROWS = 200_000

# How the accepted rows are stored. Every reader (the close, the unit's views and workbook) reads
# a file whole, so column statistics (min/max for filters) serve nobody and cost ~20 % of the
# write; zstd at level 1 writes faster than polars' default level and, on these short repetitive
# codes, no larger (benchmarks/RESULTS.md, round three, sixth part).
ACCEPTED_PARQUET: dict[str, Any] = {"statistics": False, "compression": "zstd", "compression_level": 1}

DERIVED = {"__visit": "besoksdatum_dat", "__age": "alder", "__pid_sex": "kon_enligt_id", "__fee": "forvantad_avgift"}


@dataclass(frozen=True, kw_only=True)
class Judged:
    """The row rules' outcome: every finding (sorted), the accepted rows, rows judged and kept."""

    findings: pl.DataFrame
    accepted: pl.LazyFrame
    total: int
    kept: int


def _all(names: list[str]) -> pl.Expr:
    return pl.all_horizontal(names) if names else pl.lit(True)


def _every(frame: pl.DataFrame, names: list[str]) -> pl.Series:
    """Whether each row of ``frame`` passes every verdict column in ``names`` (all when none).

    Series by Series: a query's ``all_horizontal`` over the ~57 verdict columns cost ~1 ms of
    planning a piece, ten times the work, and the pieces of a month file are small.
    """
    if not names:
        return pl.repeat(True, frame.height, dtype=pl.Boolean, eager=True)
    passed = frame.get_column(names[0])
    for name in names[1:]:
        passed = passed & frame.get_column(name)
    return passed


def judge_rows(rows: _Rows, ctx: CheckContext, accepted_to: Path | None = None, *, keep: bool = True) -> Judged:
    """Row rules over the records a frame at a time.

    Each frame's rows are judged by every rule that reads only the row, and its accepted rows are
    written (to ``accepted_to``, or kept in memory) before the next frame is read. Kept from each
    frame: the key columns of the rules that compare a row with the file's other rows (R11, W90)
    and the rows that fail some rule. Those rules are judged at the end over the whole file's
    keys; a row they reject that was already written is taken out again (rare: a repeated
    besok_id). pandera then validates the rows that fail some rule, once, and reports the failure
    cases the findings are built from: a row that passes every rule has none to report.
    """
    judging = _Judging(rows, ctx)
    frames = judging.frames()
    first = next(frames)
    accepted = _accepted(first, frames, accepted_to, keep=keep)
    failed = judging.failed()
    # A row a cross-row FEL rule rejects that no other FEL rule did was written: take it out.
    late = failed.filter(~_every(failed, judging.cross_fel) & _every(failed, judging.local_fel))[ROW_COL]
    kept = judging.written - late.len()
    if late.len():
        gone = ~pl.col("rad").is_in(late.implode())
        if accepted_to is not None:
            again = accepted_to.with_name(accepted_to.name + ".again")
            pl.scan_parquet(accepted_to).filter(gone).sink_parquet(again, **ACCEPTED_PARQUET)
            os.replace(again, accepted_to)
            accepted = pl.scan_parquet(accepted_to)
        else:
            accepted = accepted.filter(gone)
    if accepted_to is not None and kept == 0:
        accepted_to.unlink(missing_ok=True)
        accepted = pl.LazyFrame(schema=first.schema)
    findings = _row_findings(rows, failed, judging.columns, ctx)
    return Judged(findings=findings, accepted=accepted, total=judging.judged + rows.broken.height, kept=kept)


class _Judging:
    """One file's row rules, a frame at a time: what each frame keeps for the end (the cross-row
    rules' keys, the failing rows) and how many rows were judged and written."""

    def __init__(self, rows: _Rows, ctx: CheckContext):
        self.rows, self.ctx, spec = rows, ctx, ctx.spec
        self.names = {f"c{i}": name for i, name in enumerate(rows.header)}
        self.columns = rule_columns(ctx)
        self.local = [c for c in self.columns if not c.cross_row]
        self.cross = [c for c in self.columns if c.cross_row]
        self.local_names = [c.name for c in self.local]
        self.local_fel = [c.name for c in self.local if spec.severity(c.code) is Severity.FEL]
        self.cross_fel = [c.name for c in self.cross if spec.severity(c.code) is Severity.FEL]
        self.key_fields = sorted({"besok_id", *(n for c in self.cross for n in (*c.key, *c.passing.meta.root_names()))})
        self.keys: list[pl.DataFrame] = []
        self.failing_rows: list[pl.DataFrame] = []
        self.written = self.judged = 0

    def frames(self) -> Iterator[pl.DataFrame]:
        """Each frame's accepted rows by the row's own rules, judged as it is read."""
        spec, local, local_names = self.ctx.spec, self.local, self.local_names
        for raw in self.rows.frames():
            chunk = raw.rename(self.names).select(ROW_COL, *spec.field_names)
            del raw
            self.judged += chunk.height
            part = (
                prepare(chunk, self.ctx)
                .select(*[pl.col(a).alias(b) for a, b in DERIVED.items()], *[c.passing for c in local])
                .collect()
            )
            self.keys.append(chunk.select(ROW_COL, *self.key_fields, *[_key_hash(c) for c in self.cross]))
            # Plain column picks and Series operations from here: each eager select or filter with
            # an expression is a small query of its own (~0.3–1 ms a piece, most of a small file's
            # time after the rules).
            verdicts = part[local_names]
            # The failing rows keep only the fields a finding of this piece can show (those of
            # its failing rules, and besok_id): a file whose every row fails one rule keeps one
            # field of each, not the whole file.
            passed = [bool(v.all()) for v in verdicts.get_columns()]
            shown = {"besok_id", *(c.field for c, ok in zip(local, passed, strict=True) if not ok and c.field)}
            self.failing_rows.append(
                chunk[[ROW_COL, *(f for f in spec.field_names if f in shown)]]
                .hstack(verdicts)
                .filter(~_every(verdicts, local_names))
            )
            out = (
                chunk.rename({ROW_COL: "rad"})
                .hstack(part[list(DERIVED.values())])
                .filter(_every(verdicts, self.local_fel))
            )
            self.written += out.height
            yield out

    def failed(self) -> pl.DataFrame:
        """Every row that fails some rule, with a verdict column per rule (the cross-row rules
        judged now, over the whole file's key columns)."""
        every_key = pl.concat(self.keys, how="vertical", rechunk=False)
        self.keys.clear()
        cross_names = [c.name for c in self.cross]
        cross_failing = _cross_failing(every_key, self.cross)
        del every_key
        local_failing = pl.concat(self.failing_rows, how="diagonal_relaxed")
        self.failing_rows.clear()
        if cross_failing.height == 0:
            # The common case: every row passes the cross-row rules. The pieces' failing rows are
            # in row order already; the joins, sort and fill below were ~2 ms of a small file.
            return local_failing.hstack(
                [pl.Series(n, [True] * local_failing.height, dtype=pl.Boolean) for n in cross_names]
            )
        both = local_failing.join(cross_failing.select(ROW_COL, *cross_names), on=ROW_COL, how="left")
        only_cross = cross_failing.join(local_failing.select(ROW_COL), on=ROW_COL, how="anti")
        return (
            pl.concat([both, only_cross], how="diagonal_relaxed")
            .sort(ROW_COL)
            .with_columns(pl.col(c.name).fill_null(True) for c in self.columns)
        )


def _accepted(
    first: pl.DataFrame, frames: Iterator[pl.DataFrame], accepted_to: Path | None, *, keep: bool
) -> pl.LazyFrame:
    """The accepted rows, frame by frame as they are judged: written to ``accepted_to`` (polars
    sinks the frames as they come), kept in memory, or only counted."""
    if accepted_to is not None:
        called: list[bool] = []

        def source(
            with_columns: list[str] | None, predicate: Any, n_rows: int | None, batch: int | None
        ) -> Iterator[pl.DataFrame]:
            if called:  # the frames are read once; a second read would see none
                raise RuntimeError("the accepted rows were asked for twice")
            called.append(True)
            for frame in itertools.chain([first], frames):
                yield frame.select(with_columns) if with_columns else frame

        register_io_source(io_source=source, schema=first.schema).sink_parquet(accepted_to, **ACCEPTED_PARQUET)
        return pl.scan_parquet(accepted_to)
    if keep:
        return pl.concat([first, *frames], how="vertical").lazy()
    for _ in frames:  # judged and counted; the rows are not kept
        pass
    return pl.LazyFrame(schema=first.schema)


def _row_findings(rows: _Rows, failed: pl.DataFrame, columns: list[RuleColumn], ctx: CheckContext) -> pl.DataFrame:
    """The findings of the failing rows (pandera's failure cases) and of the broken records (R01),
    in the region's order, person numbers masked."""
    spec = ctx.spec
    try:
        build_schema(spec, failing(failed, columns)).validate(failed, lazy=True)
        failures = None
    except pa.errors.SchemaErrors as e:
        failures = e.failure_cases.select(
            # Whole-row rules are checked on their verdict column: they have no field.
            pl.when(~pl.col("column").str.starts_with(RULE_PREFIX)).then(pl.col("column")).alias("column"),
            "check",
            pl.col("index").cast(pl.Int64),
        )
    r01 = spec.rule("R01")
    parts = []
    if rows.broken.height:  # each part is a small query: none for what is not there
        parts.append(
            rows.broken.select(
                pl.lit("R01").alias("rule"),
                pl.lit(r01.severity.value).alias("severity"),
                pl.col(ROW_COL).alias("row"),
                pl.lit(None, pl.Utf8).alias("besok_id"),
                pl.lit(None, pl.Utf8).alias("field"),
                pl.lit(None, pl.Utf8).alias("value"),
                pl.lit(r01.message).alias("message"),
            )
        )
    if failures is not None and failures.height:
        parts.extend(_findings_from_failures(failed, failures, ctx))
    findings = pl.concat(parts, how="vertical") if parts else empty_findings()
    # The region's order (examples/expected.json): row, rule code, field name.
    if findings.height:
        findings = findings.sort(["row", "rule", "field"], nulls_last=False)
    # Beyond the spec's masking of patient_id: a valid person number anywhere else in a shown
    # value (typed into a diagnosis field, used as a besok_id) is masked too before the findings
    # reach the kvittens, the findings CSV, the ledger and the workbooks.
    for column in ("value", "besok_id"):
        findings = mask_identifiers(findings, column)
    return findings


def _cross_failing(keys: pl.DataFrame, cross: list[RuleColumn]) -> pl.DataFrame:
    """The rows (``__row``, the key columns and a verdict per rule) that fail a cross-row rule.

    Each rule is judged only on the rows whose key hash occurs more than once: every row with an
    equal key has an equal hash, so those rows hold every repeated key, and a row outside them
    passes. Grouping a million string keys directly held ~180 MB of groups at 1 M rows.
    """
    names = [c.name for c in cross]
    # Most files repeat no key at all: two sorted hash columns tell, and the query is not built
    # (a small saving: 0.2 % of a month file's instructions, benchmarks/RESULTS.md).
    if not names or keys.height == 0 or not any(_repeats(keys[n]) for n in names):
        return keys.clear().select(ROW_COL, *[pl.lit(True).alias(n) for n in names])

    def repeats(name: str) -> pl.Expr:
        # Repeated hashes found by sorting (two copies of 8 bytes a row); ``is_duplicated`` held
        # ~60 MB of hash table per rule at 1 M rows, and the allocator kept it after.
        ordered = pl.col(name).sort()
        return pl.col(name).is_in(ordered.filter(ordered == ordered.shift(1)).unique().implode())

    # One query, not a dozen eager steps: each step's fixed cost was most of a small file's time.
    return (
        keys.lazy()
        .filter(pl.any_horizontal([repeats(n) for n in names]))
        .drop(names)
        .with_columns(c.passing for c in cross)
        .filter(~_all(names))
        .collect()
    )


def _repeats(hashes: pl.Series) -> bool:
    """Whether a value occurs twice (sorted: two copies of 8 bytes a row, no hash table)."""
    if hashes.len() < 2:
        return False
    ordered = hashes.sort()
    return bool((ordered.slice(1) == ordered.slice(0, ordered.len() - 1)).any())


def _key_hash(c: RuleColumn) -> pl.Expr:
    """A cross-row rule's key as one 64-bit hash a row (equal keys, equal hashes, in every chunk)."""
    return pl.struct(list(c.key)).hash().alias(c.name)


def _findings_from_failures(prepared: pl.DataFrame, failures: pl.DataFrame, ctx: CheckContext) -> list[pl.DataFrame]:
    """Turn pandera's failure cases (column, check = rule code, row position) into findings rows."""
    out = []
    for (column, code), group in failures.group_by(["column", "check"], maintain_order=True):
        rule = ctx.spec.rule(code)
        wanted = [ROW_COL, "besok_id"] + ([column] if column and column != "besok_id" else [])
        picked = prepared[wanted].gather(group["index"])
        if column is None:
            value = pl.lit(None, pl.Utf8)
        elif column == "patient_id":
            value = mask_expr(pl.col(column))
        else:
            value = pl.col(column)
        out.append(
            picked.select(
                pl.lit(code).alias("rule"),
                pl.lit(rule.severity.value).alias("severity"),
                pl.col(ROW_COL).alias("row"),
                pl.col("besok_id"),
                pl.lit(column, pl.Utf8).alias("field"),
                value.alias("value"),
                pl.lit(rule.message).alias("message"),
            )
        )
    return out
