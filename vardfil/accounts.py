"""Portal accounts and sessions for the embedded default.

Passwords are hashed with scrypt (the standard library's memory-hard KDF; n=2**14, r=8, p=1,
16-byte salt). In the region's deployment the portal sits behind its SSO: the place to plug it in
is ``vardfil.portal.app.current_user`` (map the SSO identity to an account and its units); the
role and unit checks stay as they are.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from vardfil.errors import AccountRefused
from vardfil.ledger import Ledger, utcnow

ROLES = ("unit", "analyst", "admin")
SESSION_HOURS = 8
_N, _R, _P = 2**14, 8, 1


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of a password against a stored hash."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(base64.b64decode(digest)),
        )
        return hmac.compare_digest(got, base64.b64decode(digest))
    except (ValueError, TypeError):
        return False


@dataclass(frozen=True, kw_only=True)
class User:
    """A signed-in user."""

    id: int
    username: str
    role: str
    units: frozenset[str]
    csrf: str

    def may_see_unit(self, hsaid: str | None) -> bool:
        """Analysts and admins see every unit; a unit user only its own."""
        return self.role in ("analyst", "admin") or (hsaid is not None and hsaid in self.units)

    @property
    def analyst(self) -> bool:
        return self.role in ("analyst", "admin")


def create_account(ledger: Ledger, *, username: str, password: str, role: str, units: list[str], actor: str) -> None:
    """Add an account; :class:`AccountRefused` for a duplicate name, an unknown role, a short
    password, or a unit user without units."""
    if role not in ROLES:
        raise AccountRefused(f"role must be one of {ROLES}")
    if role == "unit" and not units:
        raise AccountRefused("a unit user needs at least one HSA-id")
    if len(password) < 12:
        raise AccountRefused("a password needs at least 12 characters")
    if (
        ledger.accounts.add(
            username=username, password_hash=hash_password(password), role=role, units=units, actor=actor, now=utcnow()
        )
        is None
    ):
        raise AccountRefused(f"account {username!r} exists")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sign_in(ledger: Ledger, username: str, password: str) -> str | None:
    """A new session token for valid credentials (None otherwise); the attempt is audited."""
    acc = ledger.accounts.by_name(username)
    # Failed attempts are audited under the name typed (cut to the column's size): an analyst
    # looking for guessing needs to see what was tried.
    if acc is None or not verify_password(password, acc.password_hash):
        ledger.add_audit(actor=username[:128], action="sign_in_failed", subject=username[:255])
        return None
    token = secrets.token_urlsafe(32)
    now = utcnow()
    ledger.accounts.add_session(
        account_id=acc.id,
        token_sha256=_token_hash(token),
        csrf=secrets.token_urlsafe(32),
        now=now,
        expires_at=now + dt.timedelta(hours=SESSION_HOURS),
        username=acc.username,
    )
    return token


def user_for(ledger: Ledger, token: str | None) -> User | None:
    """The user of a session token, if the session exists and has not expired."""
    if not token:
        return None
    found = ledger.accounts.session(_token_hash(token))
    if found is None:
        return None
    sess, acc, units = found
    if sess.expires_at < utcnow():
        return None
    return User(id=acc.id, username=acc.username, role=acc.role, units=units, csrf=sess.csrf)


def sign_out(ledger: Ledger, token: str | None) -> None:
    """End a session."""
    if token:
        ledger.accounts.end_session(_token_hash(token))
