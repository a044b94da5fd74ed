"""The ledger: what arrived when, what the system answered, and every decision, on record.

SQLite (WAL) under ``$VARDFIL_HOME`` is the embedded default; PostgreSQL in production through
``VARDFIL_DATABASE_URL``. The schema is created and upgraded by Alembic at open. Writers that
decide on a unit's history (F09, the gällande file) hold a lock for that unit, filtyp and period:
a PostgreSQL advisory lock, or SQLite's single write lock (``BEGIN IMMEDIATE``).

Exceptions::

    LedgerError                  base of the ledger's own faults
    ├── HistoryChanged           the history moved while a file was validated (retry: intake does)
    └── LedgerConfigError        the database URL or schema cannot be used
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from vardfil.models import AuditLog, Dispens, FindingCount, PeriodState, ReceivedFile

MIGRATIONS = Path(__file__).parent / "migrations"
NOT_REJECTED = ("GODKAND", "DELVIS_GODKAND")


class LedgerError(Exception):
    """A fault of the ledger itself (not of a received file)."""

    retryable = False


class HistoryChanged(LedgerError):
    """Another file of the same unit, filtyp and period was recorded meanwhile."""

    retryable = True


class LedgerConfigError(LedgerError):
    """The database cannot be opened or migrated."""


def utcnow() -> dt.datetime:
    """Now, aware, UTC."""
    return dt.datetime.now(dt.timezone.utc)


@dataclass(frozen=True, kw_only=True)
class FileKey:
    """A unit's slot: unit, filtyp and period."""

    unit_hsaid: str
    file_type: str
    period: str

    def lock_id(self) -> int:
        """A signed 64-bit number for pg_advisory_xact_lock."""
        digest = hashlib.sha256(f"{self.unit_hsaid}|{self.file_type}|{self.period}".encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)


def default_url(home: Path) -> str:
    """The embedded default: SQLite under VARDFIL_HOME."""
    return f"sqlite:///{(home / 'ledger.sqlite3').as_posix()}"


