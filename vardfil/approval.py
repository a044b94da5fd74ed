"""Approval of a closed period: units approve or dispute their underlag, analysts finalise.

- A unit approves (``GODKANN``) or disputes (``INVAND``, with a comment) its underlag of a closed,
  not yet finalised period. It may change its answer until finalisation; every answer is kept.
- An analyst finalises (``FASTSTALL``) a closed period. A finalised underlag never changes: no
  further answers are taken, and later corrections of that period are settled as RATTELSE in a
  later period's underlag, never in its own.
"""

from __future__ import annotations

from sqlalchemy import select

from vardfil.ledger import Ledger, utcnow
from vardfil.models import Approval, PeriodClose, PeriodState

ACTIONS = ("GODKANN", "INVAND")


class ApprovalError(Exception):
    """The answer cannot be taken (period not closed, already finalised, missing comment)."""


def _state(session, period: str) -> str:
    if session.get(PeriodClose, period) is None:
        raise ApprovalError(f"period {period} is not closed")
    state = session.get(PeriodState, period)
    return state.state if state else "CLOSED"


def answer(ledger: Ledger, *, unit_hsaid: str, file_type: str, period: str, action: str, comment: str | None,
           actor: str) -> Approval:
    """Record a unit's approval or dispute of its underlag."""
    if action not in ACTIONS:
        raise ApprovalError(f"action must be one of {ACTIONS}")
    if action == "INVAND" and not (comment or "").strip():
        raise ApprovalError("a dispute needs a comment")
    with ledger.transaction() as s:
        if _state(s, period) == "FINALISED":
            raise ApprovalError(f"period {period} is finalised: its underlag never changes")
        row = Approval(unit_hsaid=unit_hsaid, file_type=file_type, period=period, action=action,
                       comment=(comment or "").strip() or None, actor=actor, at=utcnow())
        s.add(row)
        ledger.audit(s, actor=actor, action=f"underlag_{action.lower()}", subject=f"{unit_hsaid}/{period}",
                     detail={"file_type": file_type, "comment": row.comment})
    return row


def finalise(ledger: Ledger, *, period: str, actor: str) -> dict:
    """Finalise a closed period; returns the answers on record (the newest per unit)."""
    with ledger.transaction() as s:
        if _state(s, period) == "FINALISED":
            raise ApprovalError(f"period {period} is already finalised")
        state = s.get(PeriodState, period)
        state.state, state.updated_at = "FINALISED", utcnow()
        answers = latest_answers(s, period)
        s.add(Approval(unit_hsaid=None, file_type=None, period=period, action="FASTSTALL", comment=None,
                       actor=actor, at=utcnow()))
        ledger.audit(s, actor=actor, action="period_finalised", subject=period,
                     detail={"answers": {f"{u}/{ft}": a for (u, ft), a in answers.items()}})
    return {"period": period, "state": "FINALISED", "answers": {f"{u}/{ft}": a for (u, ft), a in answers.items()}}


def latest_answers(session, period: str) -> dict[tuple[str, str], str]:
    """The newest answer of every unit that answered."""
    q = select(Approval).where(Approval.period == period, Approval.action.in_(ACTIONS)).order_by(Approval.id)
    return {(a.unit_hsaid, a.file_type): a.action for a in session.scalars(q)}
