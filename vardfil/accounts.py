"""Portal accounts, sessions and the journal systems' API tokens (the rules; storage is
``vardfil.ledger.accounts``).

Passwords are hashed with scrypt at OWASP's current recommendation (N=2**17, r=8, p=1, 16-byte
salt, 128 MiB); a hash made at an older cost is replaced at the next successful sign-in. Sign-in
is throttled per typed name and per address, each attempt counted *before* it is checked (so
parallel guesses are counted one by one): a name takes 3 attempts at once, then each next one
waits twice as long (1 s, 2 s, 4 s … at most 15 minutes), an address 20; strangers' guesses slow a
name down but never lock its owner out for long. An unknown name costs the same scrypt as a known
one, so the answer time does not say whether an account exists. A new sign-in ends the account's
earlier sessions; a session ends after 8 hours, or after 30 minutes without a request
(``VARDFIL_SESSION_IDLE_MINUTES``); expired sessions are purged.

Account and token names follow ``vardfil.names``; who did something is a typed actor
(``vardfil.actors``): ``person:<account id>``, ``token:<token id>``.

In the region's deployment people sign in through its IdP instead (``vardfil.oidc``,
``vardfil.rights``, :func:`sign_in_person`): their account is their HSA-id and their units come
from their commissions; the role and unit checks are the same for both kinds of account.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass

from filespec import Reference
from vardfil.actors import Actor, job, person
from vardfil.app import App
from vardfil.errors import AccountRefused
from vardfil.ledger import Ledger, utcnow
from vardfil.ledger.tables import Account, ApiToken
from vardfil.metrics import signed_in
from vardfil.names import check_name, name_key
from vardfil.rights import Person

ROLES = ("unit", "unit_admin", "analyst", "admin", "auditor")  # auditor: the access log's follow-up only
LINK_HOURS = 48  # a one-time link to set a password works this long
SESSION_HOURS = 8
# OWASP Password Storage Cheat Sheet: scrypt N=2^17, r=8, p=1 (128 MiB of memory per hash).
_N, _R, _P = 2**17, 8, 1
_MAXMEM = 256 * 1024 * 1024  # hashlib's default (32 MiB) is below what N=2^17, r=8 needs
QUIET = dt.timedelta(hours=1)  # a key left alone this long after its last wait is forgiven
LONGEST_WAIT = dt.timedelta(minutes=15)
NAME_FREE, ADDRESS_FREE = 3, 20  # attempts taken at once before each next one waits
IDLE_MINUTES = 30
TOUCH_EVERY = dt.timedelta(minutes=1)  # a session's last activity is written at most this often
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
    admin_units: frozenset[str] = frozenset()  # the units this user administers
    hsa_id: str | None = None  # a person from the IdP
    display_name: str | None = None
    signed_in_with_idp: bool = False
    # The commissions signed in with (IdP only): hsaid, name, purpose, unit.
    commissions: tuple[dict[str, str | None], ...] = ()

    def may_see_unit(self, hsaid: str | None) -> bool:
        """Analysts and admins see every unit; a unit user (or unit admin) only its own."""
        return self.role in ("analyst", "admin") or (hsaid is not None and hsaid in self.units)

    def may_admin_unit(self, hsaid: str) -> bool:
        """A unit admin runs the accounts and API tokens of the units it administers; an admin of
        every unit."""
        return self.role == "admin" or (hsaid in self.units and hsaid in self.admin_units)

    @property
    def actor(self) -> Actor:
        """Who this user is in every record: ``person:<HSA-id>`` for a person from the IdP,
        ``person:<account id>`` for a password account."""
        return person(self.hsa_id) if self.hsa_id else person(self.id)

    @property
    def auditor(self) -> bool:
        """Follows up the access log (the patient extract, the monthly review): a role of its own,
        given apart from the analysts' (who are among the readers followed up)."""
        return self.role in ("auditor", "admin")

    @property
    def analyst(self) -> bool:
        """Analysts and admins run the month."""
        return self.role in ("analyst", "admin")


