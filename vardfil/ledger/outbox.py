"""The messages sent, each once, keyed by what it is about (``ledger.outbox``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from vardfil.ledger.core import utcnow
from vardfil.ledger.tables import SentMessage

if TYPE_CHECKING:
    from vardfil.ledger.core import Core


class Outbox:
    """The sent-message table of one ledger."""

    def __init__(self, ledger: Core):
        self.ledger = ledger

    def claim_message(self, *, key: str, kind: str, recipients: int, via: str) -> str | None:
        """Record that a message is being sent: ``"queued"`` for a first try, ``"retried"`` for a
        message whose earlier sending failed, None when it was sent already (a rerun, a copy of a
        file, a second close). The record comes first: a message whose sending fails is marked so
        (:meth:`release_message`), and can be retried."""
        now = utcnow()
        try:
            with self.ledger.transaction() as s:
                s.add(SentMessage(key=key, kind=kind, recipients=recipients, via=via, sent_at=now))
        except IntegrityError:
            # Only one of two retries at once wins the failed row.
            with self.ledger.transaction() as s:
                won = s.execute(  # type: ignore[attr-defined]  # an UPDATE's CursorResult
                    update(SentMessage)
                    .where(SentMessage.key == key, SentMessage.state == "failed")
                    .values(state="sent", attempts=SentMessage.attempts + 1, sent_at=now, via=via)
                ).rowcount
            return "retried" if won else None
        return "queued"

    def release_message(self, key: str) -> None:
        """Mark a claimed message as not sent (kept on record: a retry may send it, and how long
        it has waited is watched)."""
        with self.ledger.transaction() as s:
            row = s.get(SentMessage, key)
            if row is not None:
                row.state = "failed"
                row.failed_at = row.failed_at or utcnow()

    def sent_messages(self, kind: str | None = None) -> list[SentMessage]:
        """The messages sent (not those whose sending failed), oldest first."""
        with self.ledger.reading() as s:
            q = select(SentMessage).where(SentMessage.state == "sent").order_by(SentMessage.sent_at, SentMessage.key)
            if kind is not None:
                q = q.where(SentMessage.kind == kind)
            return list(s.scalars(q))
