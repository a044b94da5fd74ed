"""The published file specification as data: loading and choosing a spec version.

One TOML file per filtyp and version lives in ``filespec/specs/``; a spec is chosen by the file's
reporting period, never by today's date. Every loaded spec carries the SHA-256 of its file so any
kvittens or underlag can say exactly which rules judged it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import tomllib
from dataclasses import dataclass, field
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any

from filespec.calendar import Period

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
    """A file rule: always AVVISA_FIL. F01–F10 are judged by the engine in the order of section 6;
    a rule with a ``check`` (F11 from 2026.2) is a registered check run after the row rules."""

    code: str
    message: str
    severity: Severity = Severity.AVVISA_FIL
    check: str | None = None


@dataclass(frozen=True, kw_only=True)
class Policy:
    """What a version says about a unit's history (FILSPECIFIKATION.md readings 8, 21, 22).

    ``f09_history``: ``all`` earlier files of the slot count for F09 (2026.1, AVVISAD included), or
    only the ``usable`` ones (2026.2). ``copies``: a byte-identical file is a copy of ``any``
    earlier file (2026.1), or only of a ``usable_same_unit`` one: not AVVISAD, and its name carries
    the same HSA-id (2026.2; a file without a valid name is never a copy nor an original).
    """

    f09_history: str = "all"
    copies: str = "any"

    def __post_init__(self) -> None:
        if self.f09_history not in ("all", "usable") or self.copies not in ("any", "usable_same_unit"):
            raise ValueError(f"unknown policy {self}")


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
    policy: Policy = Policy()
    extends: str | None = None  # the spec_version this one changes (None: a version of its own)

    @property
    def checked_file_rules(self) -> tuple[FileRule, ...]:
        """File rules judged by a registered check after the row rules (F11), in code order."""
        return tuple(r for _, r in sorted(self.file_rules.items()) if r.check is not None)

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


def _merged(path: Path) -> tuple[dict[str, Any], str, str | None]:
    """The raw TOML of a spec with what it ``extends`` filled in; the SHA-256 of every file it
    was made of (so a change to the base changes the version's hash too); the base's version.

    A version that extends another states only what differs (FILSPECIFIKATION.md section 9:
    "everything in sections 1–8 holds except what this section changes"): top-level values and
    the policy replace the base's; file and row rules replace the base's rule of the same code or
    are added; fields and codes come from the base unless given."""
    raw_bytes = path.read_bytes()
    raw = tomllib.loads(raw_bytes.decode("utf-8"))
    base_name = raw.pop("extends", None)
    if base_name is None:
        return raw, hashlib.sha256(raw_bytes).hexdigest(), None
    base, base_sha, _ = _merged(path.parent / base_name)
    merged = {**base, **{k: v for k, v in raw.items() if k not in ("file_rules", "row_rules", "policy")}}
    for kind in ("file_rules", "row_rules"):
        own = {r["code"]: r for r in raw.get(kind, [])}
        merged[kind] = [own.pop(r["code"], r) for r in base.get(kind, [])] + list(own.values())
    merged["policy"] = {**base.get("policy", {}), **raw.get("policy", {})}
    sha = hashlib.sha256(base_sha.encode() + raw_bytes).hexdigest()
    return merged, sha, str(base["spec_version"])


def _parse_spec(path: Path) -> FileSpec:
    raw, sha, extends = _merged(path)
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
        file_rules={
            r["code"]: FileRule(code=r["code"], message=r["message"], check=r.get("check")) for r in raw["file_rules"]
        },
        row_rules=tuple(rules),
        sha256=sha,
        path=path,
        policy=Policy(**raw.get("policy", {})),
        extends=extends,
    )


@cache
def all_specs() -> tuple[FileSpec, ...]:
    """Every spec file shipped with the project, sorted by filtyp and first period."""
    specs = [_parse_spec(p) for p in sorted(SPEC_DIR.glob("*.toml"))]
    return tuple(sorted(specs, key=lambda s: (s.file_type, s.valid_from)))


# A spec is chosen by the file's period, never by today's date (FILSPECIFIKATION.md section 9): a
# correction of 2026-10 sent in 2027 is judged by the rules 2026-10 was reported under.
def spec_for(file_type: str, period: str | Period) -> FileSpec | None:
    """The spec that judges a file of ``file_type`` for reporting period ``period`` ("YYYY-MM").

    The newest version whose ``valid_from`` is not after the period. ``None`` when the period is
    older than every spec (the system starts with 2025-01).
    """
    chosen = None
    for s in all_specs():
        if s.file_type == file_type and s.valid_from <= str(period):
            chosen = s
    return chosen


def max_file_bytes() -> int:
    """The largest file any spec version accepts (F06).

    Front doors refuse a body above it before its name, and so its period and spec, is known; the
    validator then judges the file against the limit of its own spec version.
    """
    return max(s.max_bytes for s in all_specs())


def spec_by_version(spec_version: str) -> FileSpec | None:
    """The spec with this ``spec_version`` (``VGP-2026.2``), if shipped."""
    return next((s for s in all_specs() if s.spec_version == spec_version), None)


def policy_for(file_type: str | None, period: str | Period | None, received_at: dt.datetime) -> Policy:
    """The history policy that judges a file: its spec's, by its named period; for a file whose
    name cannot be read (F01), the version in force for the period that ended last before it was
    received (section 9). Periods older than every spec keep the first version's policy."""
    if period is None:
        period = Period.of_window(received_at)
    types = [file_type] if file_type else list(FILE_TYPES)
    for ft in types:
        spec = spec_for(ft, period)
        if spec is not None:
            return spec.policy
    return Policy()


def file_rule_messages() -> dict[str, str]:
    """Messages of the file rules, from the oldest spec (they are the same in every version)."""
    return {code: r.message for code, r in all_specs()[0].file_rules.items()}