def create_account(
    ledger: Ledger, *, username: str, password: str, role: str, units: list[str], actor: str, email: str | None = None
) -> None:
    """Add an account; :class:`AccountRefused` for a name outside ``vardfil.names``' rules or
    taken (in any case), an unknown role, a short password, or a unit user without units."""
    username = checked_name(username, "användarnamnet")
    if role not in ROLES:
        raise AccountRefused(f"rollen måste vara en av {', '.join(ROLES)}")
    if role in ("unit", "unit_admin") and not units:
        raise AccountRefused("ett konto för en vårdenhet behöver minst ett HSA-id")
    _check_password(password)
    if email is not None and not EMAIL.fullmatch(email):
        raise AccountRefused(f"inte en e-postadress: {email}")
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
        # The name only: never whose it is, which unit it acts for or its role.
        raise AccountRefused(f"användarnamnet {username} är redan taget: välj ett annat")


def _check_password(password: str) -> None:
    """The one password rule, for every way a password is set."""
    if len(password) < 12:
        raise AccountRefused("lösenordet behöver minst 12 tecken")


def checked_name(name: str, what: str) -> str:
    """``vardfil.names.check_name`` as a refusal (CLI exit 2, HTTP 400)."""
    try:
        return check_name(name, what)
    except ValueError as e:
        raise AccountRefused(str(e)) from None


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, kw_only=True)
class SignIn:
    """The outcome of a sign-in: a session token, or why not."""

    token: str | None
    locked_until: dt.datetime | None = None  # refused without checking: too many failures


def sign_in(
    ledger: Ledger, username: str, password: str, *, address: str = "", roles: tuple[str, ...] | None = None
) -> SignIn:
    """Check credentials under the throttle; a new session (ending the account's older ones).

    Each attempt is counted under the typed name and the address before the password is checked;
    one that must wait is refused without checking (``locked_until``: when it may try again)."""
    now = utcnow()
    name_k, addr_k = f"user:{name_key(username)[:128]}", f"addr:{address[:64]}"
    for key, free in ((name_k, NAME_FREE), (addr_k, ADDRESS_FREE)):
        attempt = ledger.accounts.claim_attempt(key, now=now, free=free, quiet=QUIET, longest=LONGEST_WAIT)
        if not attempt.allowed:
            signed_in("password", "throttled")
            return SignIn(token=None, locked_until=attempt.opens_at)
        if attempt.waits and attempt.attempts in (free, free + 10):
            # When a key starts to wait, and when it has waited ten times: enough for an analyst to
            # see a guessing run, never a row per attempt.
            ledger.add_audit(
                actor=job("portal"),
                action="sign_in_throttled",
                subject=key[:255],
                detail={
                    "attempts": attempt.attempts,
                    "next_at": attempt.opens_at.isoformat() if attempt.opens_at else None,
                },
            )
    acc = ledger.accounts.by_name(username)
    ok = verify_password(password, acc.password_hash if acc is not None else _DUMMY_HASH)
    # A disabled account, a person from the IdP (no password) and, with ``roles`` (password
    # sign-in for admins only), any other role answer as a wrong password would, after the same scrypt.
    if acc is not None and (acc.disabled_at is not None or acc.hsa_id is not None or (roles and acc.role not in roles)):
        ok = False
    if acc is None or not ok:
        # Audited only for an existing account: a row per typed name would let anyone fill the
        # audit log. Throttling is audited whatever the name, since it is what an analyst acts on.
        if acc is not None:
            ledger.add_audit(actor=job("portal"), action="sign_in_failed", subject=person(acc.id))
        signed_in("password", "credentials")
        return SignIn(token=None)
    if _outdated(acc.password_hash):
        ledger.accounts.set_password_hash(acc.id, hash_password(password))
    ledger.accounts.forgive(name_k)
    ledger.accounts.uncount(addr_k, now=now, free=ADDRESS_FREE, longest=LONGEST_WAIT)
    token = secrets.token_urlsafe(32)
    ledger.accounts.add_session(
        account_id=acc.id,
        token_sha256=_token_hash(token),
        csrf=secrets.token_urlsafe(32),
        now=now,
        expires_at=now + dt.timedelta(hours=SESSION_HOURS),
    )
    # A sign-in rotates: the account's earlier sessions (a forgotten browser elsewhere) end here.
    ledger.accounts.end_other_sessions(acc.id, keep=_token_hash(token))
    ledger.accounts.purge_expired_sessions(now)
    signed_in("password")
    return SignIn(token=token)


