"""Settings: embedded defaults, overridable by environment variables. The only module that reads
the environment; everything else is handed a :class:`Settings`.

| variable | default | meaning |
|---|---|---|
| ``VARDFIL_HOME`` | ``./var`` | where the embedded default keeps its ledger, raw store and outputs |
| ``VARDFIL_DATABASE_URL`` | ``sqlite:///$VARDFIL_HOME/ledger.sqlite3`` | the ledger (``postgresql+psycopg://…`` in production) |
| ``VARDFIL_STORE`` | ``$VARDFIL_HOME/store`` | the content-addressed raw store (shared or object storage when scaled out) |
| ``VARDFIL_REFERENCE`` | ``$VARDFIL_HOME/reference`` | the reference data folder the region supplies |
| ``VARDFIL_OUTPUT`` | ``$VARDFIL_HOME/underlag`` | underlag, Parquet datasets and workbooks, one folder per period |
| ``VARDFIL_INBOX`` | ``$VARDFIL_HOME/inbox`` | where file transfers drop the units' files |
| ``VARDFIL_PSEUDONYM_KEY`` | a random key made once in ``$VARDFIL_HOME/pseudonym.key`` | the HMAC key of patient pseudonyms |
| ``VARDFIL_WORKBOOK_WORKERS`` | the number of cores | processes that render unit workbooks (1: in process) |
| ``VARDFIL_POOL_WORKERS`` | the number of cores | the server's validation processes (0: threads in the server process) |
| ``VARDFIL_INTAKE_BATCH`` | 10 | inbox files one DAG intake task takes in one process (1: a task a file) |
| ``VARDFIL_SMTP_URL`` | none: messages go to ``$VARDFIL_HOME/outbox/`` as ``.eml`` files | ``smtp://[user:password@]host:port`` (STARTTLS when the server offers it, login when given) |
| ``VARDFIL_MAIL_FROM`` | ``vardfil@localhost`` | the sender of every message |
| ``VARDFIL_BASE_URL`` | ``http://127.0.0.1:8000`` | the portal's address, for the links in messages |
| ``VARDFIL_SECURE_COOKIES`` | off | ``1``: the portal is served over TLS: its cookies are ``Secure`` and every answer carries HSTS |
| ``VARDFIL_SESSION_IDLE_MINUTES`` | 30 | a portal session with no request for this long signs nobody in (beside the 8-hour limit) |
| ``VARDFIL_TRUSTED_PROXIES`` | none | addresses or networks (comma-separated, e.g. ``10.0.0.5,10.1.0.0/16``) whose ``X-Forwarded-For`` names the client; from any other peer the header is ignored |
| ``VARDFIL_OIDC_ISSUER`` | none: passwords only | the region's IdP (``https://``; ``http://`` only on a loopback address); with it people sign in with SITHS (``docs/identity.md``) |
| ``VARDFIL_OIDC_CLIENT_ID`` | ``vardfil`` | vardfil's client id at the IdP |
| ``VARDFIL_OIDC_CLIENT_SECRET`` | none | the client secret (``client_secret_basic``) … |
| ``VARDFIL_OIDC_PRIVATE_KEY`` | none | … or the client's private key (PEM or JWK, the text or a file's path: ``private_key_jwt``, the Swedish profile's default) |
| ``VARDFIL_OIDC_ACR_VALUES`` | ``http://id.sambi.se/loa/loa3`` | the levels of assurance accepted, space-separated (the IdP matches exactly: list every one) |
| ``VARDFIL_OIDC_PURPOSES`` | ``Vård och behandling,Administration`` | the commission purposes (ändamål) that give rights, comma-separated |
| ``VARDFIL_OIDC_CLAIMS`` | Inera's names | claim names of an IdP that names them differently: ``employeeHsaId=hsaPersonId,…`` |
| ``VARDFIL_PASSWORD_SIGNIN`` | ``on`` | ``admin-only``: only role ``admin`` signs in with a password (break-glass); ``off``: nobody does |
| ``VARDFIL_DIRECTORY_URL`` | none: no catalogue sync | the region's LDAP catalogue: ``ldaps://host:636`` or ``ldap://host:389`` (StartTLS, always) |
| ``VARDFIL_DIRECTORY_BIND_DN`` / ``VARDFIL_DIRECTORY_PASSWORD`` | anonymous | the read-only account vardfil binds as |
| ``VARDFIL_DIRECTORY_CA`` | the system's CAs | the CA bundle (PEM) the catalogue's certificate is checked against |
| ``VARDFIL_DIRECTORY_UNITS_BASE`` / ``…_PERSONS_BASE`` / ``…_COMMISSIONS_BASE`` | — / — / the units' | the base DNs of the three searches |
| ``VARDFIL_DIRECTORY_MAPPING`` | HSA's names (``vardfil.directory.Mapping``) | a TOML file naming another catalogue's object classes and attributes |
| ``VARDFIL_DIRECTORY_MAX_REMOVAL`` | 0.2 | the share of known rights one sync may take away without ``--confirm`` |
| ``VARDFIL_OPERATOR_EMAIL`` | none: the analysts' and admins' addresses | who Airflow's deadline alerts mail (comma-separated): the on-call engineers |
| ``VARDFIL_CLOCK_FILE`` | none | demos and tests only: a file holding the portal's "now" |
| ``VARDFIL_ACTOR`` | ``job:cli:<command>`` | who the CLI records as acting: a typed actor (``person:<HSA-id>``, ``job:…``; ``vardfil.actors``) |
| ``VARDFIL_PASSWORD`` | asked for | the password of ``vardfil user add`` (scripts) |

The reference data has no default outside ``$VARDFIL_HOME``: production must never be judged
against the sample register by accident. The sample job and the tests name the sample folder
explicitly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Resolved settings of one process."""

    home: Path
    reference: Path
    database_url: str
    store: Path
    output: Path
    inbox: Path
    pseudonym_key: str | None = None
    workbook_workers: int | None = None  # None: one per core
    pool_workers: int | None = None  # None: one per core
    intake_batch: int = 10  # inbox files a DAG intake task takes in one process
    smtp_url: str | None = None  # None: the outbox folder
    mail_from: str = "vardfil@localhost"
    base_url: str = "http://127.0.0.1:8000"
    secure_cookies: bool = False
    session_idle_minutes: int = 30
    trusted_proxies: tuple[str, ...] = ()
    clock_file: Path | None = None
    actor: str | None = None
    oidc_issuer: str | None = None
    oidc_client_id: str = "vardfil"
    oidc_client_secret: str | None = None
    oidc_private_key: str | None = None
    oidc_acr_values: tuple[str, ...] = ("http://id.sambi.se/loa/loa3",)
    oidc_purposes: tuple[str, ...] = ("Vård och behandling", "Administration")
    oidc_claims: tuple[tuple[str, str], ...] = ()
    operator_emails: tuple[str, ...] = ()  # VARDFIL_OPERATOR_EMAIL: who the deadline alerts mail
    password_signin: str = "on"  # on | admin-only | off
    directory_url: str | None = None
    directory_bind_dn: str | None = None
    directory_password: str | None = None
    directory_ca: Path | None = None
    directory_units_base: str = ""
    directory_persons_base: str = ""
    directory_commissions_base: str = ""
    directory_mapping: Path | None = None
    directory_max_removal: float = 0.2

    def with_reference(self, reference: Path | None) -> Settings:
        """The same settings with another reference folder (``--reference``); None: unchanged."""
        return self if reference is None else replace(self, reference=Path(reference).resolve())


