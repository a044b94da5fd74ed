"""Kept as long as the law says, and no longer: ``vardfil gallra``.

The rules are data (``vardfil/retention.toml``): per kind of material, how long the region keeps
it, from which event, and the law's floor. ``vardfil gallra --dry-run`` lists what is due;
``--record-decision REF`` records the archive authority's decision (what kind, made or received
before when); ``--decision REF`` removes only what that decision covers, and refuses the whole run
when any of it is younger than its floor (logs five years, accounting material seven, both after
the end of the calendar year) or of a kind vardfil never deletes. What a gallring of received
files leaves: the record, its SHA-256, its kvittens and counts, the close's recorded lines and
totals, and an audit entry; what it removes: the raw bytes, the accepted rows, the findings list.

"Now" is the application's clock (``vardfil.app.make_clock``: the real time; a clock file only in
demos and tests).
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from filespec.calendar import STOCKHOLM
from vardfil.actors import Actor
from vardfil.app import App, make_clock
from vardfil.errors import Refused
from vardfil.ledger import GallringDecision, utcnow

RULES = Path(__file__).with_name("retention.toml")


@dataclass(frozen=True, kw_only=True)
class Rule:
    """One kind of material and how long it is kept."""

    kind: str
    name: str
    start: str  # "event" | "year_end"
    keep_years: int
    minimum_years: int
    removable: bool

    def _from(self, instant: dt.datetime) -> dt.datetime:
        if self.start == "year_end":
            local = instant.astimezone(STOCKHOLM)
            return dt.datetime(local.year + 1, 1, 1, tzinfo=STOCKHOLM)
        return instant

    def due_at(self, instant: dt.datetime) -> dt.datetime:
        """When the region's rule makes it due."""
        return _plus_years(self._from(instant), self.keep_years)

    def allowed_at(self, instant: dt.datetime) -> dt.datetime:
        """The first instant the law lets it go."""
        return _plus_years(self._from(instant), self.minimum_years)


def _plus_years(instant: dt.datetime, years: int) -> dt.datetime:
    try:
        return instant.replace(year=instant.year + years)
    except ValueError:  # 29 February
        return instant.replace(year=instant.year + years, day=28)


@cache
def rules() -> dict[str, Rule]:
    """The rules of ``retention.toml``, by kind."""
    data = tomllib.loads(RULES.read_text(encoding="utf-8"))
    return {
        kind: Rule(
            kind=kind,
            name=r["name"],
            start=r["from"],
            keep_years=int(r["keep_years"]),
            minimum_years=int(r["minimum_years"]),
            removable=bool(r["removable"]),
        )
        for kind, r in data["kinds"].items()
    }


def _items(app: App, kind: str) -> list[tuple[str, dt.datetime]]:
    """Every item of a kind still kept: (what it is, its event's instant)."""
    ledger = app.ledger
    if kind in ("radata", "kvittens"):
        return [
            (f.receipt_id, f.received_at)
            for f in ledger.files.stored_files()
            if kind == "kvittens" or f.gallrad_at is None
        ]
    if kind == "stangning":
        return [(c.period, c.closed_at) for c in ledger.closes.recent_closes(limit=100_000)]
    if kind == "atkomstlogg":
        return [(f"#{e.id}", e.at) for e in ledger.accesses.entries()]
    if kind == "granskningslogg":
        return [(f"#{e.id}", e.at) for e in ledger.audit_entries(limit=10_000_000)]
    raise Refused(f"okänt slag i bevarandereglerna: {kind} (finns: {', '.join(rules())})")


def now_of(app: App) -> dt.datetime:
    """The application's now."""
    return make_clock(app.settings.clock_file)()


def dry_run(app: App) -> dict[str, Any]:
    """Per kind: how many items are kept, how many are due by the region's rule, and the oldest."""
    now = now_of(app)
    out: dict[str, Any] = {"at": now.isoformat(), "kinds": {}}
    for kind, rule in rules().items():
        items = _items(app, kind)
        due = [(what, at) for what, at in items if rule.due_at(at) <= now]
        out["kinds"][kind] = {
            "name": rule.name,
            "kept": len(items),
            "due": len(due),
            "due_items": [what for what, _ in due[:50]],
            "removable": rule.removable,
            "oldest": min((at for _, at in items), default=None),
        }
        if out["kinds"][kind]["oldest"] is not None:
            out["kinds"][kind]["oldest"] = out["kinds"][kind]["oldest"].isoformat()
    return out


def record_decision(app: App, *, ref: str, what: str, before: dt.datetime, text: str, actor: Actor) -> GallringDecision:
    """Record the archive authority's decision (audited); refused for an unknown kind or a
    reference recorded already."""
    if what not in rules():
        raise Refused(f"okänt slag: {what} (finns: {', '.join(rules())})")
    if app.ledger.retention.decision(ref) is not None:
        raise Refused(f"beslutet {ref} finns redan")
    decision = GallringDecision(ref=ref, what=what, before=before, text=text, recorded_by=actor, recorded_at=utcnow())
    app.ledger.retention.add_decision(decision)
    return decision


def gallra(app: App, ref: str, *, actor: Actor) -> dict[str, Any]:
    """Remove what decision ``ref`` covers (see the module docstring); the report."""
    decision = app.ledger.retention.decision(ref)
    if decision is None:
        raise Refused(f"inget beslut {ref} är registrerat (vardfil gallra --record-decision)")
    rule = rules()[decision.what]
    now = now_of(app)
    covered = [(what, at) for what, at in _items(app, decision.what) if at < decision.before]
    young = [(what, at) for what, at in covered if rule.allowed_at(at) > now]
    if young:
        first = min(rule.allowed_at(at) for _, at in young)
        raise Refused(
            f"{rule.name}: {len(young)} av de {len(covered)} som beslutet {ref} omfattar är yngre än lagens "
            f"minsta tid ({rule.minimum_years} år"
            f"{' efter kalenderårets slut' if rule.start == 'year_end' else ''}); tidigast "
            f"{first.astimezone(STOCKHOLM):%Y-%m-%d}. Inget togs bort."
        )
    if not rule.removable:
        raise Refused(
            f"{rule.name} tas aldrig bort av vardfil: de gallras av databasens förvaltare enligt beslutet. "
            "Inget togs bort."
        )
    removed = _remove_files(app, [what for what, _ in covered])
    app.ledger.retention.mark_gallrad(
        [what for what, _ in covered],
        ref=ref,
        actor=actor,
        detail={"what": decision.what, "files": len(covered), "removed": len(removed), "at": now.isoformat()},
    )
    return {"decision": ref, "what": decision.what, "files": [what for what, _ in covered], "removed": removed}


def _remove_files(app: App, receipts: list[str]) -> list[str]:
    """Remove the raw bytes, accepted rows and findings of these received files (raw bytes that a
    file outside the decision shares stay); the store paths removed."""
    store, chosen = app.store, set(receipts)
    every = app.ledger.files.stored_files()
    kept_shas = {f.sha256 for f in every if f.receipt_id not in chosen and f.gallrad_at is None}
    removed: list[str] = []
    for f in every:
        if f.receipt_id not in chosen:
            continue
        paths = [f.findings_path, f.accepted_path]
        if f.sha256 not in kept_shas:
            paths.append(store.relative(store.raw_path(f.sha256)))
        for rel in paths:
            if rel and store.resolve(rel).is_file():
                store.resolve(rel).unlink()
                removed.append(rel)
    return removed