def user_for(ledger: Ledger, token: str | None, *, idle_minutes: int = IDLE_MINUTES) -> User | None:
    """The user of a session token, if the session exists, has not expired (8 hours) and has not
    been idle longer than ``idle_minutes``; its last activity is now."""
    if not token:
        return None
    digest = _token_hash(token)
    found = ledger.accounts.session(digest)
    if found is None:
        return None
    sess, acc, units, admin_units = found
    now = utcnow()
    last = sess.last_seen_at or sess.created_at
    if sess.expires_at < now or acc.disabled_at is not None:
        return None
    if now - last > dt.timedelta(minutes=idle_minutes):
        ledger.accounts.end_session(digest)
        return None
    if now - last >= TOUCH_EVERY:  # a write a minute at most, not one per request
        ledger.accounts.touch_session(digest, now)
    return User(
        id=acc.id,
        username=acc.username,
        role=acc.role,
        units=units,
        csrf=sess.csrf,
        admin_units=admin_units,
        hsa_id=acc.hsa_id,
        display_name=acc.display_name,
        signed_in_with_idp=sess.id_token is not None,
        commissions=tuple(json.loads(sess.commissions)) if sess.commissions else (),
    )


def id_token_of(ledger: Ledger, token: str | None) -> str | None:
    """The id token behind a session (the hint of an RP-initiated logout), if it came from the IdP."""
    found = ledger.accounts.session(_token_hash(token)) if token else None
    return found[0].id_token if found else None


def sign_in_person(ledger: Ledger, who: Person, *, id_token: str, sid: str | None, sub: str) -> SignIn:
    """A session for a person the IdP vouched for (``vardfil.rights.decide`` let them in): their
    account made or brought up to date with this sign-in's rights, the commission, ``acr`` and
    ``amr`` in the audit log. A person disabled in vardfil is refused here."""
    now = utcnow()
    existing = ledger.accounts.by_hsa_id(who.hsa_id)
    if existing is not None and existing.disabled_at is not None:
        ledger.add_audit(
            actor=person(who.hsa_id),
            action="sign_in_refused",
            subject=person(who.hsa_id),
            detail={"reason": "disabled"},
        )
        signed_in("oidc", "disabled")
        return SignIn(token=None)
    acc = ledger.accounts.upsert_person(
        hsa_id=who.hsa_id,
        display_name=who.name,
        email=who.email,
        role=who.role,
        units=who.units,
        admin_units=who.admin_units,
        now=now,
    )
    token = secrets.token_urlsafe(32)
    ledger.accounts.add_session(
        account_id=acc.id,
        token_sha256=_token_hash(token),
        csrf=secrets.token_urlsafe(32),
        now=now,
        expires_at=now + dt.timedelta(hours=SESSION_HOURS),
        actor=person(who.hsa_id),
        detail={
            "hsa_id": who.hsa_id,
            "role": who.role,
            "units": sorted(who.units),
            "commissions": [c.as_dict() for c in who.commissions],
            "acr": who.acr,
            "amr": list(who.amr),
        },
        oidc_sid=sid,
        oidc_sub=sub,
        id_token=id_token,
        commissions=json.dumps([c.as_dict() for c in who.commissions], ensure_ascii=False),
    )
    ledger.accounts.end_other_sessions(acc.id, keep=_token_hash(token))
    ledger.accounts.purge_expired_sessions(now)
    signed_in("oidc")
    return SignIn(token=token)


