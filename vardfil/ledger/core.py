"""The ledger's core: the database engines, write and read transactions, migrations and the
append-only audit log, which every part of the ledger writes through (``vardfil.ledger.database``
composes the parts).

SQLite (WAL) under ``$VARDFIL_HOME`` is the embedded default; PostgreSQL in production through
``VARDFIL_DATABASE_URL``. Writers that decide on a unit's history (F09, the gällande file) hold a
lock for that unit, filtyp and period: a PostgreSQL advisory lock, or SQLite's single write lock
(``BEGIN IMMEDIATE``). A database that does not answer, or stays locked past its timeout, raises
:class:`~vardfil.errors.DatabaseBusy` (retryable).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import InterfaceError as DBInterfaceError
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from filespec.calendar import Period
from vardfil.actors import is_typed
from vardfil.errors import DatabaseBusy
from vardfil.ledger.tables import AuditLog
from vardfil.logs import request_id
from vardfil.privacy import masked

MIGRATIONS = Path(__file__).parent / "migrations"
ANSWERS = ("GODKANN", "INVAND")


def utcnow() -> dt.datetime:
    """Now, aware, UTC."""
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, kw_only=True)
class FileKey:
    """A unit's slot: unit, filtyp and period (given as a Period or as the ledger stores it)."""

    unit_hsaid: str
    file_type: str
    period: Period

    def __post_init__(self) -> None:
        # Rows carry the period as stored text: a key made from a row and one made from a Period
        # are the same key.
        object.__setattr__(self, "period", Period.parse(self.period))

    def lock_id(self) -> int:
        """A signed 64-bit number for pg_advisory_xact_lock."""
        digest = hashlib.sha256(f"{self.unit_hsaid}|{self.file_type}|{self.period}".encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)


