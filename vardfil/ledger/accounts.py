"""Storage of portal accounts and signed-in sessions (the rules are in ``vardfil.accounts``).

Only hashes are stored: the scrypt hash of a password and the SHA-256 of a session token, so a
copy of the database signs nobody in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import delete, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from vardfil.actors import person
from vardfil.ledger.tables import (
    Account,
    AccountLink,
    AccountUnit,
    ApiToken,
    OidcLogin,
    OidcSeenToken,
    RoleGrant,
    SignInThrottle,
    WebSession,
)
from vardfil.names import name_key

if TYPE_CHECKING:
    from vardfil.ledger.core import Core


class Accounts:
    """The account and session tables of one ledger (``ledger.accounts``)."""

    def __init__(self, ledger: Core):
        self.ledger = ledger

    def by_name(self, username: str) -> Account | None:
        """The account with this user name (its exact text, or the same name without regard to
        case and width: ``vardfil.names.name_key``), if any."""
        with self.ledger.reading() as s:
            found = s.scalars(select(Account).where(Account.username == username)).first()
            return found or s.scalars(select(Account).where(Account.name_key == name_key(username)[:128])).first()

    def by_id(self, account_id: int) -> Account | None:
        """The account with this id, if any."""
        with self.ledger.reading() as s:
            return s.get(Account, account_id)

    def all(self) -> list[Account]:
        """Every account, oldest first, with the units each acts for."""
        with self.ledger.reading() as s:
            return list(s.scalars(select(Account).order_by(Account.id)))

    def units_by_account(self) -> dict[int, list[str]]:
        """The units of every account (``user list``)."""
        found: dict[int, list[str]] = {}
        with self.ledger.reading() as s:
            for account_id, unit in s.execute(select(AccountUnit.account_id, AccountUnit.unit_hsaid)):
                found.setdefault(account_id, []).append(unit)
        return {k: sorted(v) for k, v in found.items()}

    def names_of_actors(self) -> dict[str, str]:
        """Typed actor → account or token name, for people reading the audit log."""
        with self.ledger.reading() as s:
            names = {f"person:{i}": n for i, n in s.execute(select(Account.id, Account.username))}
            names.update({f"token:{i}": n for i, n in s.execute(select(ApiToken.id, ApiToken.name))})
        return names

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
        """Add an account with its units; None when the name is taken, in any case (checked in the
        same transaction, and by the unique key, so two concurrent adds cannot both win)."""
        key = name_key(username)[:128]
        with self.ledger.transaction() as s:
            taken = select(Account).where(or_(Account.username == username, Account.name_key == key))
            if s.scalars(taken).first():
                return None
            acc = Account(
                username=username, name_key=key, password_hash=password_hash, role=role, created_at=now, email=email
            )
            s.add(acc)
            s.flush()
            for h in units:
                s.add(AccountUnit(account_id=acc.id, unit_hsaid=h, admin=role == "unit_admin"))
            self.ledger.audit(
                s,
                actor=actor,
                action="account_created",
                subject=person(acc.id),
                detail={"username": username, "role": role, "units": units},
            )
        return acc

    def add_session(
        self,
        *,
        account_id: int,
        token_sha256: str,
        csrf: str,
        now: dt.datetime,
        expires_at: dt.datetime,
        actor: str | None = None,
        detail: dict[str, object] | None = None,
        oidc_sid: str | None = None,
        oidc_sub: str | None = None,
        id_token: str | None = None,
        commissions: str | None = None,
    ) -> None:
        """Record a signed-in session (and the successful sign-in in the audit log: for a person
        from the IdP with the commission, ``acr`` and ``amr`` in ``detail``)."""
        who = actor or person(account_id)
        with self.ledger.transaction() as s:
            s.add(
                WebSession(
                    token_sha256=token_sha256,
                    account_id=account_id,
                    csrf=csrf,
                    created_at=now,
                    expires_at=expires_at,
                    last_seen_at=now,
                    oidc_sid=oidc_sid,
                    oidc_sub=oidc_sub,
                    id_token=id_token,
                    commissions=commissions,
                )
            )
            self.ledger.audit(s, actor=who, action="sign_in", subject=who, detail=detail)

    def touch_session(self, token_sha256: str, now: dt.datetime) -> None:
        """The session was used now (the idle timeout counts from here)."""
        with self.ledger.transaction() as s:
            sess = s.get(WebSession, token_sha256)
            if sess is not None:
                sess.last_seen_at = now

    def session(self, token_sha256: str) -> tuple[WebSession, Account, frozenset[str], frozenset[str]] | None:
        """A session with its account, the account's units and the units it administers."""
        with self.ledger.reading() as s:
            sess = s.get(WebSession, token_sha256)
            if sess is None:
                return None
            acc = s.get(Account, sess.account_id)
            if acc is None:
                return None
            rows = list(
                s.execute(select(AccountUnit.unit_hsaid, AccountUnit.admin).where(AccountUnit.account_id == acc.id))
            )
            units = frozenset(u for u, _ in rows)
            return sess, acc, units, frozenset(u for u, admin in rows if admin)

    # --- people from the IdP ---------------------------------------------------------------------

    def by_hsa_id(self, hsa_id: str) -> Account | None:
        """The account of a person by their HSA-id, if they signed in before."""
        with self.ledger.reading() as s:
            return s.scalars(select(Account).where(Account.hsa_id == hsa_id)).first()

    def upsert_person(
        self,
        *,
        hsa_id: str,
        display_name: str,
        email: str | None,
        role: str,
        units: frozenset[str],
        admin_units: frozenset[str],
        now: dt.datetime,
    ) -> Account:
        """The person's account with the rights of this sign-in (created at the first one): their
        role, and their units exactly as their commissions give them now."""
        with self.ledger.transaction() as s:
            acc = s.scalars(select(Account).where(Account.hsa_id == hsa_id)).first()
            created = acc is None
            if acc is None:
                acc = Account(
                    username=hsa_id,
                    name_key=name_key(hsa_id)[:128],
                    password_hash="!",  # no password: this account signs in through the IdP only
                    role=role,
                    created_at=now,
                    hsa_id=hsa_id,
                )
                s.add(acc)
                s.flush()
            acc.display_name, acc.role = display_name[:200], role
            if email:
                acc.email = email
            s.execute(delete(AccountUnit).where(AccountUnit.account_id == acc.id))
            for u in sorted(units):
                s.add(AccountUnit(account_id=acc.id, unit_hsaid=u, admin=u in admin_units))
            if created:
                self.ledger.audit(
                    s,
                    actor=person(hsa_id),
                    action="account_created",
                    subject=person(hsa_id),
                    detail={"role": role, "units": sorted(units), "source": "idp"},
                )
        return acc

    def set_unit_admin(self, account_id: int, unit_hsaid: str) -> None:
        """The account administers the unit from now (a grant beside a commission it holds)."""
        with self.ledger.transaction() as s:
            au = s.get(AccountUnit, (account_id, unit_hsaid))
            acc = s.get(Account, account_id)
            if au is None or acc is None:
                return
            au.admin = True
            if acc.role == "unit":
                acc.role = "unit_admin"

    # --- the catalogue's word --------------------------------------------------------------------

    def remove_person_units(
        self, hsa_id: str, units: list[str], *, actor: str, reasons: list[dict[str, str]], now: dt.datetime
    ) -> None:
        """The catalogue says the person no longer works there: the units go from their account and
        every session of theirs ends now."""
        with self.ledger.transaction() as s:
            acc = s.scalars(select(Account).where(Account.hsa_id == hsa_id)).first()
            if acc is None:
                return
            s.execute(delete(AccountUnit).where(AccountUnit.account_id == acc.id, AccountUnit.unit_hsaid.in_(units)))
            s.execute(delete(WebSession).where(WebSession.account_id == acc.id))
            left = list(s.scalars(select(AccountUnit).where(AccountUnit.account_id == acc.id)))
            if acc.role == "unit_admin" and not any(a.admin for a in left):
                acc.role = "unit"
            self.ledger.audit(
                s,
                actor=actor,
                action="directory_rights_removed",
                subject=person(hsa_id),
                detail={"units": sorted(units), "reasons": [r["reason"] for r in reasons], "sessions_ended": True},
                at=now,
            )

    def suspend_grant(self, grant_id: int, *, actor: str, reason: str, now: dt.datetime) -> None:
        """Suspend a grant whose commission is gone (kept, to be lifted when it returns): its rights
        end now, and so do the person's sessions."""
        with self.ledger.transaction() as s:
            g = s.get(RoleGrant, grant_id)
            if g is None or g.suspended_at is not None:
                return
            g.suspended_at = now
            acc = s.scalars(select(Account).where(Account.hsa_id == g.person_hsaid)).first()
            if acc is not None:
                if g.role == "unit_admin":
                    au = s.get(AccountUnit, (acc.id, g.unit_hsaid)) if g.unit_hsaid else None
                    if au is not None:
                        au.admin = False
                    if acc.role == "unit_admin" and not any(
                        a.admin for a in s.scalars(select(AccountUnit).where(AccountUnit.account_id == acc.id))
                    ):
                        acc.role = "unit"
                elif acc.role == "analyst":
                    acc.role = "unit"
                s.execute(delete(WebSession).where(WebSession.account_id == acc.id))
            self.ledger.audit(
                s,
                actor=actor,
                action="role_suspended",
                subject=person(g.person_hsaid),
                detail={"role": g.role, "unit": g.unit_hsaid, "reason": reason},
                at=now,
            )

    def restore_grant(self, grant_id: int, *, actor: str, now: dt.datetime) -> None:
        """Lift a suspension: the commission is back (the role counts again from the person's next
        sign-in, and at once where the account still acts for the unit)."""
        with self.ledger.transaction() as s:
            g = s.get(RoleGrant, grant_id)
            if g is None or g.suspended_at is None:
                return
            g.suspended_at = None
            acc = s.scalars(select(Account).where(Account.hsa_id == g.person_hsaid)).first()
            if acc is not None and g.role == "unit_admin" and g.unit_hsaid:
                au = s.get(AccountUnit, (acc.id, g.unit_hsaid))
                if au is not None:
                    au.admin = True
                    acc.role = "unit_admin" if acc.role == "unit" else acc.role
            self.ledger.audit(
                s,
                actor=actor,
                action="role_restored",
                subject=person(g.person_hsaid),
                detail={"role": g.role, "unit": g.unit_hsaid},
                at=now,
            )

    def set_person_email(self, hsa_id: str, email: str | None, *, actor: str) -> None:
        """The e-mail address the catalogue holds for the person (their unit's mail goes there)."""
        with self.ledger.transaction() as s:
            acc = s.scalars(select(Account).where(Account.hsa_id == hsa_id)).first()
            if acc is None or acc.email == email:
                return
            acc.email = email
            # No address in the log: the catalogue is where it is kept.
            self.ledger.audit(s, actor=actor, action="email_from_directory", subject=person(hsa_id))

    def admin_emails_of_unit(self, unit_hsaid: str, *, excluding: Collection[str] = ()) -> list[str]:
        """Where a unit's administrators get their mail (persons in ``excluding`` left out)."""
        with self.ledger.reading() as s:
            q = (
                select(Account.email, Account.hsa_id)
                .join(AccountUnit, AccountUnit.account_id == Account.id)
                .where(AccountUnit.unit_hsaid == unit_hsaid, AccountUnit.admin.is_(True), Account.email.is_not(None))
                .order_by(Account.id)
            )
            return [e for e, h in s.execute(q) if e and h not in excluding]

    def display_names(self, hsa_ids: list[str]) -> dict[str, str]:
        """HSA-id -> the name shown, for the people who signed in before."""
        with self.ledger.reading() as s:
            q = select(Account.hsa_id, Account.display_name).where(Account.hsa_id.in_(hsa_ids))
            return {h: n for h, n in s.execute(q) if h and n}

    def end_idp_sessions(self, *, sid: str | None, sub: str | None) -> int:
        """End the sessions of an IdP session (``sid``), or of a subject at the IdP (``sub``)."""
        with self.ledger.transaction() as s:
            q = delete(WebSession)
            q = q.where(WebSession.oidc_sid == sid) if sid else q.where(WebSession.oidc_sub == sub)
            return int(getattr(s.execute(q), "rowcount", 0) or 0)

    def add_pending_login(
        self, *, state_sha256: str, binding_sha256: str, nonce: str, code_verifier: str, now: dt.datetime
    ) -> None:
        """Remember a sign-in sent to the IdP (and forget those older than an hour)."""
        with self.ledger.transaction() as s:
            s.execute(delete(OidcLogin).where(OidcLogin.created_at < now - dt.timedelta(hours=1)))
            s.add(
                OidcLogin(
                    state_sha256=state_sha256,
                    binding_sha256=binding_sha256,
                    nonce=nonce,
                    code_verifier=code_verifier,
                    created_at=now,
                )
            )

    def take_pending_login(
        self, *, state_sha256: str, binding_sha256: str, now: dt.datetime, max_age: dt.timedelta
    ) -> OidcLogin | None:
        """The sign-in a callback answers, once: None when it is unknown, used, too old, or was
        started by another browser."""
        with self.ledger.transaction() as s:
            row = s.scalars(select(OidcLogin).where(OidcLogin.state_sha256 == state_sha256).with_for_update()).first()
            if row is None or row.used_at is not None or row.created_at < now - max_age:
                return None
            row.used_at = now  # spent whatever follows: a replay finds it used
            if row.binding_sha256 != binding_sha256:
                return None
            return row

    def first_sight_of(self, jti_sha256: str, now: dt.datetime) -> bool:
        """Whether a logout token's ``jti`` is new (then it is remembered for a day)."""
        with self.ledger.transaction() as s:
            s.execute(delete(OidcSeenToken).where(OidcSeenToken.seen_at < now - dt.timedelta(days=1)))
            if s.get(OidcSeenToken, jti_sha256) is not None:
                return False
            s.add(OidcSeenToken(jti_sha256=jti_sha256, seen_at=now))
            return True

    # --- roles granted inside vardfil ---------------------------------------------------------

    def add_grant(
        self, *, person_hsaid: str, role: str, unit_hsaid: str | None, actor: str, now: dt.datetime
    ) -> RoleGrant:
        """Grant a role (a live grant of the same role and unit is kept, not doubled)."""
        with self.ledger.transaction() as s:
            live = s.scalars(
                select(RoleGrant).where(
                    RoleGrant.person_hsaid == person_hsaid,
                    RoleGrant.role == role,
                    RoleGrant.unit_hsaid.is_(None) if unit_hsaid is None else RoleGrant.unit_hsaid == unit_hsaid,
                    RoleGrant.revoked_at.is_(None),
                )
            ).first()
            if live is not None:
                return live
            row = RoleGrant(
                person_hsaid=person_hsaid, role=role, unit_hsaid=unit_hsaid, granted_by=actor, granted_at=now
            )
            s.add(row)
            s.flush()
            self.ledger.audit(
                s,
                actor=actor,
                action="role_granted",
                subject=person(person_hsaid),
                detail={"role": role, "unit": unit_hsaid},
            )
            return row

    def revoke_grant(
        self, *, person_hsaid: str, role: str, unit_hsaid: str | None, actor: str, now: dt.datetime
    ) -> bool:
        """Revoke a live grant; False when there is none. The person's current sessions lose it
        at their next request (their rights are read from the account)."""
        with self.ledger.transaction() as s:
            rows = list(
                s.scalars(
                    select(RoleGrant).where(
                        RoleGrant.person_hsaid == person_hsaid,
                        RoleGrant.role == role,
                        RoleGrant.unit_hsaid.is_(None) if unit_hsaid is None else RoleGrant.unit_hsaid == unit_hsaid,
                        RoleGrant.revoked_at.is_(None),
                    )
                )
            )
            for row in rows:
                row.revoked_at, row.revoked_by = now, actor
            acc = s.scalars(select(Account).where(Account.hsa_id == person_hsaid)).first()
            if rows and acc is not None:
                if role == "unit_admin":
                    for au in s.scalars(select(AccountUnit).where(AccountUnit.account_id == acc.id)):
                        if unit_hsaid is None or au.unit_hsaid == unit_hsaid:
                            au.admin = False
                    if acc.role == "unit_admin" and not any(
                        au.admin for au in s.scalars(select(AccountUnit).where(AccountUnit.account_id == acc.id))
                    ):
                        acc.role = "unit"
                elif role == "analyst" and acc.role == "analyst":
                    acc.role = "unit"
            if rows:
                self.ledger.audit(
                    s,
                    actor=actor,
                    action="role_revoked",
                    subject=person(person_hsaid),
                    detail={"role": role, "unit": unit_hsaid},
                )
            return bool(rows)

    def grants(self, person_hsaid: str | None = None, *, live_only: bool = True) -> list[RoleGrant]:
        """The grants (of one person), oldest first."""
        with self.ledger.reading() as s:
            q = select(RoleGrant).order_by(RoleGrant.id)
            if person_hsaid is not None:
                q = q.where(RoleGrant.person_hsaid == person_hsaid)
            if live_only:
                q = q.where(RoleGrant.revoked_at.is_(None))
            return list(s.scalars(q))

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

    def claim_attempt(
        self, key: str, *, now: dt.datetime, free: int, quiet: dt.timedelta, longest: dt.timedelta
    ) -> Attempt:
        """Count one sign-in attempt under ``key`` before it is checked.

        Counted and decided in one write transaction holding the key's row (SQLite's write lock,
        PostgreSQL's row lock), so parallel guesses are counted one after another and each sees
        the others' counts. The first ``free`` attempts go ahead at once; each later one makes the
        next wait twice as long as the one before (1 s, 2 s, 4 s … at most ``longest``). A key left
        alone for ``quiet`` after its last wait is forgiven.
        """
        insert = pg_insert if self.ledger.dialect == "postgresql" else sqlite_insert
        with self.ledger.transaction() as s:
            s.execute(
                insert(SignInThrottle)
                .values(key=key, failures=0, first_failure_at=now, locked_until=None)
                .on_conflict_do_nothing(index_elements=["key"])
            )
            row = s.scalars(select(SignInThrottle).where(SignInThrottle.key == key).with_for_update()).one()
            if row.locked_until is not None and row.locked_until + quiet <= now:
                row.failures, row.first_failure_at, row.locked_until = 0, now, None
            if row.locked_until is not None and row.locked_until > now:
                return Attempt(allowed=False, attempts=row.failures, opens_at=row.locked_until)
            row.failures += 1
            wait = _wait(row.failures, free, longest)
            row.locked_until = now + wait
            return Attempt(allowed=True, attempts=row.failures, opens_at=row.locked_until, waits=wait > dt.timedelta(0))

    def forgive(self, key: str) -> None:
        """A successful sign-in forgives the name's earlier attempts."""
        with self.ledger.transaction() as s:
            s.execute(delete(SignInThrottle).where(SignInThrottle.key == key))

    def uncount(self, key: str, *, now: dt.datetime, free: int, longest: dt.timedelta) -> None:
        """Take back one attempt that succeeded (an address is shared by a whole office: only its
        failures should slow it down)."""
        with self.ledger.transaction() as s:
            row = s.scalars(select(SignInThrottle).where(SignInThrottle.key == key).with_for_update()).first()
            if row is None:
                return
            row.failures = max(0, row.failures - 1)
            row.locked_until = now + _wait(row.failures, free, longest) if row.failures else None

    def set_password_hash(self, account_id: int, password_hash: str) -> None:
        """Store a password hash made with the current scrypt cost (rehash on sign-in)."""
        with self.ledger.transaction() as s:
            acc = s.get(Account, account_id)
            if acc is not None:
                acc.password_hash = password_hash

    # --- API tokens ------------------------------------------------------------------------------

    def add_token(
        self, *, name: str, unit_hsaid: str, token_sha256: str, actor: str, now: dt.datetime
    ) -> ApiToken | None:
        """Record a token (its hash only); None when the name is taken, in any case."""
        key = name_key(name)[:128]
        with self.ledger.transaction() as s:
            if s.scalars(select(ApiToken).where(or_(ApiToken.name == name, ApiToken.name_key == key))).first():
                return None
            tok = ApiToken(
                name=name,
                name_key=key,
                unit_hsaid=unit_hsaid,
                token_sha256=token_sha256,
                created_by=actor,
                created_at=now,
                revoked_at=None,
            )
            s.add(tok)
            s.flush()
            self.ledger.audit(
                s,
                actor=actor,
                action="api_token_created",
                subject=f"token:{tok.id}",
                detail={"name": name, "unit_hsaid": unit_hsaid},
            )
        return tok

    def tokens(self) -> list[ApiToken]:
        """Every token, oldest first (revoked ones included: they are the record)."""
        with self.ledger.reading() as s:
            return list(s.scalars(select(ApiToken).order_by(ApiToken.id)))

    def token_by_name(self, name: str) -> ApiToken | None:
        """The token with this name (its exact text, or the same name without case), if any."""
        with self.ledger.reading() as s:
            found = s.scalars(select(ApiToken).where(ApiToken.name == name)).first()
            return found or s.scalars(select(ApiToken).where(ApiToken.name_key == name_key(name)[:128])).first()

    def revoke_token(self, token_id: int, *, actor: str, now: dt.datetime) -> bool:
        """Revoke a token by id; False when there is no live token with that id."""
        with self.ledger.transaction() as s:
            tok = s.get(ApiToken, token_id)
            if tok is None or tok.revoked_at is not None:
                return False
            tok.revoked_at = now
            self.ledger.audit(
                s,
                actor=actor,
                action="api_token_revoked",
                subject=f"token:{tok.id}",
                detail={"name": tok.name, "unit_hsaid": tok.unit_hsaid},
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

    def admins_of_unit(self, unit_hsaid: str) -> frozenset[int]:
        """The ids of the accounts that administer a unit."""
        with self.ledger.reading() as s:
            q = select(AccountUnit.account_id).where(AccountUnit.unit_hsaid == unit_hsaid, AccountUnit.admin.is_(True))
            return frozenset(s.scalars(q))

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
            self.ledger.audit(
                s, actor=actor, action="account_disabled", subject=person(acc.id), detail={"username": acc.username}
            )

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
            self.ledger.audit(s, actor=actor, action=action, subject=person(acc.id), detail={"username": acc.username})

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
            self.ledger.audit(s, actor=person(acc.id), action="password_set_by_link", subject=person(acc.id))
            return acc.username

    def link_is_live(self, token_sha256: str, now: dt.datetime) -> bool:
        """Whether a link can still be used."""
        with self.ledger.reading() as s:
            link = s.get(AccountLink, token_sha256)
            return link is not None and link.used_at is None and link.expires_at >= now


@dataclass(frozen=True, kw_only=True)
class Attempt:
    """A counted sign-in attempt: whether it may be checked now, how many the key has counted, and
    when the key takes its next attempt."""

    allowed: bool
    attempts: int
    opens_at: dt.datetime | None
    waits: bool = False  # this attempt made the next one wait


def _wait(attempts: int, free: int, longest: dt.timedelta) -> dt.timedelta:
    """How long the attempt after ``attempts`` waits: nothing for the first ``free``, then 1 s,
    doubling, at most ``longest``."""
    if attempts < free:
        return dt.timedelta(0)
    return min(dt.timedelta(seconds=2 ** min(attempts - free, 20)), longest)