def sign_out(ledger: Ledger, token: str | None) -> None:
    """End a session."""
    if token:
        ledger.accounts.end_session(_token_hash(token))


# --- API tokens of the journal systems ---------------------------------------------------------


def create_token(ledger: Ledger, reference: Reference, *, unit_hsaid: str, name: str, actor: str) -> str:
    """A new token acting for one unit; returned once (only its SHA-256 is stored)."""
    if unit_hsaid not in reference.units:
        raise AccountRefused(f"vårdenheten {unit_hsaid} finns inte i enhetsregistret")
    name = checked_name(name, "nyckelns namn")
    # 256 random bits; the prefix lets secret scanners and people recognise a leaked vardfil token.
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    if (
        ledger.accounts.add_token(
            name=name, unit_hsaid=unit_hsaid, token_sha256=_token_hash(token), actor=actor, now=utcnow()
        )
        is None
    ):
        raise AccountRefused(f"nyckelnamnet {name} är redan taget: välj ett annat")
    return token


def list_tokens(ledger: Ledger) -> list[ApiToken]:
    """Every token, revoked ones included (never the token itself: it is not stored)."""
    return ledger.accounts.tokens()


def revoke_token(ledger: Ledger, *, name: str, actor: str) -> None:
    """Revoke a token by name (its exact text, or the same name without case); AccountRefused
    when no live token has that name."""
    tok = ledger.accounts.token_by_name(name)
    if tok is None or not ledger.accounts.revoke_token(tok.id, actor=actor, now=utcnow()):
        raise AccountRefused(f"ingen aktiv API-nyckel med namnet {name}")


def token_unit(ledger: Ledger, token: str | None) -> ApiToken | None:
    """The live token a bearer token is (and so the unit it acts for), if any."""
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        return None
    return ledger.accounts.token_by_hash(_token_hash(token))


# --- unit administrators -----------------------------------------------------------------------


def _manageable(app: App, unit_hsaid: str, account: int | str) -> Account:
    """The account (by id, or by name for the older addresses) if a unit admin of ``unit_hsaid``
    may manage it."""
    acc = app.ledger.accounts.by_id(account) if isinstance(account, int) else app.ledger.accounts.by_name(account)
    # A unit admin manages the unit's own people: never an analyst or admin, never an account that
    # also acts for another unit (that unit's admin has a say too).
    if acc is None or acc.role not in ("unit", "unit_admin") or app.ledger.accounts.units_of(acc.id) != {unit_hsaid}:
        raise AccountRefused(f"kontot hör inte till vårdenheten {unit_hsaid}")
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


def reset_unit_account(app: App, *, unit_hsaid: str, account: int | str, actor: str) -> None:
    """A new one-time link by mail; the old password and sessions stop working now."""
    send_password_link(app, _manageable(app, unit_hsaid, account), actor=actor, reset=True)


def disable_unit_account(app: App, *, unit_hsaid: str, account: int | str, actor: str) -> None:
    """The person has left the unit: the account signs nobody in (a reset link enables it again)."""
    acc = _manageable(app, unit_hsaid, account)
    if person(acc.id) == actor:
        raise AccountRefused("du kan inte inaktivera ditt eget konto")
    app.ledger.accounts.disable(acc.id, actor=actor, now=utcnow())


def disable_account(ledger: Ledger, *, name: str, actor: str) -> Account:
    """Disable any account by name (``vardfil user disable``): it signs nobody in, its sessions end."""
    acc = ledger.accounts.by_name(name)
    if acc is None:
        raise AccountRefused(f"inget konto med namnet {name}")
    ledger.accounts.disable(acc.id, actor=actor, now=utcnow())
    return acc


def set_password_with_link(ledger: Ledger, token: str, password: str) -> str | None:
    """Set the password through a one-time link; the account's name, or None (used, expired,
    unknown). The password rules are those of every account."""
    _check_password(password)
    return ledger.accounts.use_link(_token_hash(token), password_hash=hash_password(password), now=utcnow())


