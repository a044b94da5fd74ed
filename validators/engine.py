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
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandera.polars as pa
import polars as pl

if TYPE_CHECKING:
    import pandas as pd

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
from validators.reader import NFIELDS_COL, ROW_COL, ContentError, Records, split_records
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
    r"(?P<year>[0-9]{4})(?P<month>0[1-9]|1[0-2])_(?P<seq>0[1-9]|[1-9][0-9])\.csv$"
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
    m = FILE_NAME.match(name)
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

    ``accepted`` is a polars frame of the accepted rows (``accepted_rows`` the same as a lazy query): the spec's fields as trimmed strings (null
    when empty), ``rad`` (row number), and the typed values the reimbursement needs
    (``besoksdatum_dat``, ``alder``, ``forvantad_avgift``). ``accepted_pandas()`` gives the same
    as an Arrow-backed pandas frame.
    """

    kvittens: Kvittens
    findings: pl.DataFrame = field(repr=False)
    accepted_rows: pl.LazyFrame = field(repr=False)
    spec: FileSpec | None = None

    @functools.cached_property
    def accepted(self) -> pl.DataFrame:
        """The accepted rows, collected (``accepted_rows`` is the query: sinking it to Parquet, as
        the intake does, never holds a second copy of a large file's rows in memory)."""
        return self.accepted_rows.collect()

    def accepted_pandas(self) -> pd.DataFrame:  # pandas is imported by polars only when called
        """The accepted rows as a pandas frame with Arrow-backed columns."""
        return self.accepted.to_pandas(use_pyarrow_extension_array=True)


def receipt_id(sha256: str, received_at: dt.datetime, file_name: str) -> str:
    """An opaque id, unique per received file, stable for the same bytes, name and instant."""
    # The instant, not its text: the same arrival given with another UTC offset is the same file.
    key = f"{sha256}|{received_at.astimezone(dt.UTC).isoformat()}|{file_name}".encode()
    return "KV-" + hashlib.sha256(key).hexdigest()[:24]


def _file_finding(code: str, message: str) -> dict[str, Any]:
    return {
        "rule": code,
        "severity": Severity.AVVISA_FIL.value,
        "row": None,
        "besok_id": None,
        "field": None,
        "value": None,
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
) -> ValidationResult:
    """Validate one received file.

    ``source`` is the received bytes or a path to them; ``file_name`` the name it was received
    under (only its last path component counts). ``earlier_sequences`` are the sequence numbers of
    every earlier received file of the same unit, filtyp and period, AVVISAD ones included (F09;
    the ledger supplies them). ``deadline`` replaces the period's deadline for ``on_time`` when the
    unit has a dispens. Bad input never raises: it becomes findings.
    """
    received_at = to_stockholm(received_at)
    deadline = to_stockholm(deadline) if deadline is not None else None
    name = parse_file_name(file_name)
    spec = spec_for(name.file_type, name.period) if name else None
    messages = (spec and {c: r.message for c, r in spec.file_rules.items()}) or file_rule_messages()
    fired: list[str] = []

    if name is None:
        fired.append("F01")
    max_bytes = spec.max_bytes if spec else max_file_bytes()
    records: Records | None = None
    size = len(source) if isinstance(source, bytes) else Path(source).stat().st_size
    if size > max_bytes:
        fired.append("F06")
        sha, size = _sha256_and_size(source)  # streamed: an oversized file is never held in memory
    else:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        sha, size = _sha256_and_size(data)
        try:
            records = split_records(data)
        except ContentError as e:
            fired.append(e.code)
        del data

    if records is not None:
        if records.header is None or records.count == 0:
            fired.append("F03")
        if spec is not None and records.header is not None:
            header = records.header
            if len(set(header)) != len(header) or set(header) != set(spec.field_names):
                fired.append("F04")

    window: Window | None = None
    if name is not None:
        window = window_for(name.period)
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

    fired = sorted(set(fired))
    base: dict[str, Any] = {
        "receipt_id": receipt or receipt_id(sha, received_at, file_name),
        "file_name": file_name,
        "sha256": sha,
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
        total = records.count if records is not None else 0
        file_findings = [_file_finding(c, messages[c]) for c in fired]
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

    assert spec is not None and records is not None and name is not None
    ctx = CheckContext(
        spec=spec, period=name.period, file_hsaid=name.unit_hsaid, reference=reference, fees=fee_table_for(name.period)
    )
    findings, accepted = judge_rows(records, ctx)
    counts = findings.group_by("rule").len().sort("rule")
    rejected_rows = findings.filter(pl.col("severity") == Severity.FEL.value)["row"].n_unique()
    warned_rows = findings.filter(pl.col("severity") == Severity.VARNING.value)["row"].n_unique()
    total = records.count
    status = Status.GODKAND if rejected_rows == 0 else Status.DELVIS_GODKAND
    # File rules judged on the outcome of the row rules (F11 from 2026.2, reading 20): they make
    # the file AVVISAD but keep its row findings; their own finding comes first (row null).
    after = [r for r in spec.checked_file_rules if FILE_CHECKS[r.check or ""](total, total - rejected_rows)]
    if after:
        status = Status.AVVISAD
        accepted = accepted.clear()
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


# Rows judged at a time: the derived columns and the rules' intermediate columns of a whole
# million-row file were ~4× the file again (benchmarks/RESULTS.md). A smaller file is one chunk.
CHUNK_ROWS = 200_000


def judge_rows(records: Records, ctx: CheckContext) -> tuple[pl.DataFrame, pl.LazyFrame]:
    """Row rules over the records: every finding (sorted by row, rule, field name) and the accepted
    rows (as a query over the judged rows, not a copy).

    Rows are judged in chunks of ``CHUNK_ROWS``; the rules that compare a row with the file's other
    rows (R11, W90) are judged first over the whole file, on their key columns only, so every
    chunk gives the findings the whole file would (tested row for row against one chunk)."""
    spec = ctx.spec
    header = records.header or []
    k = len(header)
    frame = records.frame.rename({f"c{i}": name for i, name in enumerate(header)})

    # R01: a row with the wrong number of fields gets no other finding and joins no group.
    broken = frame.filter(pl.col(NFIELDS_COL) != k)
    # Without broken rows the frame is used as it is: a filter would copy every column.
    whole = (frame.filter(pl.col(NFIELDS_COL) == k) if broken.height else frame).select(ROW_COL, *spec.field_names)
    del frame
    r01 = spec.rule("R01")
    parts = [
        broken.select(
            pl.lit("R01").alias("rule"),
            pl.lit(r01.severity.value).alias("severity"),
            pl.col(ROW_COL).alias("row"),
            pl.lit(None, pl.Utf8).alias("besok_id"),
            pl.lit(None, pl.Utf8).alias("field"),
            pl.lit(None, pl.Utf8).alias("value"),
            pl.lit(r01.message).alias("message"),
        )
    ]

    columns = rule_columns(ctx)
    if whole.height > CHUNK_ROWS:
        # The cross-row verdicts over every row at once (they read only their key columns), then
        # each chunk reads them as plain columns.
        cross = [c for c in columns if c.cross_row]
        whole = whole.hstack(whole.lazy().select([c.passing for c in cross]).collect())
        columns = [
            RuleColumn(c.name, c.code, c.field, pl.col(c.name), cross_row=True) if c.cross_row else c for c in columns
        ]
    # Per chunk only the verdicts (one boolean a rule) and the four derived columns the accepted
    # rows carry are kept; the derived identifier parts and the rules' intermediate columns of a
    # chunk are dropped before the next.
    verdicts, derived = [], []
    for offset in range(0, max(whole.height, 1), CHUNK_ROWS):
        chunk = whole.slice(offset, CHUNK_ROWS)
        prepared = prepare(chunk, ctx)
        judged = prepared.lazy().select(
            pl.col("__visit").alias("besoksdatum_dat"),
            pl.col("__age").alias("alder"),
            pl.col("__pid_sex").alias("kon_enligt_id"),
            pl.col("__fee").alias("forvantad_avgift"),
            *[c.passing for c in columns],
        )
        part = judged.collect()
        del prepared
        derived.append(part.select("besoksdatum_dat", "alder", "kon_enligt_id", "forvantad_avgift"))
        verdicts.append(part.select(c.name for c in columns))
    # pandera runs once over the field columns and the verdicts (its cost is per check, not per
    # row: per chunk it cost 0.4 s more at 1 M rows).
    judged_all = whole.select(ROW_COL, *spec.field_names).hstack(
        pl.concat(verdicts, how="vertical").select(c.name for c in columns if c.name not in whole.columns)
    )
    if any(c.name in whole.columns for c in columns):  # the cross-row verdicts, judged up front
        judged_all = judged_all.hstack(whole.select(c.name for c in columns if c.name in whole.columns))
    try:
        build_schema(spec, failing(judged_all, columns)).validate(judged_all, lazy=True)
        failures = None
    except pa.errors.SchemaErrors as e:
        failures = e.failure_cases.select(
            # Whole-row rules are checked on their verdict column: they have no field.
            pl.when(~pl.col("column").str.starts_with(RULE_PREFIX)).then(pl.col("column")).alias("column"),
            "check",
            pl.col("index").cast(pl.Int64),
        )
    del judged_all, verdicts

    keep = np.ones(whole.height, dtype=bool)
    if failures is not None and failures.height:
        parts.extend(_findings_from_failures(whole, failures, ctx))
        fel = [c for c in failures["check"].unique().to_list() if spec.severity(c) is Severity.FEL]
        keep[failures.filter(pl.col("check").is_in(fel))["index"].to_numpy()] = False
    findings = pl.concat(parts, how="vertical") if parts else empty_findings()
    # The region's order (examples/expected.json): row, rule code, field name.
    findings = findings.sort(["row", "rule", "field"], nulls_last=False)
    # Beyond the spec's masking of patient_id: a valid person number anywhere else in a shown
    # value (typed into a diagnosis field, used as a besok_id) is masked too before the findings
    # reach the kvittens, the findings CSV, the ledger and the workbooks.
    for column in ("value", "besok_id"):
        findings = mask_identifiers(findings, column)

    # The accepted rows: the fields from the record frame itself (not copies) and the derived
    # columns, filtered chunk by chunk as they are written (one filter over the whole frame made
    # the Parquet sink hold a copy of every kept row: +0.3 GB at 1 M rows).
    rows = whole.select(pl.col(ROW_COL).alias("rad"), *spec.field_names)
    pieces = [
        rows.slice(i * CHUNK_ROWS, CHUNK_ROWS)
        .hstack(part)
        .hstack([pl.Series("__keep", keep[i * CHUNK_ROWS : i * CHUNK_ROWS + part.height])])
        .lazy()
        .filter(pl.col("__keep"))
        .drop("__keep")
        for i, part in enumerate(derived)
    ]
    accepted = pieces[0] if len(pieces) == 1 else pl.concat(pieces, how="vertical")
    return findings, accepted


def _findings_from_failures(prepared: pl.DataFrame, failures: pl.DataFrame, ctx: CheckContext) -> list[pl.DataFrame]:
    """Turn pandera's failure cases (column, check = rule code, row position) into findings rows."""
    out = []
    for (column, code), group in failures.group_by(["column", "check"], maintain_order=True):
        rule = ctx.spec.rule(code)
        wanted = [ROW_COL, "besok_id"] + ([column] if column and column != "besok_id" else [])
        picked = prepared.select(wanted).gather(group["index"])
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
