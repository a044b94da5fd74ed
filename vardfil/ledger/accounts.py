"""Storage of portal accounts and signed-in sessions (the rules are in ``vardfil.accounts``).

Only hashes are stored: the scrypt hash of a password and the SHA-256 of a session token, so a
copy of the database signs nobody in.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import delete, select

from vardfil.ledger.tables import Account, AccountLink, AccountUnit, ApiToken, SignInThrottle, WebSession

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
        self,
        *,
        username: str,
        password_hash: str,
        role: str,
        units: list[str],
        actor: str,
        now: dt.datetime,
        email: str | None = None,
    ) -> Account | None:
        """Add an account with its units; None when the name is taken (checked in the same
        transaction, so two concurrent adds cannot both win)."""
        with self.ledger.transaction() as s:
            if s.scalars(select(Account).where(Account.username == username)).first():
                return None
            acc = Account(username=username, password_hash=password_hash, role=role, created_at=now, email=email)
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

    def emails_of_unit(self, unit_hsaid: str) -> list[str]:
        """The e-mail addresses of the accounts that act for a unit (the people who get its mail)."""
        with self.ledger.reading() as s:
            q = (
                select(Account.email)
                .join(AccountUnit, AccountUnit.account_id == Account.id)
                .where(AccountUnit.unit_hsaid == unit_hsaid, Account.email.is_not(None))
                .order_by(Account.id)
            )
            return [e for e in s.scalars(q) if e]

    def emails_of_units(self, units: list[str]) -> dict[str, list[str]]:
        """``emails_of_unit`` for many units in one query (the close tells every unit at once)."""
        found: dict[str, list[str]] = {u: [] for u in units}
        with self.ledger.reading() as s:
            q = (
                select(AccountUnit.unit_hsaid, Account.email)
                .join(AccountUnit, AccountUnit.account_id == Account.id)
                .where(AccountUnit.unit_hsaid.in_(units), Account.email.is_not(None))
                .order_by(Account.id)
            )
            for unit, email in s.execute(q):
                if email:
                    found[unit].append(email)
        return found

    def emails_of_roles(self, roles: tuple[str, ...]) -> list[str]:
        """The e-mail addresses of the accounts with these roles (the analysts' mail)."""
        with self.ledger.reading() as s:
            q = select(Account.email).where(Account.role.in_(roles), Account.email.is_not(None)).order_by(Account.id)
            return [e for e in s.scalars(q) if e]

    # --- sessions: rotation and purging --------------------------------------------------------

    def end_other_sessions(self, account_id: int, *, keep: str | None = None) -> None:
        """End every session of an account but ``keep`` (a new sign-in rotates the old ones out)."""
        with self.ledger.transaction() as s:
            q = delete(WebSession).where(WebSession.account_id == account_id)
            if keep is not None:
                q = q.where(WebSession.token_sha256 != keep)
            s.execute(q)

    def purge_expired_sessions(self, now: dt.datetime) -> None:
        """Remove sessions past their expiry (they sign nobody in; they only grow the table)."""
        with self.ledger.transaction() as s:
            s.execute(delete(WebSession).where(WebSession.expires_at < now))

    # --- the sign-in throttle --------------------------------------------------------------------

    def locked_until(self, keys: list[str], now: dt.datetime) -> dt.datetime | None:
        """The latest lock in force on any of the keys, if any."""
        with self.ledger.reading() as s:
            rows = s.scalars(select(SignInThrottle).where(SignInThrottle.key.in_(keys)))
            locks = [r.locked_until for r in rows if r.locked_until is not None and r.locked_until > now]
        return max(locks, default=None)

    def count_failure(
        self, key: str, *, now: dt.datetime, window: dt.timedelta, limit: int, lock_for: dt.timedelta
    ) -> bool:
        """Count a failed sign-in under ``key``; True when this failure locks the key."""
        with self.ledger.transaction() as s:
            # Rows whose window has passed and whose lock has ended say nothing any more.
            s.execute(
                delete(SignInThrottle).where(
                    SignInThrottle.first_failure_at < now - window,
                    (SignInThrottle.locked_until.is_(None)) | (SignInThrottle.locked_until < now),
                )
            )
            row = s.get(SignInThrottle, key)
            if row is None:
                row = SignInThrottle(key=key, failures=0, first_failure_at=now, locked_until=None)
                s.add(row)
            row.failures += 1
            if row.failures >= limit:
                row.locked_until, row.failures, row.first_failure_at = now + lock_for, 0, now
                return True
            return False

    def clear_failures(self, key: str) -> None:
        """A successful sign-in forgives the account's earlier failures."""
        with self.ledger.transaction() as s:
            s.execute(delete(SignInThrottle).where(SignInThrottle.key == key))

    def set_password_hash(self, account_id: int, password_hash: str) -> None:
        """Store a password hash made with the current scrypt cost (rehash on sign-in)."""
        with self.ledger.transaction() as s:
            acc = s.get(Account, account_id)
            if acc is not None:
                acc.password_hash = password_hash

    # --- API tokens ------------------------------------------------------------------------------

    def add_token(self, *, name: str, unit_hsaid: str, token_sha256: str, actor: str, now: dt.datetime) -> bool:
        """Record a token (its hash only); False when the name is taken."""
        with self.ledger.transaction() as s:
            if s.scalars(select(ApiToken).where(ApiToken.name == name)).first():
                return False
            s.add(
                ApiToken(
                    name=name,
                    unit_hsaid=unit_hsaid,
                    token_sha256=token_sha256,
                    created_by=actor,
                    created_at=now,
                    revoked_at=None,
                )
            )
            self.ledger.audit(
                s, actor=actor, action="api_token_created", subject=name, detail={"unit_hsaid": unit_hsaid}
            )
        return True

    def tokens(self) -> list[ApiToken]:
        """Every token, oldest first (revoked ones included: they are the record)."""
        with self.ledger.reading() as s:
            return list(s.scalars(select(ApiToken).order_by(ApiToken.id)))

    def revoke_token(self, name: str, *, actor: str, now: dt.datetime) -> bool:
        """Revoke a token by name; False when there is no live token of that name."""
        with self.ledger.transaction() as s:
            tok = s.scalars(select(ApiToken).where(ApiToken.name == name, ApiToken.revoked_at.is_(None))).first()
            if tok is None:
                return False
            tok.revoked_at = now
            self.ledger.audit(
                s, actor=actor, action="api_token_revoked", subject=name, detail={"unit_hsaid": tok.unit_hsaid}
            )
        return True

    def token_by_hash(self, token_sha256: str) -> ApiToken | None:
        """The live token with this hash, if any."""
        with self.ledger.reading() as s:
            return s.scalars(
                select(ApiToken).where(ApiToken.token_sha256 == token_sha256, ApiToken.revoked_at.is_(None))
            ).first()

    # --- unit administration --------------------------------------------------------------------

    def of_unit(self, unit_hsaid: str) -> list[Account]:
        """The accounts that act for a unit, oldest first."""
        with self.ledger.reading() as s:
            q = (
                select(Account)
                .join(AccountUnit, AccountUnit.account_id == Account.id)
                .where(AccountUnit.unit_hsaid == unit_hsaid)
                .order_by(Account.id)
            )
            return list(s.scalars(q))

    def units_of(self, account_id: int) -> frozenset[str]:
        """The units an account acts for."""
        with self.ledger.reading() as s:
            return frozenset(s.scalars(select(AccountUnit.unit_hsaid).where(AccountUnit.account_id == account_id)))

    def disable(self, account_id: int, *, actor: str, now: dt.datetime) -> None:
        """Disable an account and end its sessions (it signs nobody in until a new link is used)."""
        with self.ledger.transaction() as s:
            acc = s.get(Account, account_id)
            if acc is None:
                return
            acc.disabled_at = now
            s.execute(delete(WebSession).where(WebSession.account_id == account_id))
            self.ledger.audit(s, actor=actor, action="account_disabled", subject=acc.username)

    def add_link(
        self,
        *,
        account_id: int,
        token_sha256: str,
        now: dt.datetime,
        expires_at: dt.datetime,
        password_hash: str | None,
        actor: str,
        action: str,
    ) -> None:
        """Record a one-time link; with ``password_hash`` (a reset) the old password and sessions
        stop working at once."""
        with self.ledger.transaction() as s:
            acc = s.get(Account, account_id)
            if acc is None:
                return
            s.add(
                AccountLink(
                    token_sha256=token_sha256,
                    account_id=account_id,
                    created_at=now,
                    expires_at=expires_at,
                    used_at=None,
                )
            )
            if password_hash is not None:
                acc.password_hash = password_hash
                s.execute(delete(WebSession).where(WebSession.account_id == account_id))
            self.ledger.audit(s, actor=actor, action=action, subject=acc.username)

    def use_link(self, token_sha256: str, *, password_hash: str, now: dt.datetime) -> str | None:
        """Set the password through a live link (once); the account's name, or None."""
        with self.ledger.transaction() as s:
            link = s.get(AccountLink, token_sha256)
            if link is None or link.used_at is not None or link.expires_at < now:
                return None
            acc = s.get(Account, link.account_id)
            if acc is None:
                return None
            link.used_at = now
            acc.password_hash, acc.disabled_at = password_hash, None
            self.ledger.audit(s, actor=acc.username, action="password_set_by_link", subject=acc.username)
            return acc.username

    def link_is_live(self, token_sha256: str, now: dt.datetime) -> bool:
        """Whether a link can still be used."""
        with self.ledger.reading() as s:
            link = s.get(AccountLink, token_sha256)
            return link is not None and link.used_at is None and link.expires_at >= now
