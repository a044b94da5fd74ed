"""The kvittens (receipt) of a received file: FILSPECIFIKATION.md section 6.4.

The JSON object has exactly the spec's keys, in the spec's order (additions are allowed and there
are none yet). ``findings`` is capped; the full list is written as CSV next to the kvittens.
Patient ids appear only masked (last four characters ``****``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import polars as pl

FINDINGS_CAP = 1000
FINDING_COLUMNS = ("rule", "severity", "row", "besok_id", "field", "value", "message")


class Status(str, Enum):
    """Status of a file (section 6.3)."""

    GODKAND = "GODKAND"
    DELVIS_GODKAND = "DELVIS_GODKAND"
    AVVISAD = "AVVISAD"

    @property
    def label(self) -> str:
        """The status as a person reads it; machines (JSON, Parquet, CSV) keep the code."""
        return {"GODKAND": "Godkänd", "DELVIS_GODKAND": "Delvis godkänd", "AVVISAD": "Avvisad"}[self.value]

    @property
    def usable(self) -> bool:
        """Whether a file with this status can be the gällande file (not AVVISAD)."""
        return self is not Status.AVVISAD


NOT_REJECTED = tuple(s.value for s in Status if s.usable)


@dataclass(frozen=True, kw_only=True)
class RowCounts:
    """``rows`` of the kvittens."""

    total: int
    accepted: int
    rejected: int
    with_warnings: int

    def to_dict(self) -> dict[str, int]:
        """JSON form."""
        return {
            "total": self.total,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "with_warnings": self.with_warnings,
        }


@dataclass(frozen=True, kw_only=True)
class Kvittens:
    """One receipt. Datetimes are aware and shown in Europe/Stockholm."""

    receipt_id: str
    file_name: str
    sha256: str
    received_at: dt.datetime
    file_type: str | None
    unit_hsaid: str | None
    period: str | None
    sequence: int | None
    spec_version: str | None
    deadline: dt.datetime | None
    on_time: bool | None
    status: Status
    rows: RowCounts
    counts_by_rule: dict[str, int]
    findings: tuple[dict[str, Any], ...]
    findings_truncated: bool

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of section 6.4, keys in the spec's order."""
        return {
            "receipt_id": self.receipt_id,
            "file_name": self.file_name,
            "sha256": self.sha256,
            "received_at": self.received_at.isoformat(),
            "file_type": self.file_type,
            "unit_hsaid": self.unit_hsaid,
            "period": self.period,
            "sequence": self.sequence,
            "spec_version": self.spec_version,
            "deadline": self.deadline.isoformat() if self.deadline else None,
            "on_time": self.on_time,
            "status": self.status.value,
            "rows": self.rows.to_dict(),
            "counts_by_rule": dict(self.counts_by_rule),
            "findings": [dict(f) for f in self.findings],
            "findings_truncated": self.findings_truncated,
        }


def empty_findings() -> pl.DataFrame:
    """A findings frame with no rows and the right schema."""
    return pl.DataFrame(
        schema={
            "rule": pl.Utf8,
            "severity": pl.Utf8,
            "row": pl.Int64,
            "besok_id": pl.Utf8,
            "field": pl.Utf8,
            "value": pl.Utf8,
            "message": pl.Utf8,
        }
    )


def findings_to_csv(findings: pl.DataFrame) -> bytes:
    """The full findings list as CSV for the unit: ``;``-separated, UTF-8 with BOM (opens in Excel).

    Values are written as text; a value that a spreadsheet would run as a formula is prefixed
    with an apostrophe.
    """
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(FINDING_COLUMNS)
    for rec in findings.select(FINDING_COLUMNS).iter_rows():
        writer.writerow(["" if v is None else _csv_safe(str(v)) for v in rec])
    return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")


# What a spreadsheet may run as a formula: = + - @ at the start, and a tab or carriage return before
# one (Excel and LibreOffice skip leading whitespace when they look for a formula; OWASP CSV
# injection). A plain negative number stays a number.
FORMULA_START = re.compile(r"^[\t\r]*[=+\-@]|^[\t\r]")


def _csv_safe(value: str) -> str:
    if FORMULA_START.match(value) and not value.lstrip("-").isdigit():
        return "'" + value
    return value


def write_findings_csv(findings: pl.DataFrame, path: Path) -> Path:
    """Write the findings CSV atomically (temporary name, then rename); nothing is left behind
    when the folder cannot be written."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(findings_to_csv(findings))
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
