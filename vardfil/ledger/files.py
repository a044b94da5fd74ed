"""The received files of the ledger: what arrived when, the kvittens it got, the gällande
file of a slot (``ledger.files``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from filespec.calendar import Period
from validators.kvittens import NOT_REJECTED
from vardfil.errors import HistoryChanged
from vardfil.ledger.core import FileKey
from vardfil.ledger.tables import FindingCount, ReceivedFile

if TYPE_CHECKING:
    from vardfil.ledger.core import Core


class Files:
    """The received-file tables of one ledger."""

    def __init__(self, ledger: Core):
        self.ledger = ledger

    def file_by_sha(self, sha256: str) -> ReceivedFile | None:
        """The first received file with these bytes, if any."""
        with self.ledger.reading() as s:
            return _by_sha(s, sha256)

    def files_by_sha(self, sha256: str) -> list[ReceivedFile]:
        """Every received file with these bytes, first recorded first (from 2026.2 the same bytes
        can be recorded more than once: judged anew when no earlier file is their original)."""
        with self.ledger.reading() as s:
            return _all_by_sha(s, sha256)

    def file_by_receipt(self, receipt_id: str) -> ReceivedFile | None:
        """A received file by its kvittens id."""
        with self.ledger.reading() as s:
            return s.scalars(select(ReceivedFile).where(ReceivedFile.receipt_id == receipt_id)).first()

    def earlier_sequences(self, key: FileKey, *, usable_only: bool = False) -> list[int]:
        """Sequence numbers of the files received for the key (F09): every one (2026.1, reading 8),
        or with ``usable_only`` those not AVVISAD (2026.2, reading 21)."""
        with self.ledger.reading() as s:
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
        with self.ledger.transaction(key, also=row.sha256) as s:
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
            self.ledger.audit(
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

    def files_for_period(self, period: Period) -> list[ReceivedFile]:
        """Every file received for a period, oldest first."""
        with self.ledger.reading() as s:
            q = (
                select(ReceivedFile)
                .where(ReceivedFile.period == str(period))
                .order_by(ReceivedFile.received_at, ReceivedFile.id)
            )
            return list(s.scalars(q))

    def stored_files(self) -> list[ReceivedFile]:
        """Every received file, first recorded first (``vardfil verify`` walks them)."""
        with self.ledger.reading() as s:
            return list(s.scalars(select(ReceivedFile).order_by(ReceivedFile.id)))

    def files_recorded_since(self, since: dt.datetime) -> list[ReceivedFile]:
        """Every file recorded at or after an instant (not received: an inbox file keeps its
        transfer time), in the order recorded."""
        with self.ledger.reading() as s:
            q = select(ReceivedFile).where(ReceivedFile.recorded_at >= since).order_by(ReceivedFile.id)
            return list(s.scalars(q))

    def unit_history(self, unit_hsaid: str, *, limit: int = 200) -> list[ReceivedFile]:
        """A unit's received files, newest first."""
        with self.ledger.reading() as s:
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
        with self.ledger.reading() as s:
            files = s.scalars(
                select(ReceivedFile).where(
                    ReceivedFile.unit_hsaid == key.unit_hsaid,
                    ReceivedFile.file_type == key.file_type,
                    ReceivedFile.period == str(key.period),
                )
            )
            return newest_usable(
                files,
                received_before=received_before,
                as_of=as_of,
                excluding_id=excluding.id if excluding is not None else None,
            )

    def files_of_period(self, period: Period) -> dict[FileKey, list[ReceivedFile]]:
        """Every received file of ``period`` with a valid name, by slot, in the order recorded: what
        :meth:`gallande` chooses from, for every slot at once (a close chooses each unit's with
        :func:`newest_usable`)."""
        with self.ledger.reading() as s:
            by_key: dict[FileKey, list[ReceivedFile]] = {}
            for f in s.scalars(
                select(ReceivedFile).where(ReceivedFile.period == str(period)).order_by(ReceivedFile.id)
            ):
                if f.unit_hsaid is None or f.file_type is None:
                    continue  # a file without a valid name belongs to no slot
                by_key.setdefault(FileKey(unit_hsaid=f.unit_hsaid, file_type=f.file_type, period=period), []).append(f)
        return by_key

    def gallande_files(
        self,
        *,
        before: Period,
        since: Period | None = None,
        unit_hsaid: str | None = None,
        file_type: str | None = None,
        as_of: dt.datetime | None = None,
    ) -> dict[FileKey, ReceivedFile]:
        """The gällande file of every slot with a usable file in the periods ``[since, before)``
        (optionally of one unit and filtyp), as of an instant: the history a close reads."""
        with self.ledger.reading() as s:
            q = select(ReceivedFile).where(ReceivedFile.period < str(before), ReceivedFile.status.in_(NOT_REJECTED))
            if since is not None:
                q = q.where(ReceivedFile.period >= str(since))
            if unit_hsaid is not None:
                q = q.where(ReceivedFile.unit_hsaid == unit_hsaid)
            if file_type is not None:
                q = q.where(ReceivedFile.file_type == file_type)
            by_key: dict[FileKey, list[ReceivedFile]] = {}
            for f in s.scalars(q):
                if f.unit_hsaid is None or f.file_type is None or f.period is None:
                    continue  # a usable file always has a valid name; this only satisfies the types
                by_key.setdefault(
                    FileKey(unit_hsaid=f.unit_hsaid, file_type=f.file_type, period=Period.parse(f.period)), []
                ).append(f)
        chosen = {
            k: newest_usable(fs, as_of=as_of)
            for k, fs in sorted(by_key.items(), key=lambda kv: (kv[0].unit_hsaid, kv[0].file_type, kv[0].period))
        }
        return {k: f for k, f in chosen.items() if f is not None}


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


def _by_sha(session: Session, sha256: str) -> ReceivedFile | None:
    return session.scalars(select(ReceivedFile).where(ReceivedFile.sha256 == sha256).order_by(ReceivedFile.id)).first()


def _all_by_sha(session: Session, sha256: str) -> list[ReceivedFile]:
    return list(session.scalars(select(ReceivedFile).where(ReceivedFile.sha256 == sha256).order_by(ReceivedFile.id)))


def _sequences(session: Session, key: FileKey, usable_only: bool = False) -> list[int]:
    q = select(ReceivedFile.sequence).where(
        ReceivedFile.unit_hsaid == key.unit_hsaid,
        ReceivedFile.file_type == key.file_type,
        ReceivedFile.period == str(key.period),
    )
    if usable_only:
        q = q.where(ReceivedFile.status.in_(NOT_REJECTED))
    return sorted(s for s in session.scalars(q) if s is not None)
