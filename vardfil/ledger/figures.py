"""What the ledger says about the service's health, read at each scrape of ``/metrics``
(``ledger.figures``): counts and instants only, never a person or a patient.

The CLI and the DAG tasks push no metrics; what they do shows here, since it is in the ledger.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from vardfil.ledger.tables import AuditLog, PeriodClose, PeriodState, ReceivedFile, SentMessage

if TYPE_CHECKING:
    from vardfil.ledger.core import Core


class Figures:
    """The health figures of one ledger."""

    def __init__(self, ledger: Core):
        self.ledger = ledger

    def files_by_status(self) -> dict[str, int]:
        """Received files per kvittens status."""
        with self.ledger.reading() as s:
            rows = s.execute(select(ReceivedFile.status, func.count()).group_by(ReceivedFile.status))
            return {key: value for key, value in rows}  # noqa: C416 - a Result has keys(): dict() reads it as a mapping

    def periods_by_state(self) -> dict[str, int]:
        """Recorded periods per state (CLOSED, FINALISED; a period never closed has no row)."""
        with self.ledger.reading() as s:
            rows = s.execute(select(PeriodState.state, func.count()).group_by(PeriodState.state))
            return {key: value for key, value in rows}  # noqa: C416 - a Result has keys(): dict() reads it as a mapping

    def first_period(self) -> str | None:
        """The earliest period any file or close names (where this ledger's history starts)."""
        with self.ledger.reading() as s:
            files = s.scalar(select(func.min(ReceivedFile.period)))
            closes = s.scalar(select(func.min(PeriodClose.period)))
        return min((p for p in (files, closes) if p), default=None)

    def closes(self, periods: list[str]) -> dict[str, dt.datetime]:
        """When each of ``periods`` that is closed was last closed (recorded)."""
        with self.ledger.reading() as s:
            rows = s.execute(select(PeriodClose.period, PeriodClose.recorded_at).where(PeriodClose.period.in_(periods)))
            return {key: value for key, value in rows}  # noqa: C416 - a Result has keys(): dict() reads it as a mapping

    def unsent_mail(self) -> tuple[int, dt.datetime | None]:
        """Messages whose sending failed and has not yet succeeded, and when the oldest first failed."""
        with self.ledger.reading() as s:
            n, oldest = s.execute(
                select(func.count(), func.min(SentMessage.failed_at)).where(SentMessage.state == "failed")
            ).one()
        return n, oldest

    def last_run(self, action: str) -> tuple[dt.datetime, dict[str, Any]] | None:
        """The newest audit entry of ``action`` (the nightly run, verify): when, and its detail."""
        with self.ledger.reading() as s:
            row = s.execute(
                select(AuditLog.at, AuditLog.detail).where(AuditLog.action == action).order_by(AuditLog.id.desc())
            ).first()
        if row is None:
            return None
        return row[0], json.loads(row[1]) if row[1] else {}
