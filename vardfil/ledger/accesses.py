"""The access log and its follow-ups (``ledger.accesses``), and the gallring decisions and what
they removed (``ledger.retention``)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from filespec.calendar import Period
from vardfil.ledger.core import utcnow
from vardfil.ledger.tables import AccessEntry, GallringDecision, LogReview, ReceivedFile

if TYPE_CHECKING:
    from vardfil.ledger.core import Core


class Accesses:
    """The access-log tables of one ledger."""

    def __init__(self, ledger: Core):
        self.ledger = ledger

    def record(self, entry: AccessEntry) -> None:
        """Append one entry in a transaction of its own; raises when it cannot be written (the
        caller then serves nothing)."""
        with self.ledger.transaction() as s:
            s.add(entry)

    def entries(
        self,
        *,
        person: str | None = None,
        unit: str | None = None,
        period: Period | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
    ) -> list[AccessEntry]:
        """Entries oldest first, narrowed by the person (HSA-id or typed actor), the unit, the
        period the data is of, and when."""
        with self.ledger.reading() as s:
            q = select(AccessEntry).order_by(AccessEntry.id)
            if person is not None:
                q = q.where((AccessEntry.hsa_id == person) | (AccessEntry.actor == person))
            if unit is not None:
                q = q.where(AccessEntry.unit_hsaid == unit)
            if period is not None:
                q = q.where(AccessEntry.period == str(period))
            if since is not None:
                q = q.where(AccessEntry.at >= since)
            if until is not None:
                q = q.where(AccessEntry.at < until)
            return list(s.scalars(q))

    def add_review(self, review: LogReview, *, actor: str, detail: dict[str, object]) -> LogReview:
        """Record a reviewer's sign-off of a follow-up report (and audit it)."""
        with self.ledger.transaction() as s:
            s.add(review)
            s.flush()
            self.ledger.audit(s, actor=actor, action="log_review_signed", subject=review.period, detail=detail)
        return review

    def reviews(self, period: Period | None = None) -> list[LogReview]:
        """The sign-offs, oldest first."""
        with self.ledger.reading() as s:
            q = select(LogReview).order_by(LogReview.id)
            if period is not None:
                q = q.where(LogReview.period == str(period))
            return list(s.scalars(q))


class Retention:
    """Gallring decisions and the files they removed."""

    def __init__(self, ledger: Core):
        self.ledger = ledger

    def add_decision(self, decision: GallringDecision) -> None:
        """Record a decision (audited)."""
        with self.ledger.transaction() as s:
            s.add(decision)
            self.ledger.audit(
                s,
                actor=decision.recorded_by,
                action="gallring_decision",
                subject=decision.ref,
                detail={"what": decision.what, "before": decision.before.isoformat()},
            )

    def decision(self, ref: str) -> GallringDecision | None:
        """A recorded decision by its reference."""
        with self.ledger.reading() as s:
            return s.get(GallringDecision, ref)

    def mark_gallrad(self, receipt_ids: list[str], *, ref: str, actor: str, detail: dict[str, object]) -> None:
        """The files' bytes are gone under decision ``ref``: their records say so (audited)."""
        now = utcnow()
        with self.ledger.transaction() as s:
            s.execute(
                update(ReceivedFile)
                .where(ReceivedFile.receipt_id.in_(receipt_ids))
                .values(gallrad_at=now, gallrad_by=ref)
            )
            self.ledger.audit(s, actor=actor, action="gallrad", subject=ref, detail=detail)
