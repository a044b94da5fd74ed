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

from sqlalchemy import delete, select

from vardfil.ledger import Ledger, utcnow
from vardfil.models import Account, AccountUnit, WebSession

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
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(base64.b64decode(digest)))
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
    """Add an account (refuses a duplicate name, an unknown role, or a unit user without units)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    if role == "unit" and not units:
        raise ValueError("a unit user needs at least one HSA-id")
    if len(password) < 12:
        raise ValueError("a password needs at least 12 characters")
    with ledger.transaction() as s:
        if s.scalars(select(Account).where(Account.username == username)).first():
            raise ValueError(f"account {username!r} exists")
        acc = Account(username=username, password_hash=hash_password(password), role=role, created_at=utcnow())
        s.add(acc)
        s.flush()
        for h in units:
            s.add(AccountUnit(account_id=acc.id, unit_hsaid=h))
        ledger.audit(s, actor=actor, action="account_created", subject=username, detail={"role": role, "units": units})


def sign_in(ledger: Ledger, username: str, password: str) -> str | None:
    """A new session token for valid credentials (None otherwise); the attempt is audited."""
    with ledger.transaction() as s:
        acc = s.scalars(select(Account).where(Account.username == username)).first()
        ok = acc is not None and verify_password(password, acc.password_hash)
        ledger.audit(s, actor=username[:128], action="sign_in" if ok else "sign_in_failed", subject=username[:255])
        if not ok:
            return None
        token = secrets.token_urlsafe(32)
        now = utcnow()
        s.add(WebSession(token_sha256=hashlib.sha256(token.encode()).hexdigest(), account_id=acc.id,
                         csrf=secrets.token_urlsafe(32), created_at=now,
                         expires_at=now + dt.timedelta(hours=SESSION_HOURS)))
        return token


def user_for(ledger: Ledger, token: str | None) -> User | None:
    """The user of a session token, if the session exists and has not expired."""
    if not token:
        return None
    with ledger.reading() as s:
        sess = s.get(WebSession, hashlib.sha256(token.encode()).hexdigest())
        if sess is None or sess.expires_at < utcnow():
            return None
        acc = s.get(Account, sess.account_id)
        units = frozenset(s.scalars(select(AccountUnit.unit_hsaid).where(AccountUnit.account_id == acc.id)))
        return User(id=acc.id, username=acc.username, role=acc.role, units=units, csrf=sess.csrf)


def sign_out(ledger: Ledger, token: str | None) -> None:
    """End a session."""
    if token:
        with ledger.transaction() as s:
            s.execute(delete(WebSession).where(WebSession.token_sha256 == hashlib.sha256(token.encode()).hexdigest()))
