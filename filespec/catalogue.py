"""The rule catalogue: every rule of a spec version as a person reads it, and what changed between
two versions. Generated from the spec data and the precise readings (``readings.toml``), never
written by hand, so it cannot drift from what the validators do. ``vardfil rules`` prints it; the
portal serves it at ``/regler``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from filespec.spec import FileSpec, Policy, all_specs, spec_by_version

READINGS = Path(__file__).parent / "readings.toml"
RULE_TEXTS = Path(__file__).parent / "rules_sv.toml"

# What a severity does, as a unit reads it beside the code the kvittens carries.
SEVERITY_WORDS = {"AVVISA_FIL": "Avvisar hela filen", "FEL": "Fel: raden avvisas", "VARNING": "Varning: raden godkänns"}

# The history policy in words, for the catalogue and its diff.
POLICY_WORDS = {
    ("f09_history", "all"): "F09 jämför med alla tidigare filer för enheten, filtypen och perioden, även avvisade",
    ("f09_history", "usable"): "F09 jämför bara med tidigare filer som inte avvisats",
    ("copies", "any"): "En byte-identisk fil är en kopia av vilken tidigare fil som helst, oavsett namn",
    ("copies", "usable_same_unit"): (
        "En byte-identisk fil är en kopia bara av en tidigare fil som inte avvisats och vars namn anger "
        "samma HSA-id; en fil med ogiltigt namn (F01) är aldrig kopia"
    ),
}


@dataclass(frozen=True, kw_only=True)
class Reading:
    """One precise reading (FILSPECIFIKATION.md sections 8–9)."""

    number: int
    text: str  # in the region's Swedish, plain text: what every page shows
    spec: str  # the specification's own wording, for whoever maintains the validators
    rules: tuple[str, ...]
    versions: tuple[str, ...]  # "2026.1", "2026.2": the versions it belongs to

    @property
    def in_versions(self) -> str:
        """The releases it belongs to, in words."""
        if len(self.versions) == 1:
            return f"Gäller bara version {self.versions[0]}"
        return "Gäller version " + " och ".join(self.versions)


@dataclass(frozen=True, kw_only=True)
class RuleEntry:
    """One rule of one version, as the catalogue shows it."""

    code: str
    kind: str  # "fil" or "rad"
    severity: str
    fields: tuple[str, ...]
    message: str
    readings: tuple[Reading, ...]
    when: str  # when the rule fires, in Swedish (rules_sv.toml)
    example: str  # an example the validator is tested to judge so (tests/test_rule_texts.py)
    since: str  # the first version of the filtyp that has the rule
    until: str | None  # the last version that has it, when a newer version dropped it

    @property
    def severity_words(self) -> str:
        """What the severity does, in Swedish."""
        return SEVERITY_WORDS[self.severity]


@dataclass(frozen=True, kw_only=True)
class Catalogue:
    """Every rule of one spec version, file rules first, in code order."""

    spec: FileSpec
    rules: tuple[RuleEntry, ...]
    general: tuple[Reading, ...]  # readings of the version that concern no single rule
    policy: tuple[str, ...]  # the history policy in words

    def rule(self, code: str) -> RuleEntry | None:
        """The entry of one rule code, if the version has it."""
        return next((r for r in self.rules if r.code == code), None)


@cache
def readings() -> tuple[Reading, ...]:
    """Every precise reading, by number."""
    raw = tomllib.loads(READINGS.read_text(encoding="utf-8"))
    return tuple(
        Reading(
            number=int(r["number"]),
            text=r["text"],
            spec=r["spec"],
            rules=tuple(r["rules"]),
            versions=tuple(r["versions"]),
        )
        for r in sorted(raw["reading"], key=lambda r: int(r["number"]))
    )


@cache
def rule_texts() -> dict[str, dict[str, Any]]:
    """Every rule code's Swedish texts: ``when``, ``example`` and the example's ``check``."""
    return tomllib.loads(RULE_TEXTS.read_text(encoding="utf-8"))


def _span(spec: FileSpec, code: str) -> tuple[str, str | None]:
    """The first and, when a newer version dropped the rule, the last version of the filtyp with it."""
    mine = [s for s in all_specs() if s.file_type == spec.file_type]  # oldest first
    having = [s.spec_version for s in mine if code in s.file_rules or any(r.code == code for r in s.row_rules)]
    return having[0], (None if having[-1] == mine[-1].spec_version else having[-1])


def _release(spec: FileSpec) -> str:
    return spec.spec_version.split("-", 1)[1]  # "VGP-2026.2" -> "2026.2"


def _policy_words(policy: Policy) -> tuple[str, ...]:
    return (POLICY_WORDS[("f09_history", policy.f09_history)], POLICY_WORDS[("copies", policy.copies)])


def catalogue(spec_version: str) -> Catalogue:
    """The catalogue of one version (``VGP-2026.2``); KeyError for a version not shipped."""
    spec = spec_by_version(spec_version)
    if spec is None:
        raise KeyError(spec_version)
    mine = [r for r in readings() if _release(spec) in r.versions]

    def entry(code: str, kind: str, severity: str, fields: tuple[str, ...], message: str) -> RuleEntry:
        texts = rule_texts()[code]
        since, until = _span(spec, code)
        return RuleEntry(
            code=code,
            kind=kind,
            severity=severity,
            fields=fields,
            message=message,
            readings=tuple(r for r in mine if code in r.rules),
            when=texts["when"],
            example=texts["example"],
            since=since,
            until=until,
        )

    entries = [entry(c, "fil", r.severity.value, (), r.message) for c, r in sorted(spec.file_rules.items())]
    entries += [entry(r.code, "rad", r.severity.value, r.fields, r.message) for r in spec.row_rules]
    return Catalogue(
        spec=spec,
        rules=tuple(entries),
        general=tuple(r for r in mine if not r.rules),
        policy=_policy_words(spec.policy),
    )


def versions() -> list[str]:
    """Every shipped spec version, by filtyp and first period."""
    return [s.spec_version for s in all_specs()]


@dataclass(frozen=True, kw_only=True)
class Change:
    """One difference between two versions: ``+`` added, ``-`` removed, ``~`` changed."""

    sign: str
    what: str  # a rule code, "historik" or "precisering N"
    text: str


def diff(old_version: str, new_version: str) -> list[Change]:
    """What changed from one version to another: rules added, removed or changed (severity,
    fields, message, readings), the history policy, and the general readings."""
    old, new = catalogue(old_version), catalogue(new_version)
    out: list[Change] = []
    old_rules, new_rules = {r.code: r for r in old.rules}, {r.code: r for r in new.rules}
    for code in sorted(set(old_rules) | set(new_rules)):
        a, b = old_rules.get(code), new_rules.get(code)
        if a is None and b is not None:
            out.append(Change(sign="+", what=code, text=f"{b.severity}: {b.message}{_refs(b.readings)}"))
        elif b is None and a is not None:
            out.append(Change(sign="-", what=code, text=f"{a.severity}: {a.message}"))
        elif a is not None and b is not None:
            for label, x, y in (
                ("allvarlighet", a.severity, b.severity),
                ("fält", ", ".join(a.fields), ", ".join(b.fields)),
                ("meddelande", a.message, b.message),
                ("preciseringar", _nums(a.readings), _nums(b.readings)),
            ):
                if x != y:
                    out.append(Change(sign="~", what=code, text=f"{label}: {x or '–'} → {y or '–'}"))
    for x, y in zip(old.policy, new.policy, strict=True):
        if x != y:
            out.append(Change(sign="~", what="historik", text=f"{x} → {y}"))
    old_general, new_general = {r.number for r in old.general}, {r.number for r in new.general}
    for r in readings():
        if r.number in new_general - old_general:
            out.append(Change(sign="+", what=f"precisering {r.number}", text=r.text))
        if r.number in old_general - new_general:
            out.append(Change(sign="-", what=f"precisering {r.number}", text=r.text))
    return out


def _nums(rs: tuple[Reading, ...]) -> str:
    return ", ".join(str(r.number) for r in rs)


def _refs(rs: tuple[Reading, ...]) -> str:
    return f" (precisering {_nums(rs)})" if rs else ""
