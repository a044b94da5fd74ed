"""The analysts' and the units' decisions on record: dispens, approvals and disputes, the
finalisation (``ledger.decisions``)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vardfil.errors import ApprovalRefused
from vardfil.ledger.closes import state_of
from vardfil.ledger.core import utcnow
from vardfil.ledger.tables import Approval, Dispens, PeriodState

if TYPE_CHECKING:
    from vardfil.ledger.core import Core


ANSWERS = ("GODKANN", "INVAND")


class Decisions:
    """The dispens and approval tables of one ledger."""

    def __init__(self, ledger: Core):
        self.ledger = ledger

    def add_dispens(self, *, unit_hsaid: str, period: str, deadline: dt.datetime, reason: str, actor: str) -> Dispens:
        """Record a dispens (``vardfil.month.dispens.grant_dispens`` decides whether it may be)."""
        row = Dispens(unit_hsaid=unit_hsaid, period=period, deadline=deadline, reason=reason, granted_by=actor)
        with self.ledger.transaction() as s:
            self._add_audited(
                s,
                row,
                actor=actor,
                action="dispens_granted",
                subject=f"{unit_hsaid}/{period}",
                detail={"deadline": deadline.isoformat(), "reason": reason},
            )
        return row

    def dispens_deadline(self, unit_hsaid: str, period: str) -> dt.datetime | None:
        """The extended deadline in force for a unit and period, if any (the newest grant)."""
        return self.dispens_for_period(period).get(unit_hsaid)

    def dispens_for_period(self, period: str) -> dict[str, dt.datetime]:
        """Per unit, the extended deadline in force for a period (the newest grant wins)."""
        with self.ledger.reading() as s:
            q = select(Dispens).where(Dispens.period == period).order_by(Dispens.granted_at, Dispens.id)
            return {row.unit_hsaid: row.deadline for row in s.scalars(q)}

    def add_answer(
        self, *, unit_hsaid: str, file_type: str, period: str, action: str, comment: str | None, actor: str
    ) -> Approval:
        """Record a unit's approval or dispute, refused once the period is finalised."""
        row = Approval(
            unit_hsaid=unit_hsaid, file_type=file_type, period=period, action=action, comment=comment, actor=actor
        )
        with self.ledger.transaction() as s:
            # Read the state in the transaction that writes the answer: a finalisation committed
            # between a check and the write would otherwise let an answer in after it.
            if state_of(s, period) == "FINALISED":
                raise ApprovalRefused(f"period {period} is finalised: its underlag never changes")
            self._add_audited(
                s,
                row,
                actor=actor,
                action=f"underlag_{action.lower()}",
                subject=f"{unit_hsaid}/{period}",
                detail={"file_type": file_type, "comment": comment},
            )
        return row

    def finalise(self, *, period: str, actor: str) -> dict[str, str]:
        """Mark a closed period FINALISED; the newest answer per ``unit/filtyp`` on record then."""
        with self.ledger.transaction() as s:
            if state_of(s, period) == "FINALISED":
                raise ApprovalRefused(f"period {period} is already finalised")
            state = s.get(PeriodState, period)
            assert state is not None  # a close always records the state (record_close)
            state.state, state.updated_at = "FINALISED", utcnow()
            answers = {f"{u}/{ft}": a for (u, ft), a in _latest_answers(s, period).items()}
            s.add(
                Approval(
                    unit_hsaid=None,
                    file_type=None,
                    period=period,
                    action="FASTSTALL",
                    comment=None,
                    actor=actor,
                    at=utcnow(),
                )
            )
            self.ledger.audit(s, actor=actor, action="period_finalised", subject=period, detail={"answers": answers})
        return answers

    def answers_of_unit(self, unit_hsaid: str) -> dict[tuple[str, str | None], Approval]:
        """A unit's newest answer per (period, filtyp)."""
        with self.ledger.reading() as s:
            q = select(Approval).where(Approval.unit_hsaid == unit_hsaid).order_by(Approval.id)
            return {(a.period, a.file_type): a for a in s.scalars(q)}

    def _add_audited(
        self,
        session: Session,
        row: Dispens | Approval,
        *,
        actor: str,
        action: str,
        subject: str,
        detail: dict[str, Any],
    ) -> None:
        """Add a decision and its audit entry in one transaction, stamped with the same instant."""
        now = utcnow()
        if isinstance(row, Dispens):
            row.granted_at = now
        else:
            row.at = now
        session.add(row)
        self.ledger.audit(session, actor=actor, action=action, subject=subject, detail=detail, at=now)


def _latest_answers(session: Session, period: str) -> dict[tuple[str | None, str | None], str]:
    q = select(Approval).where(Approval.period == period, Approval.action.in_(ANSWERS)).order_by(Approval.id)
    return {(a.unit_hsaid, a.file_type): a.action for a in session.scalars(q)}
