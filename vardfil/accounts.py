"""Portal accounts, sessions and the journal systems' API tokens (the rules; storage is
``vardfil.ledger.accounts``).

Passwords are hashed with scrypt at OWASP's current recommendation (N=2**17, r=8, p=1, 16-byte
salt, 128 MiB); a hash made at an older cost is replaced at the next successful sign-in. Sign-in
is throttled per typed name (5 failures in 15 minutes lock it for 15 minutes) and per address
(20 in 15 minutes), and an unknown name costs the same scrypt as a known one, so the answer time
does not say whether an account exists. A new sign-in ends the account's earlier sessions, and
expired sessions are purged.

In the region's deployment the portal sits behind its SSO: the place to plug it in is
``vardfil.portal.access.current_user`` (map the SSO identity to an account and its units); the role
and unit checks stay as they are.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from filespec import Reference
from vardfil.errors import AccountRefused
from vardfil.ledger import Ledger, utcnow
from vardfil.ledger.tables import ApiToken

ROLES = ("unit", "analyst", "admin")
SESSION_HOURS = 8
# OWASP Password Storage Cheat Sheet: scrypt N=2^17, r=8, p=1 (128 MiB of memory per hash).
_N, _R, _P = 2**17, 8, 1
_MAXMEM = 256 * 1024 * 1024  # hashlib's default (32 MiB) is below what N=2^17, r=8 needs
THROTTLE_WINDOW = dt.timedelta(minutes=15)
LOCK_FOR = dt.timedelta(minutes=15)
NAME_LIMIT, ADDRESS_LIMIT = 5, 20
TOKEN_PREFIX = "vf_"
# An address a mail server will take: one @, no spaces; the server decides the rest.
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32, maxmem=_MAXMEM)
    return f"scrypt${_N}${_R}${_P}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


# Verified against when the typed name has no account, so that both answers cost one scrypt.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


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
            maxmem=_MAXMEM,
        )
        return hmac.compare_digest(got, base64.b64decode(digest))
    except (ValueError, TypeError):
        return False


def _outdated(stored: str) -> bool:
    return not stored.startswith(f"scrypt${_N}${_R}${_P}$")


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
        """Analysts and admins run the month."""
        return self.role in ("analyst", "admin")


def create_account(
    ledger: Ledger, *, username: str, password: str, role: str, units: list[str], actor: str, email: str | None = None
) -> None:
    """Add an account; :class:`AccountRefused` for a duplicate name, an unknown role, a short
    password, or a unit user without units."""
    if role not in ROLES:
        raise AccountRefused(f"role must be one of {ROLES}")
    if role == "unit" and not units:
        raise AccountRefused("a unit user needs at least one HSA-id")
    if len(password) < 12:
        raise AccountRefused("a password needs at least 12 characters")
    if email is not None and not EMAIL.fullmatch(email):
        raise AccountRefused(f"not an e-mail address: {email!r}")
    if (
        ledger.accounts.add(
            username=username,
            password_hash=hash_password(password),
            role=role,
            units=units,
            actor=actor,
            now=utcnow(),
            email=email,
        )
        is None
    ):
        raise AccountRefused(f"account {username!r} exists")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, kw_only=True)
class SignIn:
    """The outcome of a sign-in: a session token, or why not."""

    token: str | None
    locked_until: dt.datetime | None = None  # refused without checking: too many failures


def sign_in(ledger: Ledger, username: str, password: str, *, address: str = "") -> SignIn:
    """Check credentials under the throttle; a new session (ending the account's older ones)."""
    now = utcnow()
    name_key, addr_key = f"user:{username.casefold()[:128]}", f"addr:{address[:64]}"
    locked = ledger.accounts.locked_until([name_key, addr_key], now)
    if locked is not None:
        return SignIn(token=None, locked_until=locked)
    acc = ledger.accounts.by_name(username)
    ok = verify_password(password, acc.password_hash if acc is not None else _DUMMY_HASH)
    if acc is None or not ok:
        # Audited only for an existing account: a row per typed name would let anyone fill the
        # audit log. Lock-outs are audited whatever the name, since they are what an analyst acts on.
        if acc is not None:
            ledger.add_audit(actor=acc.username, action="sign_in_failed", subject=acc.username)
        for key, limit in ((name_key, NAME_LIMIT), (addr_key, ADDRESS_LIMIT)):
            if ledger.accounts.count_failure(key, now=now, window=THROTTLE_WINDOW, limit=limit, lock_for=LOCK_FOR):
                ledger.add_audit(
                    actor="portal",
                    action="sign_in_locked",
                    subject=key[:255],
                    detail={"until": (now + LOCK_FOR).isoformat()},
                )
        return SignIn(token=None)
    if _outdated(acc.password_hash):
        ledger.accounts.set_password_hash(acc.id, hash_password(password))
    ledger.accounts.clear_failures(name_key)
    token = secrets.token_urlsafe(32)
    ledger.accounts.add_session(
        account_id=acc.id,
        token_sha256=_token_hash(token),
        csrf=secrets.token_urlsafe(32),
        now=now,
        expires_at=now + dt.timedelta(hours=SESSION_HOURS),
        username=acc.username,
    )
    # A sign-in rotates: the account's earlier sessions (a forgotten browser elsewhere) end here.
    ledger.accounts.end_other_sessions(acc.id, keep=_token_hash(token))
    ledger.accounts.purge_expired_sessions(now)
    return SignIn(token=token)


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


# --- API tokens of the journal systems ---------------------------------------------------------


def create_token(ledger: Ledger, reference: Reference, *, unit_hsaid: str, name: str, actor: str) -> str:
    """A new token acting for one unit; returned once (only its SHA-256 is stored)."""
    if unit_hsaid not in reference.units:
        raise AccountRefused(f"vårdenheten {unit_hsaid} finns inte i enhetsregistret")
    if not name.strip() or len(name) > 128:
        raise AccountRefused("a token needs a name of 1–128 characters")
    # 256 random bits; the prefix lets secret scanners and people recognise a leaked vardfil token.
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    if not ledger.accounts.add_token(
        name=name.strip(), unit_hsaid=unit_hsaid, token_sha256=_token_hash(token), actor=actor, now=utcnow()
    ):
        raise AccountRefused(f"a token named {name!r} exists")
    return token


def list_tokens(ledger: Ledger) -> list[ApiToken]:
    """Every token, revoked ones included (never the token itself: it is not stored)."""
    return ledger.accounts.tokens()


def revoke_token(ledger: Ledger, *, name: str, actor: str) -> None:
    """Revoke a token; AccountRefused when no live token has that name."""
    if not ledger.accounts.revoke_token(name, actor=actor, now=utcnow()):
        raise AccountRefused(f"no live token named {name!r}")


def token_unit(ledger: Ledger, token: str | None) -> ApiToken | None:
    """The live token a bearer token is (and so the unit it acts for), if any."""
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        return None
    return ledger.accounts.token_by_hash(_token_hash(token))
