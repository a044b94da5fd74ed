"""The ledger: what arrived when, what the system answered, and every decision, on record.

SQLite (WAL) under ``$VARDFIL_HOME`` is the embedded default; PostgreSQL in production through
``VARDFIL_DATABASE_URL``. The schema is created and upgraded by Alembic at open. Writers that
decide on a unit's history (F09, the gällande file) hold a lock for that unit, filtyp and period:
a PostgreSQL advisory lock, or SQLite's single write lock (``BEGIN IMMEDIATE``).

Every query of the ledger's tables is a method here (or of ``vardfil.ledger.accounts`` and
``vardfil.ledger.status``), asked in the month's words: ``gallande(key, as_of=…)``,
``close_of(period)``. Rows come back detached (``expire_on_commit=False``): callers read their
attributes and never see a session. A database that does not answer, or stays locked past its
timeout, raises :class:`~vardfil.errors.DatabaseBusy` (retryable).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import InterfaceError as DBInterfaceError
from sqlalchemy.orm import Session, sessionmaker

from validators.kvittens import NOT_REJECTED
from vardfil.actors import is_typed
from vardfil.errors import ApprovalRefused, DatabaseBusy, HistoryChanged, NotClosed
from vardfil.ledger.tables import (
    Approval,
    AuditLog,
    Dispens,
    FindingCount,
    PeriodClose,
    PeriodState,
    ReceivedFile,
    SentMessage,
    Settlement,
    UnderlagLineRow,
)
from vardfil.privacy import masked

MIGRATIONS = Path(__file__).parent / "migrations"
ANSWERS = ("GODKANN", "INVAND")


def utcnow() -> dt.datetime:
    """Now, aware, UTC."""
    return dt.datetime.now(dt.UTC)


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


def newest_usable(
    files: Iterable[ReceivedFile],
    *,
    received_before: dt.datetime | None = None,
    as_of: dt.datetime | None = None,
    excluding_id: int | None = None,
) -> ReceivedFile | None:
    """The gällande rule (ERSATTNINGSMODELL.md section 1), the one place it is written.

    Of one slot's files: the most recently received one that was not AVVISAD. ``received_before``
    keeps only files received strictly before it (the deadline or a dispens: on time means before);
    ``as_of`` only those received up to that instant (a close at T sees what had arrived at T);
    ``excluding_id`` leaves one file out (what a resubmission replaces). Ties on the arrival
    instant go to the file recorded last.
    """
    best: ReceivedFile | None = None
    for f in files:
        if f.status not in NOT_REJECTED or f.id == excluding_id:
            continue
        if received_before is not None and not f.received_at < received_before:
            continue
        if as_of is not None and f.received_at > as_of:
            continue
        if best is None or (f.received_at, f.id) > (best.received_at, best.id):
            best = f
    return best


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


class Ledger:
    """One ledger database. Cheap to share within a process; open one per process."""

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
        from vardfil.ledger.accounts import Accounts
        from vardfil.ledger.systems import Systems

        self.accounts = Accounts(self)
        self.systems = Systems(self)

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
            )
        )

    def _add_audited(
        self,
        session: Session,
        row: Dispens | Approval,
        *,
        actor: str,
        action: str,
        subject: str,
        detail: dict[str, Any],
    ) -> None:
        """Add a decision and its audit entry in one transaction, stamped with the same instant."""
        now = utcnow()
        if isinstance(row, Dispens):
            row.granted_at = now
        else:
            row.at = now
        session.add(row)
        self.audit(session, actor=actor, action=action, subject=subject, detail=detail, at=now)

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

    # --- received files ----------------------------------------------------------------------------

    def file_by_sha(self, sha256: str) -> ReceivedFile | None:
        """The first received file with these bytes, if any."""
        with self.reading() as s:
            return _by_sha(s, sha256)

    def files_by_sha(self, sha256: str) -> list[ReceivedFile]:
        """Every received file with these bytes, first recorded first (from 2026.2 the same bytes
        can be recorded more than once: judged anew when no earlier file is their original)."""
        with self.reading() as s:
            return _all_by_sha(s, sha256)

    def file_by_receipt(self, receipt_id: str) -> ReceivedFile | None:
        """A received file by its kvittens id."""
        with self.reading() as s:
            return s.scalars(select(ReceivedFile).where(ReceivedFile.receipt_id == receipt_id)).first()

    def earlier_sequences(self, key: FileKey, *, usable_only: bool = False) -> list[int]:
        """Sequence numbers of the files received for the key (F09): every one (2026.1, reading 8),
        or with ``usable_only`` those not AVVISAD (2026.2, reading 21)."""
        with self.reading() as s:
            return _sequences(s, key, usable_only)

    def record(
        self,
        row: ReceivedFile,
        counts: dict[str, tuple[str, int]],
        *,
        key: FileKey | None,
        expected_sequences: list[int],
        usable_only: bool = False,
        original: Callable[[list[ReceivedFile]], ReceivedFile | None] = lambda files: files[0] if files else None,
    ) -> tuple[ReceivedFile, bool]:
        """Record a validated file in one transaction: the file, its finding counts, the audit entry.

        ``original`` picks, from the earlier files with the same bytes, the one this file is a copy
        of (the version's copy rule, ``vardfil.month.intake``; default: the first, as in 2026.1).
        Returns (the recorded file, True) — or (that original, False). Raises HistoryChanged when
        the key's history (every file, or with ``usable_only`` the files not AVVISAD) is not the
        one the file was validated against.
        """
        with self.transaction(key, also=row.sha256) as s:
            # Checked again under the locks: a copy that arrived while this one was validated wins
            # (the first recorded is the submission, reading 8), and this answer becomes its kvittens.
            earlier = original(_all_by_sha(s, row.sha256))
            if earlier is not None:
                return earlier, False
            if key is not None and _sequences(s, key, usable_only) != expected_sequences:
                raise HistoryChanged(f"history of {key} changed during validation")
            s.add(row)
            s.flush()
            for rule, (severity, n) in counts.items():
                s.add(FindingCount(received_file_id=row.id, rule=rule, severity=severity, count=n))
            self.audit(
                s,
                actor=row.actor,
                action="file_received",
                subject=row.receipt_id,
                at=row.recorded_at,
                detail={
                    "file_name": row.file_name,
                    "sha256": row.sha256,
                    "size": row.size_bytes,
                    "received_at": row.received_at.isoformat(),
                    "source": row.source,
                    "status": row.status,
                    "on_time": row.on_time,
                    "unit_hsaid": row.unit_hsaid,
                    "period": row.period,
                    "counts_by_rule": {r: n for r, (_, n) in counts.items()},
                },
            )
        return row, True

    def files_for_period(self, period: str) -> list[ReceivedFile]:
        """Every file received for a period, oldest first."""
        with self.reading() as s:
            q = (
                select(ReceivedFile)
                .where(ReceivedFile.period == period)
                .order_by(ReceivedFile.received_at, ReceivedFile.id)
            )
            return list(s.scalars(q))

    def files_recorded_since(self, since: dt.datetime) -> list[ReceivedFile]:
        """Every file recorded at or after an instant (not received: an inbox file keeps its
        transfer time), in the order recorded."""
        with self.reading() as s:
            q = select(ReceivedFile).where(ReceivedFile.recorded_at >= since).order_by(ReceivedFile.id)
            return list(s.scalars(q))

    def unit_history(self, unit_hsaid: str, *, limit: int = 200) -> list[ReceivedFile]:
        """A unit's received files, newest first."""
        with self.reading() as s:
            return list(
                s.scalars(
                    select(ReceivedFile)
                    .where(ReceivedFile.unit_hsaid == unit_hsaid)
                    .order_by(ReceivedFile.received_at.desc(), ReceivedFile.id.desc())
                    .limit(limit)
                )
            )

    def gallande(
        self,
        key: FileKey,
        *,
        received_before: dt.datetime | None = None,
        as_of: dt.datetime | None = None,
        excluding: ReceivedFile | None = None,
    ) -> ReceivedFile | None:
        """The gällande file of a slot under :func:`newest_usable`'s rule."""
        # The slot's files are few (one to a handful a month); the rule is applied in Python so that
        # this query and period_status share one definition of "gällande".
        with self.reading() as s:
            files = s.scalars(
                select(ReceivedFile).where(
                    ReceivedFile.unit_hsaid == key.unit_hsaid,
                    ReceivedFile.file_type == key.file_type,
                    ReceivedFile.period == key.period,
                )
            )
            return newest_usable(
                files,
                received_before=received_before,
                as_of=as_of,
                excluding_id=excluding.id if excluding is not None else None,
            )

    def files_of_period(self, period: str) -> dict[FileKey, list[ReceivedFile]]:
        """Every received file of ``period`` with a valid name, by slot, in the order recorded: what
        :meth:`gallande` chooses from, for every slot at once (a close chooses each unit's with
        :func:`newest_usable`)."""
        with self.reading() as s:
            by_key: dict[FileKey, list[ReceivedFile]] = {}
            for f in s.scalars(select(ReceivedFile).where(ReceivedFile.period == period).order_by(ReceivedFile.id)):
                if f.unit_hsaid is None or f.file_type is None:
                    continue  # a file without a valid name belongs to no slot
                by_key.setdefault(FileKey(unit_hsaid=f.unit_hsaid, file_type=f.file_type, period=period), []).append(f)
        return by_key

    def gallande_files(
        self,
        *,
        before: str,
        since: str | None = None,
        unit_hsaid: str | None = None,
        file_type: str | None = None,
        as_of: dt.datetime | None = None,
    ) -> dict[FileKey, ReceivedFile]:
        """The gällande file of every slot with a usable file in the periods ``[since, before)``
        (optionally of one unit and filtyp), as of an instant: the history a close reads."""
        with self.reading() as s:
            q = select(ReceivedFile).where(ReceivedFile.period < before, ReceivedFile.status.in_(NOT_REJECTED))
            if since is not None:
                q = q.where(ReceivedFile.period >= since)
            if unit_hsaid is not None:
                q = q.where(ReceivedFile.unit_hsaid == unit_hsaid)
            if file_type is not None:
                q = q.where(ReceivedFile.file_type == file_type)
            by_key: dict[FileKey, list[ReceivedFile]] = {}
            for f in s.scalars(q):
                if f.unit_hsaid is None or f.file_type is None or f.period is None:
                    continue  # a usable file always has a valid name; this only satisfies the types
                by_key.setdefault(FileKey(unit_hsaid=f.unit_hsaid, file_type=f.file_type, period=f.period), []).append(
                    f
                )
        chosen = {
            k: newest_usable(fs, as_of=as_of)
            for k, fs in sorted(by_key.items(), key=lambda kv: (kv[0].unit_hsaid, kv[0].file_type, kv[0].period))
        }
        return {k: f for k, f in chosen.items() if f is not None}

    # --- messages ---------------------------------------------------------------------------------

    def claim_message(self, *, key: str, kind: str, recipients: int, via: str) -> bool:
        """Record that a message is being sent; False when one with this key was sent already
        (a rerun, a copy of a file, a second close). The record comes first: a message whose
        sending fails is released again (:meth:`release_message`), so it can be retried."""
        try:
            with self.transaction() as s:
                s.add(SentMessage(key=key, kind=kind, recipients=recipients, via=via, sent_at=utcnow()))
        except IntegrityError:
            return False
        return True

    def release_message(self, key: str) -> None:
        """Forget a claimed message that could not be sent."""
        with self.transaction() as s:
            row = s.get(SentMessage, key)
            if row is not None:
                s.delete(row)

    def sent_messages(self, kind: str | None = None) -> list[SentMessage]:
        """The messages sent, oldest first."""
        with self.reading() as s:
            q = select(SentMessage).order_by(SentMessage.sent_at, SentMessage.key)
            if kind is not None:
                q = q.where(SentMessage.kind == kind)
            return list(s.scalars(q))

    # --- dispens ---------------------------------------------------------------------------------

    def add_dispens(self, *, unit_hsaid: str, period: str, deadline: dt.datetime, reason: str, actor: str) -> Dispens:
        """Record a dispens (``vardfil.month.dispens.grant_dispens`` decides whether it may be)."""
        row = Dispens(unit_hsaid=unit_hsaid, period=period, deadline=deadline, reason=reason, granted_by=actor)
        with self.transaction() as s:
            self._add_audited(
                s,
                row,
                actor=actor,
                action="dispens_granted",
                subject=f"{unit_hsaid}/{period}",
                detail={"deadline": deadline.isoformat(), "reason": reason},
            )
        return row

    def dispens_deadline(self, unit_hsaid: str, period: str) -> dt.datetime | None:
        """The extended deadline in force for a unit and period, if any (the newest grant)."""
        return self.dispens_for_period(period).get(unit_hsaid)

    def dispens_for_period(self, period: str) -> dict[str, dt.datetime]:
        """Per unit, the extended deadline in force for a period (the newest grant wins)."""
        with self.reading() as s:
            q = select(Dispens).where(Dispens.period == period).order_by(Dispens.granted_at, Dispens.id)
            return {row.unit_hsaid: row.deadline for row in s.scalars(q)}

    # --- closes ----------------------------------------------------------------------------------

    def close_of(self, period: str) -> PeriodClose | None:
        """The recorded close of a period, if any."""
        with self.reading() as s:
            return s.get(PeriodClose, period)

    def period_closed(self, period: str) -> bool:
        """Whether a close of the period is recorded."""
        return self.close_of(period) is not None

    def closed_periods(self, *, before: str | None = None) -> list[str]:
        """The closed periods, oldest first (only those before ``before`` when given)."""
        with self.reading() as s:
            q = select(PeriodClose.period).order_by(PeriodClose.period)
            if before is not None:
                q = q.where(PeriodClose.period < before)
            return list(s.scalars(q))

    def recent_closes(self, limit: int = 12) -> list[PeriodClose]:
        """The newest closes first."""
        with self.reading() as s:
            return list(s.scalars(select(PeriodClose).order_by(PeriodClose.period.desc()).limit(limit)))

    def period_state(self, period: str) -> PeriodState | None:
        """The recorded state of a period (None: still open, never closed)."""
        with self.reading() as s:
            return s.get(PeriodState, period)

    def underlag_lines(self, close_period: str, *, unit_hsaid: str | None = None) -> list[UnderlagLineRow]:
        """The lines a close published (RATTELSE lines included), in the order recorded."""
        with self.reading() as s:
            q = select(UnderlagLineRow).where(UnderlagLineRow.close_period == close_period)
            if unit_hsaid is not None:
                q = q.where(UnderlagLineRow.unit_hsaid == unit_hsaid)
            return list(s.scalars(q.order_by(UnderlagLineRow.id)))

    def unit_lines(self, unit_hsaid: str) -> list[UnderlagLineRow]:
        """Every published line of one unit, over all closes."""
        with self.reading() as s:
            return list(
                s.scalars(
                    select(UnderlagLineRow).where(UnderlagLineRow.unit_hsaid == unit_hsaid).order_by(UnderlagLineRow.id)
                )
            )

    def settled(self, period: str, file_type: str, unit_hsaid: str) -> Settlement | None:
        """What was last settled for a unit, filtyp and period (the newest settlement row)."""
        with self.reading() as s:
            q = (
                select(Settlement)
                .where(
                    Settlement.period == period, Settlement.file_type == file_type, Settlement.unit_hsaid == unit_hsaid
                )
                .order_by(Settlement.id.desc())
            )
            return s.scalars(q).first()

    def record_close(
        self,
        close: PeriodClose,
        lines: list[UnderlagLineRow],
        settlements: list[Settlement],
        *,
        audit_detail: dict[str, Any],
    ) -> bool:
        """Record a close with its lines and settlements in one transaction.

        False when a concurrent close of the same period was recorded first: the caller answers
        with that one (a period has exactly one close).
        """
        try:
            with self.transaction() as s:
                s.add(close)
                s.flush()
                s.add_all(lines)
                s.add_all(settlements)
                if s.get(PeriodState, close.period) is None:
                    s.add(PeriodState(period=close.period, state="CLOSED", updated_at=close.recorded_at))
                self.audit(s, actor=close.actor, action="period_closed", subject=close.period, detail=audit_detail)
        except IntegrityError:  # the period_close primary key: a close of this period exists
            return False
        return True

    # --- approval --------------------------------------------------------------------------------

    def add_answer(
        self, *, unit_hsaid: str, file_type: str, period: str, action: str, comment: str | None, actor: str
    ) -> Approval:
        """Record a unit's approval or dispute, refused once the period is finalised."""
        row = Approval(
            unit_hsaid=unit_hsaid, file_type=file_type, period=period, action=action, comment=comment, actor=actor
        )
        with self.transaction() as s:
            # Read the state in the transaction that writes the answer: a finalisation committed
            # between a check and the write would otherwise let an answer in after it.
            if _state(s, period) == "FINALISED":
                raise ApprovalRefused(f"period {period} is finalised: its underlag never changes")
            self._add_audited(
                s,
                row,
                actor=actor,
                action=f"underlag_{action.lower()}",
                subject=f"{unit_hsaid}/{period}",
                detail={"file_type": file_type, "comment": comment},
            )
        return row

    def finalise(self, *, period: str, actor: str) -> dict[str, str]:
        """Mark a closed period FINALISED; the newest answer per ``unit/filtyp`` on record then."""
        with self.transaction() as s:
            if _state(s, period) == "FINALISED":
                raise ApprovalRefused(f"period {period} is already finalised")
            state = s.get(PeriodState, period)
            assert state is not None  # a close always records the state (record_close)
            state.state, state.updated_at = "FINALISED", utcnow()
            answers = {f"{u}/{ft}": a for (u, ft), a in _latest_answers(s, period).items()}
            s.add(
                Approval(
                    unit_hsaid=None,
                    file_type=None,
                    period=period,
                    action="FASTSTALL",
                    comment=None,
                    actor=actor,
                    at=utcnow(),
                )
            )
            self.audit(s, actor=actor, action="period_finalised", subject=period, detail={"answers": answers})
        return answers

    def answers_of_unit(self, unit_hsaid: str) -> dict[tuple[str, str | None], Approval]:
        """A unit's newest answer per (period, filtyp)."""
        with self.reading() as s:
            q = select(Approval).where(Approval.unit_hsaid == unit_hsaid).order_by(Approval.id)
            return {(a.period, a.file_type): a for a in s.scalars(q)}


def _lock_id(text_: str) -> int:
    return int.from_bytes(hashlib.sha256(text_.encode()).digest()[:8], "big", signed=True)


def _by_sha(session: Session, sha256: str) -> ReceivedFile | None:
    return session.scalars(select(ReceivedFile).where(ReceivedFile.sha256 == sha256).order_by(ReceivedFile.id)).first()


def _all_by_sha(session: Session, sha256: str) -> list[ReceivedFile]:
    return list(session.scalars(select(ReceivedFile).where(ReceivedFile.sha256 == sha256).order_by(ReceivedFile.id)))


def _sequences(session: Session, key: FileKey, usable_only: bool = False) -> list[int]:
    q = select(ReceivedFile.sequence).where(
        ReceivedFile.unit_hsaid == key.unit_hsaid,
        ReceivedFile.file_type == key.file_type,
        ReceivedFile.period == key.period,
    )
    if usable_only:
        q = q.where(ReceivedFile.status.in_(NOT_REJECTED))
    return sorted(s for s in session.scalars(q) if s is not None)


def _state(session: Session, period: str) -> str:
    if session.get(PeriodClose, period) is None:
        raise NotClosed(f"period {period} is not closed")
    state = session.get(PeriodState, period)
    return state.state if state else "CLOSED"


def _latest_answers(session: Session, period: str) -> dict[tuple[str | None, str | None], str]:
    q = select(Approval).where(Approval.period == period, Approval.action.in_(ANSWERS)).order_by(Approval.id)
    return {(a.unit_hsaid, a.file_type): a.action for a in session.scalars(q)}
