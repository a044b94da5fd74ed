"""The messages sent, each once, keyed by what it is about (``ledger.outbox``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from vardfil.ledger.core import utcnow
from vardfil.ledger.tables import SentMessage

if TYPE_CHECKING:
    from vardfil.ledger.core import Core


class Outbox:
    """The sent-message table of one ledger."""

    def __init__(self, ledger: Core):
        self.ledger = ledger

    def claim_message(self, *, key: str, kind: str, recipients: int, via: str) -> bool:
        """Record that a message is being sent; False when one with this key was sent already
        (a rerun, a copy of a file, a second close). The record comes first: a message whose
        sending fails is released again (:meth:`release_message`), so it can be retried."""
        try:
            with self.ledger.transaction() as s:
                s.add(SentMessage(key=key, kind=kind, recipients=recipients, via=via, sent_at=utcnow()))
        except IntegrityError:
            return False
        return True

    def release_message(self, key: str) -> None:
        """Forget a claimed message that could not be sent."""
        with self.ledger.transaction() as s:
            row = s.get(SentMessage, key)
            if row is not None:
                s.delete(row)

    def sent_messages(self, kind: str | None = None) -> list[SentMessage]:
        """The messages sent, oldest first."""
        with self.ledger.reading() as s:
            q = select(SentMessage).order_by(SentMessage.sent_at, SentMessage.key)
            if kind is not None:
                q = q.where(SentMessage.kind == kind)
            return list(s.scalars(q))
