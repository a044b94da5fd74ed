"""The region's catalogue (KIV, linked to HSA) between sign-ins: who still works where.

``vardfil directory sync`` (and the nightly DAG) reads the care units, the person records and the
commissions (medarbetaruppdrag) from the catalogue over LDAP (ldap3: LDAPS, or StartTLS on
``ldap://``, against the configured CA; paged searches; a bind DN and password from the settings),
and brings vardfil's rights into line:

- a person (signed in through the IdP before) whose record is gone, or whose commission on a unit
  is gone, loses that unit at once: the unit is taken from their account, their sessions end, the
  unit's admins are told by mail, the audit log says why;
- their grants on it are suspended, not deleted; a returning commission lifts the suspension (the
  unit itself comes back at their next sign-in, from the IdP);
- e-mail addresses come from the catalogue (so does the mail the units get);
- units in the catalogue and not in the unit register, the reverse, and units whose end date
  passed while one of their periods is still open are kept with the sync and shown among the
  analysts' deviations.

A catalogue that fails (a refused bind, a timeout, a page that does not come) changes nothing and
says so (:class:`DirectoryUnavailable`, exit 3). A sync that would take away more than
``VARDFIL_DIRECTORY_MAX_REMOVAL`` of the rights it knows stops (exit 2) until run with
``--confirm``.

Which object classes and attributes are read is :class:`Mapping`, in this one place; another
region's catalogue is a mapping file (``VARDFIL_DIRECTORY_MAPPING``, TOML) and the base DNs.
"""

from __future__ import annotations

import datetime as dt
import ssl
import tomllib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from filespec.calendar import Period
from vardfil.actors import Actor
from vardfil.app import App
from vardfil.errors import Refused, Transient
from vardfil.ledger import utcnow

PAGE_SIZE = 500


class DirectoryUnavailable(Transient):
    """The catalogue could not be read whole: nothing was changed."""


class TooManyRemovals(Refused):
    """The sync would take away more rights at once than allowed without ``--confirm``."""


@dataclass(frozen=True)
class Mapping:
    """The catalogue's object classes and attribute names (HSA's where HSA names them)."""

    unit_class: str = "hsaHealthCareUnit"
    unit_id: str = "hsaIdentity"
    unit_name: str = "ou"
    unit_end_date: str = "hsaEndDate"  # YYYY-MM-DD: the unit's last day
    person_class: str = "hsaPerson"
    person_id: str = "hsaIdentity"
    person_email: str = "mail"
    person_given_name: str = "givenName"
    person_family_name: str = "sn"
    commission_class: str = "hsaCommission"
    commission_id: str = "hsaIdentity"
    commission_purpose: str = "hsaCommissionPurpose"
    commission_unit: str = "hsaCommissionUnit"  # the care unit's HSA-id
    commission_member: str = "hsaCommissionMember"  # the persons' HSA-ids (multi-valued)

    @classmethod
    def load(cls, path: Path | None) -> Mapping:
        """The defaults, with what a mapping file (TOML, the same keys) changes."""
        if path is None:
            return cls()
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown keys in {path}: {', '.join(unknown)}")
        return cls(**{k: str(v) for k, v in data.items()})


@dataclass(frozen=True, kw_only=True)
class DirectorySettings:
    """Where the catalogue is and how to reach it (``vardfil.settings``)."""

    url: str
    bind_dn: str | None
    password: str | None
    ca: Path | None
    units_base: str
    persons_base: str
    commissions_base: str
    mapping: Mapping = field(default_factory=Mapping)
    timeout: int = 10


@dataclass(frozen=True, kw_only=True)
class Catalogue:
    """What the catalogue holds, read whole."""

    units: dict[str, dict[str, str | None]]  # HSA-id -> name, end date
    persons: dict[str, dict[str, str | None]]  # HSA-id -> email, name
    commissions: list[dict[str, Any]]  # id, purpose, unit, members


def _first(entry: dict[str, Any], name: str) -> str | None:
    value = entry.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    return str(value).strip() if value not in (None, "") else None


def _all(entry: dict[str, Any], name: str) -> list[str]:
    value = entry.get(name) or []
    return [str(v).strip() for v in (value if isinstance(value, list) else [value]) if str(v).strip()]


def settings_of(app: App) -> DirectorySettings | None:
    """The catalogue's settings, when ``VARDFIL_DIRECTORY_URL`` names one."""
    s = app.settings
    if not s.directory_url:
        return None
    return DirectorySettings(
        url=s.directory_url,
        bind_dn=s.directory_bind_dn,
        password=s.directory_password,
        ca=s.directory_ca,
        units_base=s.directory_units_base,
        persons_base=s.directory_persons_base,
        commissions_base=s.directory_commissions_base,
        mapping=Mapping.load(s.directory_mapping),
    )