def _configure_sqlite(engine: Engine, *, writer: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # pysqlite's own transaction handling is switched off so BEGIN can be issued explicitly.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        # Writers take SQLite's single write lock up front (no upgrade deadlocks); readers do not,
        # and in WAL mode they read beside a writer.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")


class Ledger:
    """One ledger database. Cheap to share within a process; open one per process."""

    def __init__(self, url: str, *, migrate: bool = True, connect_args: dict | None = None):
        self.url = url
        kwargs: dict = {"future": True}
        if url.startswith("sqlite"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 60, **(connect_args or {})}
        else:
            kwargs["pool_pre_ping"] = True
            if connect_args:
                kwargs["connect_args"] = connect_args
        self.engine = create_engine(url, **kwargs)
        self.read_engine = self.engine
        if self.engine.dialect.name == "sqlite":
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

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (safe to run concurrently)."""
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(4242424242)"))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
        self.read_engine.dispose()

    # --- transactions --------------------------------------------------------------------------

    @contextmanager
    def transaction(self, key: FileKey | None = None) -> Iterator[Session]:
        """A write transaction; with a key, serialised against every other writer of that key."""
        with self.sessions.begin() as session:
            if key is not None and self.dialect == "postgresql":
                session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key.lock_id()})
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only session (on SQLite it never holds the write lock)."""
        with self.read_sessions() as session:
            yield session

    # --- audit -----------------------------------------------------------------------------------

    @staticmethod
    def audit(session: Session, *, actor: str, action: str, subject: str | None = None,
              detail: dict | None = None, at: dt.datetime | None = None) -> None:
        """Append to the audit log (never patient data: callers pass ids, codes and counts)."""
        session.add(AuditLog(at=at or utcnow(), actor=actor, action=action, subject=subject,
                             detail=json.dumps(detail, ensure_ascii=False, sort_keys=True) if detail else None))

    def audit_entries(self, *, subject: str | None = None, limit: int = 1000) -> list[AuditLog]:
        """The newest audit entries first."""
        with self.reading() as s:
            q = select(AuditLog).order_by(AuditLog.id.desc()).limit(limit)
            if subject:
                q = q.where(AuditLog.subject == subject)
            return list(s.scalars(q))

    # --- received files ----------------------------------------------------------------------------

    @staticmethod
    def by_sha(session: Session, sha256: str) -> ReceivedFile | None:
        """The earlier received file with these bytes, if any."""
        return session.scalars(select(ReceivedFile).where(ReceivedFile.sha256 == sha256)).first()

    def file_by_sha(self, sha256: str) -> ReceivedFile | None:
        """``by_sha`` in its own session."""
        with self.reading() as s:
            return self.by_sha(s, sha256)

    def file_by_receipt(self, receipt_id: str) -> ReceivedFile | None:
        """A received file by its kvittens id."""
        with self.reading() as s:
            return s.scalars(select(ReceivedFile).where(ReceivedFile.receipt_id == receipt_id)).first()

    @staticmethod
    def sequences(session: Session, key: FileKey) -> list[int]:
        """Sequence numbers of every file received for the key, AVVISAD ones included (F09)."""
        q = select(ReceivedFile.sequence).where(
            ReceivedFile.unit_hsaid == key.unit_hsaid, ReceivedFile.file_type == key.file_type,
            ReceivedFile.period == key.period)
        return sorted(s for s in session.scalars(q) if s is not None)

    def earlier_sequences(self, key: FileKey) -> list[int]:
        """``sequences`` in its own session."""
        with self.reading() as s:
            return self.sequences(s, key)

    def record(self, row: ReceivedFile, counts: dict[str, tuple[str, int]], *,
               key: FileKey | None, expected_sequences: list[int]) -> tuple[ReceivedFile, bool]:
        """Record a validated file in one transaction: the file, its finding counts, the audit entry.

        Returns (the recorded file, True) — or (the earlier file with the same bytes, False) when a
        byte-identical copy got there first. Raises HistoryChanged when the key's history is not
        the one the file was validated against.
        """
        with self.transaction(key) as s:
            earlier = self.by_sha(s, row.sha256)
            if earlier is not None:
                return earlier, False
            if key is not None and self.sequences(s, key) != expected_sequences:
                raise HistoryChanged(f"history of {key} changed during validation")
            s.add(row)
            s.flush()
            for rule, (severity, n) in counts.items():
                s.add(FindingCount(received_file_id=row.id, rule=rule, severity=severity, count=n))
            self.audit(s, actor=row.actor, action="file_received", subject=row.receipt_id,
                       at=row.recorded_at,
                       detail={"file_name": row.file_name, "sha256": row.sha256, "size": row.size_bytes,
                               "received_at": row.received_at.isoformat(), "source": row.source,
                               "status": row.status, "on_time": row.on_time,
                               "unit_hsaid": row.unit_hsaid, "period": row.period,
                               "counts_by_rule": {r: n for r, (_, n) in counts.items()}})
        return row, True

    def files_for_period(self, period: str) -> list[ReceivedFile]:
        """Every file received for a period, oldest first."""
        with self.reading() as s:
            q = select(ReceivedFile).where(ReceivedFile.period == period).order_by(
                ReceivedFile.received_at, ReceivedFile.id)
            return list(s.scalars(q))

    def gallande(self, key: FileKey, *, received_before: dt.datetime | None = None,
                 as_of: dt.datetime | None = None) -> ReceivedFile | None:
        """The gällande file of a key: the most recently received file that was not AVVISAD.

        ``received_before`` keeps only files received strictly before it (the deadline, or a
        dispens); ``as_of`` keeps only files received up to that instant (a close at T).
        """
        with self.reading() as s:
            q = select(ReceivedFile).where(
                ReceivedFile.unit_hsaid == key.unit_hsaid, ReceivedFile.file_type == key.file_type,
                ReceivedFile.period == key.period, ReceivedFile.status.in_(NOT_REJECTED))
            if received_before is not None:
                q = q.where(ReceivedFile.received_at < received_before)
            if as_of is not None:
                q = q.where(ReceivedFile.received_at <= as_of)
            return s.scalars(q.order_by(ReceivedFile.received_at.desc(), ReceivedFile.id.desc())).first()

    # --- dispens ---------------------------------------------------------------------------------

    def grant_dispens(self, *, unit_hsaid: str, period: str, deadline: dt.datetime, reason: str,
                      actor: str) -> Dispens:
        """Give one unit an extended deadline for one period. The newest grant is the one in force."""
        if not reason.strip():
            raise ValueError("a dispens needs a reason")
        with self.transaction() as s:
            row = Dispens(unit_hsaid=unit_hsaid, period=period, deadline=deadline, reason=reason.strip(),
                          granted_by=actor, granted_at=utcnow())
            s.add(row)
            self.audit(s, actor=actor, action="dispens_granted", subject=f"{unit_hsaid}/{period}",
                       detail={"deadline": deadline.isoformat(), "reason": reason.strip()})
        return row

    def dispens_deadline(self, unit_hsaid: str, period: str) -> dt.datetime | None:
        """The extended deadline in force for a unit and period, if any."""
        with self.reading() as s:
            q = select(Dispens).where(Dispens.unit_hsaid == unit_hsaid, Dispens.period == period).order_by(
                Dispens.granted_at.desc(), Dispens.id.desc())
            row = s.scalars(q).first()
            return row.deadline if row else None

    # --- periods ---------------------------------------------------------------------------------

    def period_closed(self, period: str) -> bool:
        """Whether a close of the period is recorded."""
        from vardfil.models import PeriodClose

        with self.reading() as s:
            return s.get(PeriodClose, period) is not None

    def period_state(self, period: str) -> PeriodState | None:
        """The recorded state of a period (None: still open, never closed)."""
        with self.reading() as s:
            return s.get(PeriodState, period)


def open_ledger(url: str | None = None, home: Path | None = None) -> Ledger:
    """Open (and migrate) the ledger at ``url``, or the embedded default under ``home``."""
    from vardfil.settings import load_settings

    if url is None:
        settings = load_settings()
        url = settings.database_url
    return Ledger(url)
