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
from vardfil.app import App
from vardfil.errors import AccountRefused
from vardfil.ledger import Ledger, utcnow
from vardfil.ledger.tables import Account, ApiToken

ROLES = ("unit", "unit_admin", "analyst", "admin")
LINK_HOURS = 48  # a one-time link to set a password works this long
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
        """Analysts and admins see every unit; a unit user (or unit admin) only its own."""
        return self.role in ("analyst", "admin") or (hsaid is not None and hsaid in self.units)

    def may_admin_unit(self, hsaid: str) -> bool:
        """A unit admin runs the accounts and API tokens of its own units; an admin of every unit."""
        return self.role == "admin" or (self.role == "unit_admin" and hsaid in self.units)

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
    if role in ("unit", "unit_admin") and not units:
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
    # A disabled account answers as a wrong password would, after the same scrypt.
    if acc is not None and acc.disabled_at is not None:
        ok = False
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
    if sess.expires_at < utcnow() or acc.disabled_at is not None:
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


# --- unit administrators -----------------------------------------------------------------------


def _manageable(app: App, unit_hsaid: str, username: str) -> Account:
    acc = app.ledger.accounts.by_name(username)
    # A unit admin manages the unit's own people: never an analyst or admin, never an account that
    # also acts for another unit (that unit's admin has a say too).
    if acc is None or acc.role not in ("unit", "unit_admin") or app.ledger.accounts.units_of(acc.id) != {unit_hsaid}:
        raise AccountRefused(f"kontot {username} hör inte till vårdenheten {unit_hsaid}")
    return acc


def send_password_link(app: App, acc: Account, *, actor: str, reset: bool) -> bool:
    """Mail the account a one-time link to set its password (with ``reset`` the old password and
    sessions stop working now). True when the message went out (or to the outbox)."""
    if not acc.email:
        raise AccountRefused(f"kontot {acc.username} har ingen e-postadress")
    from vardfil.mail import send_page

    token = secrets.token_urlsafe(32)
    now = utcnow()
    app.ledger.accounts.add_link(
        account_id=acc.id,
        token_sha256=_token_hash(token),
        now=now,
        expires_at=now + dt.timedelta(hours=LINK_HOURS),
        password_hash=hash_password(secrets.token_urlsafe(32)) if reset else None,
        actor=actor,
        action="password_reset" if reset else "password_link_sent",
    )
    link = f"{app.settings.base_url}/konto/losenord/{token}"
    title = "Välj lösenord till vardfil"
    lines = [
        f"Ett konto {acc.username} i vardfil (redovisningsfiler VG Primärvård och Vårdval Rehab) väntar på dig.",
        f"Välj ditt lösenord med länken nedan. Den fungerar en gång och i {LINK_HOURS} timmar.",
        "Har du inte bett om detta kan du bortse från meddelandet.",
    ]
    return send_page(
        app,
        key=f"link:{_token_hash(token)[:32]}",
        kind="account",
        to=[acc.email],
        title=title,
        lines=lines,
        link=link,
        link_text="Välj lösenord",
    )


def add_unit_account(app: App, *, unit_hsaid: str, username: str, email: str, actor: str) -> None:
    """A unit admin adds a person to the unit: the account gets no password anyone typed, but a
    one-time link by mail to choose one."""
    create_account(
        app.ledger,
        username=username,
        password=secrets.token_urlsafe(32),
        role="unit",
        units=[unit_hsaid],
        actor=actor,
        email=email,
    )
    acc = app.ledger.accounts.by_name(username)
    assert acc is not None
    send_password_link(app, acc, actor=actor, reset=False)


def reset_unit_account(app: App, *, unit_hsaid: str, username: str, actor: str) -> None:
    """A new one-time link by mail; the old password and sessions stop working now."""
    send_password_link(app, _manageable(app, unit_hsaid, username), actor=actor, reset=True)


def disable_unit_account(app: App, *, unit_hsaid: str, username: str, actor: str) -> None:
    """The person has left the unit: the account signs nobody in (a reset link enables it again)."""
    if username == actor:
        raise AccountRefused("du kan inte inaktivera ditt eget konto")
    acc = _manageable(app, unit_hsaid, username)
    app.ledger.accounts.disable(acc.id, actor=actor, now=utcnow())


def set_password_with_link(ledger: Ledger, token: str, password: str) -> str | None:
    """Set the password through a one-time link; the account's name, or None (used, expired,
    unknown). The password rules are those of every account."""
    if len(password) < 12:
        raise AccountRefused("lösenordet behöver minst 12 tecken")
    return ledger.accounts.use_link(_token_hash(token), password_hash=hash_password(password), now=utcnow())


def link_is_live(ledger: Ledger, token: str) -> bool:
    """Whether a one-time link can still be used (the page says so before a password is typed)."""
    return ledger.accounts.link_is_live(_token_hash(token), utcnow())


def unit_tokens(ledger: Ledger, unit_hsaid: str) -> list[ApiToken]:
    """The API tokens of one unit."""
    return [t for t in ledger.accounts.tokens() if t.unit_hsaid == unit_hsaid]


def revoke_unit_token(ledger: Ledger, *, unit_hsaid: str, name: str, actor: str) -> None:
    """A unit admin revokes one of its unit's tokens (never another unit's)."""
    if not any(t.name == name and t.revoked_at is None for t in unit_tokens(ledger, unit_hsaid)):
        raise AccountRefused(f"ingen aktiv API-nyckel {name} för vårdenheten")
    revoke_token(ledger, name=name, actor=actor)