def run(app: App, *, actor: Actor, dry_run: bool = False, confirm: bool = False) -> dict[str, Any]:
    """``vardfil directory sync`` and the nightly task, on the application's settings."""
    settings = settings_of(app)
    if settings is None:
        raise Refused("ingen katalog inställd (VARDFIL_DIRECTORY_URL)")
    return sync(
        app,
        settings=settings,
        purposes=app.settings.oidc_purposes,
        actor=actor,
        dry_run=dry_run,
        confirm=confirm,
        max_removal=app.settings.directory_max_removal,
    )


def read_catalogue(s: DirectorySettings) -> Catalogue:
    """Every unit, person and commission, by paged searches over TLS; DirectoryUnavailable when
    any part cannot be read (nothing partial is ever returned)."""
    import ldap3
    from ldap3.core.exceptions import LDAPException

    u = urlparse(s.url)
    if u.scheme not in ("ldap", "ldaps") or not u.hostname:
        raise DirectoryUnavailable(f"VARDFIL_DIRECTORY_URL must be ldaps:// or ldap:// (StartTLS), not {s.url!r}")
    tls = ldap3.Tls(
        validate=ssl.CERT_REQUIRED, ca_certs_file=str(s.ca) if s.ca else None, version=ssl.PROTOCOL_TLS_CLIENT
    )
    server = ldap3.Server(
        u.hostname,
        port=u.port or (636 if u.scheme == "ldaps" else 389),
        use_ssl=u.scheme == "ldaps",
        tls=tls,
        connect_timeout=s.timeout,
        get_info=ldap3.NONE,
    )
    m = s.mapping
    try:
        conn = ldap3.Connection(
            server,
            user=s.bind_dn,
            password=s.password,
            receive_timeout=int(s.timeout),  # ldap3 packs it into SO_RCVTIMEO as whole seconds
            raise_exceptions=True,
            auto_bind=ldap3.AUTO_BIND_NONE,
        )
        conn.open()
        if u.scheme == "ldap":
            conn.start_tls()  # never a bind or a search in clear
        conn.bind()
        units = {}
        for e in _search(conn, s.units_base, m.unit_class, [m.unit_id, m.unit_name, m.unit_end_date]):
            hsa = _first(e, m.unit_id)
            if hsa:
                units[hsa] = {"name": _first(e, m.unit_name), "end_date": _first(e, m.unit_end_date)}
        persons = {}
        attrs = [m.person_id, m.person_email, m.person_given_name, m.person_family_name]
        for e in _search(conn, s.persons_base, m.person_class, attrs):
            hsa = _first(e, m.person_id)
            if hsa:
                name = " ".join(x for x in (_first(e, m.person_given_name), _first(e, m.person_family_name)) if x)
                persons[hsa] = {"email": _first(e, m.person_email), "name": name or None}
        commissions = []
        attrs = [m.commission_id, m.commission_purpose, m.commission_unit, m.commission_member]
        for e in _search(conn, s.commissions_base, m.commission_class, attrs):
            commissions.append(
                {
                    "id": _first(e, m.commission_id),
                    "purpose": _first(e, m.commission_purpose),
                    "unit": _first(e, m.commission_unit),
                    "members": _all(e, m.commission_member),
                }
            )
        conn.unbind()
    except LDAPException as e:
        raise DirectoryUnavailable(f"katalogen kunde inte läsas helt ({type(e).__name__}: {e}); inget ändrades") from e
    except OSError as e:
        raise DirectoryUnavailable(f"katalogen svarar inte ({e}); inget ändrades") from e
    return Catalogue(units=units, persons=persons, commissions=commissions)


def _search(conn: Any, base: str, object_class: str, attributes: list[str]) -> Iterable[dict[str, Any]]:
    """Every entry of a class under ``base``, a page at a time (the server's size limit is per page)."""
    cookie: bytes | None = None
    while True:
        conn.search(
            base, f"(objectClass={object_class})", attributes=attributes, paged_size=PAGE_SIZE, paged_cookie=cookie
        )
        for entry in conn.response:
            if entry.get("type") == "searchResEntry":
                yield dict(entry["attributes"])
        controls = conn.result.get("controls", {})
        cookie = controls.get("1.2.840.113556.1.4.319", {}).get("value", {}).get("cookie")
        if not cookie:
            return


# --- what a sync does -------------------------------------------------------------------------


