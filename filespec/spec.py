"""The published file specification as data: loading and choosing a spec version.

One TOML file per filtyp and version lives in ``filespec/specs/``; a spec is chosen by the file's
reporting period, never by today's date. Every loaded spec carries the SHA-256 of its file so any
kvittens or underlag can say exactly which rules judged it.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any

SPEC_DIR = Path(__file__).parent / "specs"


class FileType(str, Enum):
    """The two filtyper (FILSPECIFIKATION.md section 1): VG Primärvård and Vårdval Rehab."""

    VGP = "VGP"
    REH = "REH"

    @property
    def label(self) -> str:
        """The name the region uses for the care choice."""
        return {"VGP": "VG Primärvård", "REH": "Vårdval Rehab"}[self.value]


FILE_TYPES = tuple(ft.value for ft in FileType)


class Severity(str, Enum):
    """How a broken rule affects the file (FILSPECIFIKATION.md section 6)."""

    AVVISA_FIL = "AVVISA_FIL"
    FEL = "FEL"
    VARNING = "VARNING"


@dataclass(frozen=True, kw_only=True)
class FieldSpec:
    """One field of a filtyp: its name and when it must be given."""

    name: str
    required: bool = False
    # {"field": ..., "in": [...]} or {"field": ..., "not_in": [...]}; tested on the value as given.
    required_when: dict[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class FileRule:
    """A file rule (F01–F10): always AVVISA_FIL."""

    code: str
    message: str
    severity: Severity = Severity.AVVISA_FIL


@dataclass(frozen=True, kw_only=True)
class RowRule:
    """A row rule: code, severity, the named vectorised check and its parameters."""

    code: str
    severity: Severity
    check: str
    fields: tuple[str, ...]
    message: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class FileSpec:
    """One version of the file specification for one filtyp."""

    spec_version: str
    file_type: str
    valid_from: str  # first reporting period, "YYYY-MM"
    max_bytes: int
    codes: dict[str, tuple[str, ...]]
    fields: tuple[FieldSpec, ...]
    file_rules: dict[str, FileRule]
    row_rules: tuple[RowRule, ...]
    sha256: str
    path: Path

    @property
    def field_names(self) -> tuple[str, ...]:
        """Field names in spec order."""
        return tuple(f.name for f in self.fields)

    def rule(self, code: str) -> RowRule | FileRule:
        """The rule with this code (file or row rule)."""
        if code in self.file_rules:
            return self.file_rules[code]
        for r in self.row_rules:
            if r.code == code:
                return r
        raise KeyError(code)

    def row_rule(self, code: str) -> RowRule:
        """The row rule with this code (KeyError for a file rule or an unknown code)."""
        for r in self.row_rules:
            if r.code == code:
                return r
        raise KeyError(code)

    def message(self, code: str) -> str:
        """The Swedish message of a rule code."""
        return self.rule(code).message

    def severity(self, code: str) -> Severity:
        """The severity of a rule code."""
        return self.rule(code).severity


def _parse_spec(path: Path) -> FileSpec:
    raw_bytes = path.read_bytes()
    raw = tomllib.loads(raw_bytes.decode("utf-8"))
    fields = tuple(
        FieldSpec(name=f["name"], required=bool(f.get("required", False)), required_when=f.get("required_when"))
        for f in raw["fields"]
    )
    required = tuple(f.name for f in fields if f.required or f.required_when)
    rules = []
    for r in raw["row_rules"]:
        params = {k: v for k, v in r.items() if k not in ("code", "severity", "check", "fields", "message")}
        rule_fields = tuple(r["fields"])
        if rule_fields == ("*required",):
            rule_fields = required
        rules.append(
            RowRule(
                code=r["code"],
                severity=Severity(r["severity"]),
                check=r["check"],
                fields=rule_fields,
                message=r["message"],
                params=params,
            )
        )
    return FileSpec(
        spec_version=raw["spec_version"],
        file_type=raw["file_type"],
        valid_from=raw["valid_from"],
        max_bytes=int(raw["max_bytes"]),
        codes={k: tuple(v) for k, v in raw["codes"].items()},
        fields=fields,
        file_rules={r["code"]: FileRule(code=r["code"], message=r["message"]) for r in raw["file_rules"]},
        row_rules=tuple(rules),
        sha256=hashlib.sha256(raw_bytes).hexdigest(),
        path=path,
    )


@cache
def all_specs() -> tuple[FileSpec, ...]:
    """Every spec file shipped with the project, sorted by filtyp and first period."""
    specs = [_parse_spec(p) for p in sorted(SPEC_DIR.glob("*.toml"))]
    return tuple(sorted(specs, key=lambda s: (s.file_type, s.valid_from)))


# A spec is chosen by the file's period, never by today's date (FILSPECIFIKATION.md section 9): a
# correction of 2026-10 sent in 2027 is judged by the rules 2026-10 was reported under.
def spec_for(file_type: str, period: str) -> FileSpec | None:
    """The spec that judges a file of ``file_type`` for reporting period ``period`` ("YYYY-MM").

    The newest version whose ``valid_from`` is not after the period. ``None`` when the period is
    older than every spec (the system starts with 2025-01).
    """
    chosen = None
    for s in all_specs():
        if s.file_type == file_type and s.valid_from <= period:
            chosen = s
    return chosen


def max_file_bytes() -> int:
    """The largest file any spec version accepts (F06).

    Front doors refuse a body above it before its name, and so its period and spec, is known; the
    validator then judges the file against the limit of its own spec version.
    """
    return max(s.max_bytes for s in all_specs())


def file_rule_messages() -> dict[str, str]:
    """Messages of the file rules, from the oldest spec (they are the same in every version)."""
    return {code: r.message for code, r in all_specs()[0].file_rules.items()}
