"""Approval of a closed period: units approve or dispute their underlag, analysts finalise.

- A unit approves (``GODKANN``) or disputes (``INVAND``, with a comment) its underlag of a closed,
  not yet finalised period. It may change its answer until finalisation; every answer is kept.
- An analyst finalises (``FASTSTALL``) a closed period. A finalised underlag never changes: no
  further answers are taken, and later corrections of that period are settled as RATTELSE in a
  later period's underlag, never in its own.
"""

from __future__ import annotations

from typing import Any

from filespec.calendar import Period
from vardfil.app import App
from vardfil.errors import ApprovalRefused
from vardfil.ledger import Approval, Ledger
from vardfil.ledger.decisions import ANSWERS
from vardfil.mail import notify_dispute

ACTIONS = ANSWERS


def answer(
    app: App, *, unit_hsaid: str, file_type: str, period: Period, action: str, comment: str | None, actor: str
) -> Approval:
    """Record a unit's approval or dispute of its underlag (NotClosed, ApprovalRefused); a dispute
    is mailed to the analysts."""
    if action not in ACTIONS:
        raise ApprovalRefused(f"action must be one of {ACTIONS}")
    comment = (comment or "").strip() or None
    if action == "INVAND" and comment is None:
        raise ApprovalRefused("a dispute needs a comment")
    row = app.ledger.decisions.add_answer(
        unit_hsaid=unit_hsaid, file_type=file_type, period=period, action=action, comment=comment, actor=actor
    )
    if action == "INVAND":
        notify_dispute(app, approval_id=row.id, unit_hsaid=unit_hsaid, period=period, comment=comment)
    return row


def finalise(ledger: Ledger, *, period: Period, actor: str) -> dict[str, Any]:
    """Finalise a closed period; returns the answers on record (the newest per unit)."""
    answers = ledger.decisions.finalise(period=period, actor=actor)
    return {"period": str(period), "state": "FINALISED", "answers": answers}
