"""Storage of portal accounts and signed-in sessions (the rules are in ``vardfil.accounts``).

Only hashes are stored: the scrypt hash of a password and the SHA-256 of a session token, so a
copy of the database signs nobody in.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import delete, select

from vardfil.ledger.tables import Account, AccountUnit, WebSession

if TYPE_CHECKING:
    from vardfil.ledger.database import Ledger


class Accounts:
    """The account and session tables of one ledger (``ledger.accounts``)."""

    def __init__(self, ledger: Ledger):
        self.ledger = ledger

    def by_name(self, username: str) -> Account | None:
        """The account with this user name, if any."""
        with self.ledger.reading() as s:
            return s.scalars(select(Account).where(Account.username == username)).first()

    def add(
        self, *, username: str, password_hash: str, role: str, units: list[str], actor: str, now: dt.datetime
    ) -> Account | None:
        """Add an account with its units; None when the name is taken (checked in the same
        transaction, so two concurrent adds cannot both win)."""
        with self.ledger.transaction() as s:
            if s.scalars(select(Account).where(Account.username == username)).first():
                return None
            acc = Account(username=username, password_hash=password_hash, role=role, created_at=now)
            s.add(acc)
            s.flush()
            for h in units:
                s.add(AccountUnit(account_id=acc.id, unit_hsaid=h))
            self.ledger.audit(
                s, actor=actor, action="account_created", subject=username, detail={"role": role, "units": units}
            )
        return acc

    def add_session(
        self, *, account_id: int, token_sha256: str, csrf: str, now: dt.datetime, expires_at: dt.datetime, username: str
    ) -> None:
        """Record a signed-in session (and the successful sign-in in the audit log)."""
        with self.ledger.transaction() as s:
            s.add(
                WebSession(
                    token_sha256=token_sha256, account_id=account_id, csrf=csrf, created_at=now, expires_at=expires_at
                )
            )
            self.ledger.audit(s, actor=username, action="sign_in", subject=username)

    def session(self, token_sha256: str) -> tuple[WebSession, Account, frozenset[str]] | None:
        """A session with its account and the account's units, if the session exists."""
        with self.ledger.reading() as s:
            sess = s.get(WebSession, token_sha256)
            if sess is None:
                return None
            acc = s.get(Account, sess.account_id)
            if acc is None:
                return None
            units = frozenset(s.scalars(select(AccountUnit.unit_hsaid).where(AccountUnit.account_id == acc.id)))
            return sess, acc, units

    def end_session(self, token_sha256: str) -> None:
        """Remove a session."""
        with self.ledger.transaction() as s:
            s.execute(delete(WebSession).where(WebSession.token_sha256 == token_sha256))
