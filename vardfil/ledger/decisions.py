"""The analysts' and the units' decisions on record: dispens, approvals and disputes, the
finalisation (``ledger.decisions``)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from filespec.calendar import Period
from vardfil.errors import ApprovalRefused, DispensRefused
from vardfil.ledger.closes import state_of
from vardfil.ledger.core import utcnow
from vardfil.ledger.tables import Approval, Dispens, PeriodClose, PeriodState

if TYPE_CHECKING:
    from vardfil.ledger.core import Core


ANSWERS = ("GODKANN", "INVAND")


class Decisions:
    """The dispens and approval tables of one ledger."""

    def __init__(self, ledger: Core):
        self.ledger = ledger

    def add_dispens(
        self,
        *,
        unit_hsaid: str,
        period: Period,
        deadline: dt.datetime,
        reason: str,
        actor: str,
        withdrawn: bool = False,
    ) -> Dispens:
        """Record a dispens, an extension or a withdrawal (``vardfil.month.dispens`` decides
        whether it may be); refused (DispensRefused) once the period has a close, checked in the
        same transaction, so a close committed meanwhile cannot let one in after it."""
        row = Dispens(
            unit_hsaid=unit_hsaid,
            period=str(period),
            deadline=deadline,
            reason=reason,
            granted_by=actor,
            withdrawn=withdrawn,
        )
        with self.ledger.transaction() as s:
            if s.get(PeriodClose, str(period)) is not None:
                raise DispensRefused(
                    f"perioden {period} är redan stängd: en dispens ges före stängningen. En sen fil "
                    "regleras som rättelse vid nästa stängning."
                )
            earlier = _in_force(s, period).get(unit_hsaid)
            action = "dispens_withdrawn" if withdrawn else ("dispens_extended" if earlier else "dispens_granted")
            self._add_audited(
                s,
                row,
                actor=actor,
                action=action,
                subject=f"{unit_hsaid}/{period}",
                detail={
                    "deadline": None if withdrawn else deadline.isoformat(),
                    "earlier": earlier.deadline.isoformat() if earlier else None,
                    "reason": reason,
                },
            )
        return row

    def dispens_deadline(self, unit_hsaid: str, period: Period) -> dt.datetime | None:
        """The extended deadline in force for a unit and period, if any (the newest grant)."""
        return self.dispens_for_period(period).get(unit_hsaid)

    def dispens_for_period(self, period: Period) -> dict[str, dt.datetime]:
        """Per unit, the extended deadline in force for a period (the newest row wins; a
        withdrawal leaves none)."""
        with self.ledger.reading() as s:
            return {u: row.deadline for u, row in _in_force(s, period).items()}

    def dispens_rows(self, period: Period) -> list[Dispens]:
        """Every dispens row of a period, grants, extensions and withdrawals, oldest first."""
        with self.ledger.reading() as s:
            return list(
                s.scalars(select(Dispens).where(Dispens.period == str(period)).order_by(Dispens.granted_at, Dispens.id))
            )

    def dispens_in_force(self, period: Period) -> dict[str, Dispens]:
        """Per unit, the dispens row in force for a period (none where withdrawn)."""
        with self.ledger.reading() as s:
            return _in_force(s, period)

    def add_answer(
        self, *, unit_hsaid: str, file_type: str, period: Period, action: str, comment: str | None, actor: str
    ) -> Approval:
        """Record a unit's approval or dispute, refused once the period is finalised."""
        row = Approval(
            unit_hsaid=unit_hsaid, file_type=file_type, period=str(period), action=action, comment=comment, actor=actor
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

    def finalise(self, *, period: Period, actor: str) -> dict[str, str]:
        """Mark a closed period FINALISED; the newest answer per ``unit/filtyp`` on record then."""
        with self.ledger.transaction() as s:
            if state_of(s, period) == "FINALISED":
                raise ApprovalRefused(f"period {period} is already finalised")
            state = s.get(PeriodState, str(period))
            assert state is not None  # a close always records the state (record_close)
            state.state, state.updated_at = "FINALISED", utcnow()
            answers = {f"{u}/{ft}": a for (u, ft), a in _latest_answers(s, period).items()}
            s.add(
                Approval(
                    unit_hsaid=None,
                    file_type=None,
                    period=str(period),
                    action="FASTSTALL",
                    comment=None,
                    actor=actor,
                    at=utcnow(),
                )
            )
            self.ledger.audit(
                s, actor=actor, action="period_finalised", subject=str(period), detail={"answers": answers}
            )
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


def _latest_answers(session: Session, period: Period) -> dict[tuple[str | None, str | None], str]:
    q = select(Approval).where(Approval.period == str(period), Approval.action.in_(ANSWERS)).order_by(Approval.id)
    return {(a.unit_hsaid, a.file_type): a.action for a in session.scalars(q)}


def _in_force(session: Session, period: Period) -> dict[str, Dispens]:
    q = select(Dispens).where(Dispens.period == str(period)).order_by(Dispens.granted_at, Dispens.id)
    newest: dict[str, Dispens] = {}
    for row in session.scalars(q):
        newest[row.unit_hsaid] = row
    return {u: row for u, row in newest.items() if not row.withdrawn}
