"""Storage of the journal systems known by their SITHS function certificate, the units each may
send for, and the catalogue sync's runs (the rules are ``vardfil.systems`` and ``vardfil.directory``)."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select

from vardfil.actors import system
from vardfil.ledger.tables import DirectorySync, JournalSystem, JournalSystemUnit

if TYPE_CHECKING:
    from vardfil.ledger.core import Core


class Systems:
    """The journal-system and catalogue tables of one ledger (``ledger.systems``)."""

    def __init__(self, ledger: Core):
        self.ledger = ledger

    def add(self, *, hsa_id: str, units: list[str], name: str | None, actor: str, now: dt.datetime) -> None:
        """Register a system for its units (again: its units and name replaced, a revoked one live again)."""
        with self.ledger.transaction() as s:
            row = s.get(JournalSystem, hsa_id)
            if row is None:
                row = JournalSystem(hsa_id=hsa_id, name=name, created_by=actor, created_at=now)
                s.add(row)
                s.flush()
            row.name, row.revoked_at = name or row.name, None
            s.execute(delete(JournalSystemUnit).where(JournalSystemUnit.system_hsaid == hsa_id))
            for u in sorted(set(units)):
                s.add(JournalSystemUnit(system_hsaid=hsa_id, unit_hsaid=u))
            self.ledger.audit(
                s,
                actor=actor,
                action="system_registered",
                subject=system(hsa_id),
                detail={"units": sorted(set(units)), "name": name},
            )

    def revoke(self, hsa_id: str, *, actor: str, now: dt.datetime) -> bool:
        """Revoke a system: its certificate sends nothing from now. False when none is live."""
        with self.ledger.transaction() as s:
            row = s.get(JournalSystem, hsa_id)
            if row is None or row.revoked_at is not None:
                return False
            row.revoked_at = now
            self.ledger.audit(s, actor=actor, action="system_revoked", subject=system(hsa_id))
            return True

    def live(self, hsa_id: str) -> tuple[JournalSystem, frozenset[str]] | None:
        """A live system and its units, if registered."""
        with self.ledger.reading() as s:
            row = s.get(JournalSystem, hsa_id)
            if row is None or row.revoked_at is not None:
                return None
            units = frozenset(
                s.scalars(select(JournalSystemUnit.unit_hsaid).where(JournalSystemUnit.system_hsaid == hsa_id))
            )
            return row, units

    def all(self) -> list[tuple[JournalSystem, list[str]]]:
        """Every system, revoked ones included, with its units."""
        with self.ledger.reading() as s:
            units: dict[str, list[str]] = {}
            for sid, u in s.execute(select(JournalSystemUnit.system_hsaid, JournalSystemUnit.unit_hsaid)):
                units.setdefault(sid, []).append(u)
            return [
                (r, sorted(units.get(r.hsa_id, [])))
                for r in s.scalars(select(JournalSystem).order_by(JournalSystem.created_at))
            ]

    # --- the catalogue sync's record ---------------------------------------------------------

    def record_sync(self, *, at: dt.datetime, actor: str, applied: bool, result: dict[str, Any]) -> None:
        """Record one run of the catalogue sync (with its report)."""
        with self.ledger.transaction() as s:
            s.add(DirectorySync(at=at, actor=actor, applied=applied, result=json.dumps(result, ensure_ascii=False)))

    def last_sync(self, *, applied: bool = True) -> tuple[dt.datetime, dict[str, Any]] | None:
        """The newest applied sync's instant and report, if any."""
        with self.ledger.reading() as s:
            row = s.scalars(
                select(DirectorySync).where(DirectorySync.applied.is_(applied)).order_by(DirectorySync.id.desc())
            ).first()
            return (row.at, json.loads(row.result)) if row else None