@dataclass(kw_only=True)
class Plan:
    """What a sync would change, and what it found; ``as_dict`` is its report."""

    removals: list[dict[str, str]] = field(default_factory=list)  # person, unit, reason
    suspend: list[dict[str, Any]] = field(default_factory=list)  # grant id, person, role, unit, reason
    restore: list[dict[str, Any]] = field(default_factory=list)
    emails: list[dict[str, str | None]] = field(default_factory=list)  # person, old, new
    unit_deviations: list[dict[str, str | None]] = field(default_factory=list)
    rights_known: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def removal_share(self) -> float:
        return (len(self.removals) + len(self.suspend)) / self.rights_known if self.rights_known else 0.0


def plan_sync(app: App, catalogue: Catalogue, *, purposes: Iterable[str], now: dt.datetime) -> Plan:
    """What the catalogue says should change in vardfil (nothing is changed here)."""
    accepted = set(purposes)
    held: dict[str, set[str]] = {}  # person -> units with an accepted commission
    any_accepted: set[str] = set()
    for c in catalogue.commissions:
        if c["purpose"] not in accepted or not c["unit"]:
            continue
        for member in c["members"]:
            held.setdefault(member, set()).add(c["unit"])
            any_accepted.add(member)
    plan = Plan()
    accounts = [a for a in app.ledger.accounts.all() if a.hsa_id]
    units_of = app.ledger.accounts.units_by_account()
    for acc in accounts:
        hsa = acc.hsa_id or ""
        record = catalogue.persons.get(hsa)
        for unit in units_of.get(acc.id, []):
            plan.rights_known += 1
            if record is None:
                plan.removals.append(
                    {"person": hsa, "unit": unit, "reason": "personposten finns inte längre i katalogen"}
                )
            elif unit not in held.get(hsa, set()):
                plan.removals.append(
                    {"person": hsa, "unit": unit, "reason": "medarbetaruppdraget på enheten har upphört"}
                )
        if record is not None and record["email"] and record["email"] != acc.email:
            plan.emails.append({"person": hsa, "old": acc.email, "new": record["email"]})
    for g in app.ledger.accounts.grants():
        plan.rights_known += 1
        present = g.person_hsaid in catalogue.persons
        behind = (
            (g.unit_hsaid in held.get(g.person_hsaid, set()))
            if g.role == "unit_admin"
            else g.person_hsaid in any_accepted
        )
        row = {"grant": g.id, "person": g.person_hsaid, "role": g.role, "unit": g.unit_hsaid}
        if g.suspended_at is None and not (present and behind):
            reason = (
                "personposten finns inte längre i katalogen" if not present else "uppdraget bakom rollen har upphört"
            )
            plan.suspend.append({**row, "reason": reason})
        elif g.suspended_at is not None and present and behind:
            plan.restore.append({**row, "reason": "uppdraget finns igen"})
    plan.unit_deviations = unit_deviations(app, catalogue, now)
    plan.counts = {
        "units": len(catalogue.units),
        "persons": len(catalogue.persons),
        "commissions": len(catalogue.commissions),
    }
    return plan


def unit_deviations(app: App, catalogue: Catalogue, now: dt.datetime) -> list[dict[str, str | None]]:
    """Units the catalogue and the unit register disagree about, and units whose end date passed
    while one of their periods is still open (not closed)."""
    register = app.reference.units
    out: list[dict[str, str | None]] = []
    for hsa, u in sorted(catalogue.units.items()):
        if hsa not in register:
            out.append({"unit": hsa, "name": u["name"], "kind": "not_in_register"})
    today = now.date().isoformat()
    closed = set(app.ledger.closes.closed_periods())
    for hsa, unit in sorted(register.items()):
        if hsa not in catalogue.units:
            out.append({"unit": hsa, "name": unit.namn, "kind": "not_in_catalogue"})
        end = (catalogue.units.get(hsa) or {}).get("end_date") or (str(unit.giltig_tom) if unit.giltig_tom else None)
        if end and end < today:
            last = Period.parse(end[:7])
            if str(last) not in closed:
                out.append(
                    {
                        "unit": hsa,
                        "name": unit.namn,
                        "kind": "ended_with_open_period",
                        "end_date": end,
                        "period": str(last),
                    }
                )
    return out


