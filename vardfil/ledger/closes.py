"""The closes of the ledger: the snapshot, the published lines, the settlements, the period's
state (``ledger.closes``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from filespec.calendar import Period
from vardfil.errors import NotClosed
from vardfil.ledger.core import utcnow
from vardfil.ledger.tables import PeriodClose, PeriodState, PublishedFile, Settlement, UnderlagLineRow

if TYPE_CHECKING:
    from vardfil.ledger.core import Core


class Closes:
    """The close tables of one ledger."""

    def __init__(self, ledger: Core):
        self.ledger = ledger

    def close_of(self, period: Period) -> PeriodClose | None:
        """The recorded close of a period, if any."""
        with self.ledger.reading() as s:
            return s.get(PeriodClose, str(period))

    def period_closed(self, period: Period) -> bool:
        """Whether a close of the period is recorded."""
        return self.close_of(period) is not None

    def closed_periods(self, *, before: Period | None = None) -> list[Period]:
        """The closed periods, oldest first (only those before ``before`` when given)."""
        with self.ledger.reading() as s:
            q = select(PeriodClose.period).order_by(PeriodClose.period)
            if before is not None:
                q = q.where(PeriodClose.period < str(before))
            return [Period.parse(text) for text in s.scalars(q)]

    def recent_closes(self, limit: int = 12) -> list[PeriodClose]:
        """The newest closes first."""
        with self.ledger.reading() as s:
            return list(s.scalars(select(PeriodClose).order_by(PeriodClose.period.desc()).limit(limit)))

    def period_state(self, period: Period) -> PeriodState | None:
        """The recorded state of a period (None: still open, never closed)."""
        with self.ledger.reading() as s:
            return s.get(PeriodState, str(period))

    def underlag_lines(self, close_period: Period, *, unit_hsaid: str | None = None) -> list[UnderlagLineRow]:
        """The lines a close published (RATTELSE lines included), in the order recorded."""
        with self.ledger.reading() as s:
            q = select(UnderlagLineRow).where(UnderlagLineRow.close_period == str(close_period))
            if unit_hsaid is not None:
                q = q.where(UnderlagLineRow.unit_hsaid == unit_hsaid)
            return list(s.scalars(q.order_by(UnderlagLineRow.id)))

    def unit_lines(self, unit_hsaid: str) -> list[UnderlagLineRow]:
        """Every published line of one unit, over all closes."""
        with self.ledger.reading() as s:
            return list(
                s.scalars(
                    select(UnderlagLineRow).where(UnderlagLineRow.unit_hsaid == unit_hsaid).order_by(UnderlagLineRow.id)
                )
            )

    def settled(self, period: Period, file_type: str, unit_hsaid: str) -> Settlement | None:
        """What was last settled for a unit, filtyp and period (the newest settlement row)."""
        with self.ledger.reading() as s:
            q = (
                select(Settlement)
                .where(
                    Settlement.period == str(period),
                    Settlement.file_type == file_type,
                    Settlement.unit_hsaid == unit_hsaid,
                )
                .order_by(Settlement.id.desc())
            )
            return s.scalars(q).first()

    def record_close(
        self,
        close: PeriodClose,
        lines: list[UnderlagLineRow],
        settlements: list[Settlement],
        *,
        audit_detail: dict[str, Any],
    ) -> bool:
        """Record a close with its lines and settlements in one transaction.

        False when a concurrent close of the same period was recorded first: the caller answers
        with that one (a period has exactly one close).
        """
        try:
            with self.ledger.transaction() as s:
                s.add(close)
                s.flush()
                s.add_all(lines)
                s.add_all(settlements)
                if s.get(PeriodState, close.period) is None:
                    s.add(PeriodState(period=close.period, state="CLOSED", updated_at=close.recorded_at))
                self.ledger.audit(
                    s, actor=close.actor, action="period_closed", subject=close.period, detail=audit_detail
                )
        except IntegrityError:  # the period_close primary key: a close of this period exists
            return False
        return True

    def record_published(self, period: Period, files: list[tuple[str, str, int]], *, replace: bool = True) -> None:
        """Record published files (relative path, SHA-256, size) as written now; with ``replace``
        False only those not yet on record (a rerun that found them in place)."""
        now = utcnow()
        with self.ledger.transaction() as s:
            for path, sha, size in files:
                row = s.get(PublishedFile, path)
                if row is None:
                    s.add(PublishedFile(path=path, period=str(period), sha256=sha, size_bytes=size, written_at=now))
                elif replace:
                    row.sha256, row.size_bytes, row.written_at = sha, size, now

    def published_files(self) -> list[PublishedFile]:
        """Every published file on record, by path."""
        with self.ledger.reading() as s:
            return list(s.scalars(select(PublishedFile).order_by(PublishedFile.path)))


def state_of(session: Session, period: Period) -> str:
    """A closed period's state in a transaction (NotClosed when it has no close)."""
    if session.get(PeriodClose, str(period)) is None:
        raise NotClosed(f"period {period} is not closed")
    state = session.get(PeriodState, str(period))
    return state.state if state else "CLOSED"