def _configure_sqlite(engine: Engine, *, writer: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # pysqlite's own transaction handling is switched off so BEGIN can be issued explicitly.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take SQLite's single write lock up front (no upgrade deadlocks); readers do not,
        # and in WAL mode they read beside a writer.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")


@contextmanager
def _busy_is_transient() -> Iterator[None]:
    # OperationalError is what both drivers raise for "locked", "connection refused" and a server
    # that went away; none of those is the caller's fault, and a retry may succeed.
    try:
        yield
    except (OperationalError, DBInterfaceError) as e:
        raise DatabaseBusy(f"the ledger database did not answer: {type(e.orig).__name__}") from e


class Core:
    """One ledger database: its engines, transactions and the audit log. The tables' queries are
    its parts (``vardfil.ledger.database.Ledger``)."""

    def __init__(self, url: str, *, migrate: bool = True, connect_args: dict[str, Any] | None = None):
        self.url = url
        kwargs: dict[str, Any] = {}
        if url.startswith("sqlite"):
            # The embedded default must work on a fresh machine: its folder may not exist yet.
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 60, **(connect_args or {})}
        else:
            # A pooled connection may have been dropped by the server or a failover since its last
            # use; a ping costs less than a failed close at 15:00.
            kwargs["pool_pre_ping"] = True
            if connect_args:
                kwargs["connect_args"] = connect_args
        self.engine = create_engine(url, **kwargs)
        self.read_engine = self.engine
        if self.engine.dialect.name == "sqlite":
            # Two engines on one SQLite file: writers begin IMMEDIATE (the write lock up front),
            # readers a plain BEGIN, so the portal's pages read beside an intake in WAL mode.
            _configure_sqlite(self.engine, writer=True)
            self.read_engine = create_engine(url, **kwargs)
            _configure_sqlite(self.read_engine, writer=False)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.read_sessions = sessionmaker(self.read_engine, expire_on_commit=False)
        if migrate:
            self.migrate()

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema to the newest Alembic revision (safe to run concurrently)."""
        # Imported here: only the process that migrates needs Alembic (0.3 s of imports in every
        # intake worker, Airflow task and CLI call that opens the ledger without migrating).
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with _busy_is_transient(), self.engine.connect() as conn:
            raw = conn.connection.dbapi_connection if self.dialect == "sqlite" else None
            if raw is not None:
                # SQLite changes a constraint by copying the table, which drops a table other
                # tables refer to: foreign keys are off for the migration (outside any transaction,
                # the only place SQLite lets them be switched) and on again after it.
                raw.execute("PRAGMA foreign_keys=OFF")
            try:
                with conn.begin():
                    if self.dialect == "postgresql":
                        # Every worker migrates at start; the lock makes the second wait, then find
                        # the schema current, instead of both creating the same tables.
                        conn.execute(text("SELECT pg_advisory_xact_lock(4242424242)"))
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, revision)
            finally:
                if raw is not None:
                    raw.execute("PRAGMA foreign_keys=ON")

    def schema_at_head(self) -> bool:
        """Whether the database answers and its schema is at the newest revision (``/readyz``)."""
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        heads = set(ScriptDirectory(str(MIGRATIONS)).get_heads())
        with _busy_is_transient(), self.read_engine.connect() as conn:
            return set(MigrationContext.configure(conn).get_current_heads()) == heads

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
        self.read_engine.dispose()

    # --- transactions --------------------------------------------------------------------------

    @contextmanager
    def transaction(self, key: FileKey | None = None, *, also: str | None = None) -> Iterator[Session]:
        """A write transaction; with a key, serialised against every other writer of that key, and
        with ``also`` (a file's SHA-256) against every writer of the same bytes."""
        with _busy_is_transient(), self.sessions.begin() as session:
            # SQLite has one writer at a time already; PostgreSQL serialises only what must be: the
            # writers of one unit, filtyp and period (F09 and the gällande file depend on it), and
            # the writers of the same bytes (whether a file is a copy depends on them; two units
            # sending the same bytes at once are two keys). Key lock first, then the bytes': every
            # writer takes them in that order, so no two wait for each other.
            if self.dialect == "postgresql":
                for lock in (key.lock_id() if key else None, _lock_id(also) if also else None):
                    if lock is not None:
                        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock})
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only session (on SQLite it never holds the write lock)."""
        with _busy_is_transient(), self.read_sessions() as session:
            yield session

    # --- audit -----------------------------------------------------------------------------------

    @staticmethod
    def audit(
        session: Session,
        *,
        actor: str,
        action: str,
        subject: str | None = None,
        detail: dict[str, Any] | None = None,
        at: dt.datetime | None = None,
    ) -> None:
        """Append to the audit log inside a transaction (never patient data: ids, codes, counts).

        The actor must be a typed actor (``vardfil.actors``): every decision names who made it by an
        id the system issued, never by a typed name. A person number in the subject or the detail
        (a file name, a comment) is masked before it is written: the log is append-only, so what is
        written there stays."""
        if not is_typed(actor):
            raise ValueError(f"the audit log takes typed actors only (vardfil.actors), not {actor[:40]!r}")
        session.add(
            AuditLog(
                at=at or utcnow(),
                actor=actor,
                action=action,
                subject=masked(subject),
                detail=json.dumps(masked(detail), ensure_ascii=False, sort_keys=True) if detail else None,
                # The request this decision was made in (its X-Request-ID and its log lines).
                request_id=request_id.get(),
            )
        )

    def add_audit(
        self,
        *,
        actor: str,
        action: str,
        subject: str | None = None,
        detail: dict[str, Any] | None = None,
        at: dt.datetime | None = None,
    ) -> None:
        """Append one audit entry in a transaction of its own."""
        with self.transaction() as s:
            self.audit(s, actor=actor, action=action, subject=subject, detail=detail, at=at)

    def audit_entries(self, *, subject: str | None = None, limit: int = 1000) -> list[AuditLog]:
        """The newest audit entries first."""
        with self.reading() as s:
            q = select(AuditLog).order_by(AuditLog.id.desc()).limit(limit)
            if subject:
                q = q.where(AuditLog.subject == subject)
            return list(s.scalars(q))


def _lock_id(text_: str) -> int:
    return int.from_bytes(hashlib.sha256(text_.encode()).digest()[:8], "big", signed=True)