def sync(
    app: App,
    *,
    settings: DirectorySettings,
    purposes: Iterable[str],
    actor: Actor,
    dry_run: bool = False,
    confirm: bool = False,
    max_removal: float = 0.2,
) -> dict[str, Any]:
    """Read the catalogue whole, plan, and (unless ``dry_run``) carry the plan out; the report."""
    now = utcnow()
    try:
        catalogue = read_catalogue(settings)
    except DirectoryUnavailable as e:
        app.ledger.add_audit(
            actor=actor, action="directory_sync_failed", subject="katalog", detail={"error": str(e)[:500]}
        )
        raise
    plan = plan_sync(app, catalogue, purposes=purposes, now=now)
    report = {"at": now.isoformat(), "dry_run": dry_run, "applied": False, **plan.as_dict()}
    report["removal_share"] = round(plan.removal_share, 4)
    if dry_run:
        return report
    if plan.removal_share > max_removal and not confirm:
        app.ledger.add_audit(
            actor=actor,
            action="directory_sync_stopped",
            subject="katalog",
            detail={"removal_share": report["removal_share"], "max": max_removal},
        )
        raise TooManyRemovals(
            f"synken skulle ta bort {len(plan.removals) + len(plan.suspend)} av {plan.rights_known} behörigheter "
            f"({plan.removal_share:.0%}, mer än {max_removal:.0%}): inget ändrades. Kontrollera katalogen och kör "
            "igen med --confirm om det stämmer."
        )
    apply_plan(app, plan, actor=actor, now=now)
    report["applied"] = True
    app.ledger.systems.record_sync(at=now, actor=actor, applied=True, result=report)
    return report


def apply_plan(app: App, plan: Plan, *, actor: Actor, now: dt.datetime) -> None:
    """Carry a plan out: rights taken, sessions ended, grants suspended or lifted, e-mail updated,
    the unit's admins told, every change in the audit log with its reason."""
    ledger = app.ledger
    by_person: dict[str, list[dict[str, str]]] = {}
    for r in plan.removals:
        by_person.setdefault(r["person"], []).append(r)
    for hsa, rows in by_person.items():
        ledger.accounts.remove_person_units(hsa, [r["unit"] for r in rows], actor=actor, reasons=rows, now=now)
    for g in plan.suspend:
        ledger.accounts.suspend_grant(g["grant"], actor=actor, reason=g["reason"], now=now)
    for g in plan.restore:
        ledger.accounts.restore_grant(g["grant"], actor=actor, now=now)
    for e in plan.emails:
        ledger.accounts.set_person_email(str(e["person"]), e["new"], actor=actor)
    _tell_admins(app, plan.removals)


def _tell_admins(app: App, removals: list[dict[str, str]]) -> None:
    from vardfil.mail import send_page

    by_unit: dict[str, list[dict[str, str]]] = {}
    for r in removals:
        by_unit.setdefault(r["unit"], []).append(r)
    for unit_hsaid, rows in by_unit.items():
        to = app.ledger.accounts.admin_emails_of_unit(unit_hsaid, excluding={r["person"] for r in rows})
        if not to:
            continue
        unit = app.reference.units.get(unit_hsaid)
        names = app.ledger.accounts.display_names([r["person"] for r in rows])
        send_page(
            app,
            key=f"directory:{unit_hsaid}:{utcnow():%Y%m%dT%H%M%S}",
            kind="directory",
            to=to,
            title="Behörigheter i vardfil har upphört",
            lines=[
                f"Katalogen (KIV/HSA) visar att följande personer inte längre har medarbetaruppdrag på "
                f"{unit.namn if unit else unit_hsaid}. Deras behörighet i vardfil för enheten har upphört och "
                "deras inloggningar har avslutats:",
                *[f"{names.get(r['person'], r['person'])} ({r['person']}): {r['reason']}" for r in rows],
                "Stämmer det inte, kontakta er HSA-administratör: vardfil följer katalogen.",
            ],
            link=f"{app.settings.base_url}/enhet/{unit_hsaid}/konton",
            link_text="Enhetens konton",
        )


CATALOGUE_REASONS = {
    "not_in_register": "finns i katalogen men inte i vårdvalets enhetsregister",
    "not_in_catalogue": "finns i enhetsregistret men inte i katalogen",
    "ended_with_open_period": "enhetens slutdatum {end_date} har passerat medan perioden {period} ännu inte är stängd",
}


def catalogue_flags(app: App) -> list[dict[str, Any]]:
    """The last applied sync's unit deviations in words, for the analysts (board, ``deviations``)."""
    last = app.ledger.systems.last_sync()
    if last is None:
        return []
    at, report = last
    return [
        {
            "unit_hsaid": str(d["unit"]),
            "name": str(d.get("name") or d["unit"]),
            "kind": str(d["kind"]),
            "reason": CATALOGUE_REASONS.get(str(d["kind"]), str(d["kind"])).format(
                **{k: v or "" for k, v in d.items()}
            ),
            "synced_at": at,
        }
        for d in report.get("unit_deviations", [])
    ]