def _int(value: str | None) -> int | None:
    return int(value) if value else None


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the environment (``os.environ`` by default)."""
    env = os.environ if environ is None else environ
    home = Path(env.get("VARDFIL_HOME", "var")).resolve()
    clock = env.get("VARDFIL_CLOCK_FILE")
    return Settings(
        home=home,
        reference=Path(env.get("VARDFIL_REFERENCE") or home / "reference").resolve(),
        database_url=env.get("VARDFIL_DATABASE_URL") or f"sqlite:///{(home / 'ledger.sqlite3').as_posix()}",
        store=Path(env.get("VARDFIL_STORE") or home / "store").resolve(),
        output=Path(env.get("VARDFIL_OUTPUT") or home / "underlag").resolve(),
        inbox=Path(env.get("VARDFIL_INBOX") or home / "inbox").resolve(),
        pseudonym_key=env.get("VARDFIL_PSEUDONYM_KEY") or None,
        workbook_workers=_int(env.get("VARDFIL_WORKBOOK_WORKERS")),
        pool_workers=_int(env.get("VARDFIL_POOL_WORKERS")),
        intake_batch=max(1, batch) if (batch := _int(env.get("VARDFIL_INTAKE_BATCH"))) is not None else 10,
        smtp_url=env.get("VARDFIL_SMTP_URL") or None,
        mail_from=env.get("VARDFIL_MAIL_FROM") or "vardfil@localhost",
        base_url=(env.get("VARDFIL_BASE_URL") or "http://127.0.0.1:8000").rstrip("/"),
        secure_cookies=env.get("VARDFIL_SECURE_COOKIES") == "1",
        session_idle_minutes=max(1, idle) if (idle := _int(env.get("VARDFIL_SESSION_IDLE_MINUTES"))) else 30,
        trusted_proxies=tuple(p.strip() for p in (env.get("VARDFIL_TRUSTED_PROXIES") or "").split(",") if p.strip()),
        clock_file=Path(clock) if clock else None,
        actor=env.get("VARDFIL_ACTOR") or None,
        oidc_issuer=env.get("VARDFIL_OIDC_ISSUER") or None,
        oidc_client_id=env.get("VARDFIL_OIDC_CLIENT_ID") or "vardfil",
        oidc_client_secret=env.get("VARDFIL_OIDC_CLIENT_SECRET") or None,
        oidc_private_key=env.get("VARDFIL_OIDC_PRIVATE_KEY") or None,
        oidc_acr_values=tuple((env.get("VARDFIL_OIDC_ACR_VALUES") or "http://id.sambi.se/loa/loa3").split()),
        oidc_purposes=_list(env.get("VARDFIL_OIDC_PURPOSES")) or ("Vård och behandling", "Administration"),
        oidc_claims=tuple(
            (k.strip(), v.strip()) for k, _, v in (p.partition("=") for p in _list(env.get("VARDFIL_OIDC_CLAIMS"))) if v
        ),
        directory_url=env.get("VARDFIL_DIRECTORY_URL") or None,
        directory_bind_dn=env.get("VARDFIL_DIRECTORY_BIND_DN") or None,
        directory_password=env.get("VARDFIL_DIRECTORY_PASSWORD") or None,
        directory_ca=Path(ca) if (ca := env.get("VARDFIL_DIRECTORY_CA")) else None,
        directory_units_base=env.get("VARDFIL_DIRECTORY_UNITS_BASE") or "",
        directory_persons_base=env.get("VARDFIL_DIRECTORY_PERSONS_BASE") or "",
        directory_commissions_base=env.get("VARDFIL_DIRECTORY_COMMISSIONS_BASE")
        or env.get("VARDFIL_DIRECTORY_UNITS_BASE")
        or "",
        directory_mapping=Path(mp) if (mp := env.get("VARDFIL_DIRECTORY_MAPPING")) else None,
        directory_max_removal=float(env.get("VARDFIL_DIRECTORY_MAX_REMOVAL") or 0.2),
        operator_emails=_list(env.get("VARDFIL_OPERATOR_EMAIL")),
        password_signin=_choice(
            env.get("VARDFIL_PASSWORD_SIGNIN"), ("on", "admin-only", "off"), "VARDFIL_PASSWORD_SIGNIN"
        ),
    )


def _list(value: str | None) -> tuple[str, ...]:
    return tuple(p.strip() for p in (value or "").split(",") if p.strip())


def _choice(value: str | None, allowed: tuple[str, ...], name: str) -> str:
    if not value:
        return allowed[0]
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def password_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """``VARDFIL_PASSWORD``, for scripted account creation (kept out of :class:`Settings` so a
    password never sits in an object that is logged or passed around)."""
    env = os.environ if environ is None else environ
    return env.get("VARDFIL_PASSWORD") or None