def link_is_live(ledger: Ledger, token: str) -> bool:
    """Whether a one-time link can still be used (the page says so before a password is typed)."""
    return ledger.accounts.link_is_live(_token_hash(token), utcnow())


def unit_tokens(ledger: Ledger, unit_hsaid: str) -> list[ApiToken]:
    """The API tokens of one unit."""
    return [t for t in ledger.accounts.tokens() if t.unit_hsaid == unit_hsaid]


def revoke_unit_token(ledger: Ledger, *, unit_hsaid: str, token: int | str, actor: str) -> None:
    """A unit admin revokes one of its unit's tokens (by id, or by name for the older addresses;
    never another unit's)."""
    live = [t for t in unit_tokens(ledger, unit_hsaid) if t.revoked_at is None]
    found = next((t for t in live if (t.id == token if isinstance(token, int) else t.name == token)), None)
    if found is None or not ledger.accounts.revoke_token(found.id, actor=actor, now=utcnow()):
        raise AccountRefused("ingen aktiv API-nyckel med det namnet för vårdenheten")


# --- roles granted inside vardfil ------------------------------------------------------------

GRANTABLE = ("analyst", "unit_admin", "auditor")


def grant_role(app: App, *, person_hsaid: str, role: str, unit_hsaid: str | None, actor: str) -> None:
    """Grant ``analyst`` or ``unit_admin`` of a unit to an HSA-id (``vardfil grant``). It gives
    something only beside a commission, at the person's next sign-in (``vardfil.rights``)."""
    from vardfil.rights import HSAID

    if not HSAID.fullmatch(person_hsaid):
        raise AccountRefused(f"inte ett HSA-id för en person: {person_hsaid}")
    if role not in GRANTABLE:
        raise AccountRefused(f"rollen måste vara en av {', '.join(GRANTABLE)}")
    if role == "unit_admin":
        if not unit_hsaid or unit_hsaid not in app.reference.units:
            raise AccountRefused("unit_admin gäller en vårdenhet i enhetsregistret: ange --unit HSAID")
    elif unit_hsaid:
        raise AccountRefused("analyst gäller hela regionen: ingen --unit")
    app.ledger.accounts.add_grant(
        person_hsaid=person_hsaid, role=role, unit_hsaid=unit_hsaid, actor=actor, now=utcnow()
    )


def revoke_role(app: App, *, person_hsaid: str, role: str, unit_hsaid: str | None, actor: str) -> None:
    """Revoke a grant; its rights end at once (the person's account loses them now)."""
    if not app.ledger.accounts.revoke_grant(
        person_hsaid=person_hsaid, role=role, unit_hsaid=unit_hsaid, actor=actor, now=utcnow()
    ):
        raise AccountRefused(
            f"ingen gällande {role}-roll för {person_hsaid}" + (f" på {unit_hsaid}" if unit_hsaid else "")
        )


def grant_unit_admin(app: App, *, unit_hsaid: str, account_id: int, actor: str, revoke: bool = False) -> None:
    """A unit's admin makes one of the unit's people an admin too (or takes it back): a person who
    signs in through the IdP and holds a commission on the unit (their account acts for it)."""
    acc = app.ledger.accounts.by_id(account_id)
    if acc is None or acc.hsa_id is None or unit_hsaid not in app.ledger.accounts.units_of(acc.id):
        raise AccountRefused("personen har inget medarbetaruppdrag på vårdenheten")
    if person(acc.hsa_id) == actor:
        raise AccountRefused("du kan inte ändra din egen roll")
    if revoke:
        revoke_role(app, person_hsaid=acc.hsa_id, role="unit_admin", unit_hsaid=unit_hsaid, actor=actor)
        return
    grant_role(app, person_hsaid=acc.hsa_id, role="unit_admin", unit_hsaid=unit_hsaid, actor=actor)
    app.ledger.accounts.set_unit_admin(acc.id, unit_hsaid)
