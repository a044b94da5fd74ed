"""Intake: the one way a file enters vardfil (CLI ``submit`` and ``intake``, the portal, the DAGs).

1. The bytes go to the content-addressed store first (temporary name, fsync, rename).
2. A byte-identical copy of an earlier file is not a new submission: the earlier kvittens comes
   back, and the arrival is written to the audit log.
3. The file is validated against the history the ledger holds for its unit, filtyp and period
   (F09) and the unit's dispens, if any; accepted rows are stored as Parquet, the full findings
   as CSV; then the file, its counts and an audit entry are recorded in one transaction. If the
   history changed meanwhile (a concurrent file for the same unit and period), it is validated
   again.

``received_at`` is stamped once, at arrival, by the caller; nothing here reads the clock to decide
lateness. For a folder, the arrival is the file's modification time as the transfer set it.
A crash anywhere leaves either a complete record or none (the inbox file is removed only after the
commit; store files written before a crash are content-addressed and simply reused).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filespec import Policy, policy_for
from validators import findings_to_csv, parse_file_name, validate_file
from validators.engine import FileName, ValidationResult
from validators.engine import receipt_id as make_receipt_id
from validators.identifiers import mask_text
from validators.kvittens import NOT_REJECTED
from vardfil.actors import Actor, job
from vardfil.app import App
from vardfil.errors import CopyOfAnotherUnit, HistoryChanged
from vardfil.ledger import FileKey, Ledger, ReceivedFile, utcnow
from vardfil.metrics import FILES_RECEIVED, VALIDATION_DURATION, size_band
from vardfil.store import sha256_of

MAX_NAME = 255
RETRIES = 5
CLI_ACTOR, INBOX_ACTOR = job("cli"), job("intake")  # who acts when a caller names nobody


@dataclass(frozen=True, kw_only=True)
class Submission:
    """What intake answers: the kvittens, and whether this arrival was a new submission."""

    kvittens: dict[str, Any]
    receipt_id: str
    new: bool
    file: ReceivedFile


def display_name(name: str) -> str:
    """The received name made safe to show and store: control characters replaced, a person
    number in it masked (a unit that names its file after a patient), length capped.

    It is only ever text: files are stored under their hash, never under this name.
    """
    cleaned = "".join("?" if unicodedata.category(c).startswith("C") else c for c in name)
    return mask_text(cleaned[:MAX_NAME]) if cleaned else "?"


def sent_name(name: str) -> str:
    """The file's own name from what a browser or client sent: the last component of a path
    (some browsers send ``C:\\Users\\…\\VGP_….csv``). F01 judges the result as it is."""
    return name.replace("\\", "/").rsplit("/", 1)[-1]


def submit(
    source: bytes | Path,
    *,
    file_name: str,
    received_at: dt.datetime,
    app: App,
    source_kind: str = "cli",
    actor: str = CLI_ACTOR,
    units: frozenset[str] | None = None,
) -> Submission:
    """Receive one file: store it, validate it against the ledger's history, record it.

    ``units``: the units the sender acts for (a unit user, a token), None for the region's own
    doors (CLI, inbox, DAG). A byte-identical copy of a file the sender may not read (another
    unit's, or an F01 file somebody else sent) is never answered with that file's kvittens: under
    2026.1 it is still no submission (nothing recorded, the arrival audited) and the sender gets
    :class:`CopyOfAnotherUnit`."""
    if received_at.tzinfo is None:
        raise ValueError("received_at must be aware")
    ledger, store = app.ledger, app.store
    shown = display_name(file_name)
    # The bytes are stored before anything else can fail: whatever happens next, nothing received
    # is lost, and a retry finds them under the same name.
    sha, size, raw = store.put_raw(source)
    started = time.perf_counter()

    # The version of the file's period decides what is a copy and what counts for F09 (section 9);
    # a file without a valid name goes by the period that ended last before it arrived.
    name = parse_file_name(file_name)
    policy = policy_for(name.file_type if name else None, name.period if name else None, received_at)
    original = original_of(policy, name)
    earlier = original(ledger.files.files_by_sha(sha))
    if earlier is not None:
        return _copy(ledger, earlier, shown, received_at, source_kind, actor, units)

    usable_only = policy.f09_history == "usable"
    key = FileKey(unit_hsaid=name.unit_hsaid, file_type=name.file_type, period=name.period) if name else None
    dispens = ledger.decisions.dispens_deadline(key.unit_hsaid, key.period) if key else None
    receipt = make_receipt_id(sha, received_at, shown)
    # Validate outside the lock, record inside it: a 200 MB file takes seconds to judge, and
    # holding the unit's lock meanwhile would queue every other file of that unit behind it.
    # The record then checks that the history (F09) is still the one judged against.
    # Derived files are named by the receipt, not by the bytes: from 2026.2 the same bytes can be
    # judged twice (an F08 file sent again once the window opens) with different findings.
    for _ in range(RETRIES):
        history = ledger.files.earlier_sequences(key, usable_only=usable_only) if key else []
        result, row = _judge(
            app,
            raw,
            file_name=file_name,
            shown=shown,
            received_at=received_at,
            history=history,
            dispens=dispens,
            receipt=receipt,
            stored=(sha, size),
            source_kind=source_kind,
            actor=actor,
        )
        k = result.kvittens
        counts = {rule: (_severity(result, rule), n) for rule, n in k.counts_by_rule.items()}
        try:
            recorded, new = ledger.files.record(
                row, counts, key=key, expected_sequences=history, usable_only=usable_only, original=original
            )
        except HistoryChanged:
            continue
        if not new:  # a copy recorded meanwhile won: this arrival is its copy
            return _copy(ledger, recorded, shown, received_at, source_kind, actor, units)
        VALIDATION_DURATION.labels(size_band(size)).observe(time.perf_counter() - started)
        return _new(app, recorded, source_kind)
    raise HistoryChanged(f"history of {key} kept changing; gave up after {RETRIES} tries")


def _new(app: App, recorded: ReceivedFile, source_kind: str) -> Submission:
    """A new submission, counted, and its kvittens mailed to the unit's people (once per receipt;
    a failure is logged and never fails the submission). A copy sends nothing: it is not one."""
    from vardfil.mail import notify_submission

    on_time = "unknown" if recorded.on_time is None else str(recorded.on_time).lower()
    FILES_RECEIVED.labels(source_kind, recorded.file_type or "unknown", recorded.status, on_time).inc()
    kvittens = json.loads(recorded.kvittens_json)  # read once: the mail only reads it
    notify_submission(app, kvittens, recorded.unit_hsaid)
    return Submission(kvittens=kvittens, receipt_id=recorded.receipt_id, new=True, file=recorded)


def _judge(
    app: App,
    raw: Path,
    *,
    file_name: str,
    shown: str,
    received_at: dt.datetime,
    history: list[int],
    dispens: dt.datetime | None,
    receipt: str,
    stored: tuple[str, int],
    source_kind: str,
    actor: str,
) -> tuple[ValidationResult, ReceivedFile]:
    """Validate the stored bytes against ``history`` and write what the record points to (the
    accepted rows, the findings); the result and the row to record."""
    store = app.store
    # Derived files are named by the receipt, not by the bytes: from 2026.2 the same bytes can be
    # judged twice (an F08 file sent again once the window opens) with different findings.
    key_hex = receipt.removeprefix("KV-")
    with store.staged_parquet() as staged:
        # The accepted rows are written while they are judged: a large file's rows are never all
        # in memory at once (benchmarks/RESULTS.md, round three).
        result = validate_file(
            raw,
            file_name=file_name,
            received_at=received_at,
            reference=app.reference,
            earlier_sequences=history,
            deadline=dispens,
            receipt=receipt,
            accepted_to=staged,
        )
        accepted_path = store.adopt_parquet(key_hex, staged) if result.kvittens.rows.accepted else None
    kv = result.kvittens.to_dict()
    kv["file_name"] = shown
    findings = findings_to_csv(result.findings)
    findings_path = store.put_bytes("findings", key_hex, ".csv", findings)
    k = result.kvittens
    sha, size = stored
    return result, ReceivedFile(
        receipt_id=receipt,
        sha256=sha,
        file_name=shown,
        size_bytes=size,
        received_at=received_at,
        recorded_at=utcnow(),
        source=source_kind,
        actor=actor,
        file_type=k.file_type,
        unit_hsaid=k.unit_hsaid,
        period=k.period,
        sequence=k.sequence,
        spec_version=k.spec_version,
        deadline=k.deadline,
        on_time=k.on_time,
        status=k.status.value,
        rows_total=k.rows.total,
        rows_accepted=k.rows.accepted,
        rows_rejected=k.rows.rejected,
        rows_with_warnings=k.rows.with_warnings,
        kvittens_json=json.dumps(kv, ensure_ascii=False),
        findings_path=store.relative(findings_path),
        accepted_path=store.relative(accepted_path) if accepted_path else None,
        findings_sha256=hashlib.sha256(findings).hexdigest(),
        accepted_sha256=sha256_of(accepted_path) if accepted_path else None,
    )


def original_of(policy: Policy, name: FileName | None) -> Callable[[list[ReceivedFile]], ReceivedFile | None]:
    """The version's copy rule: of the earlier files with the same bytes (first recorded first),
    the one a new file is a copy of, if any.

    2026.1 (reading 8): any earlier file, whatever its name or status. 2026.2 (reading 22): only an
    earlier file that was not AVVISAD and whose name carries the same HSA-id as the new file's; a
    file without a valid name (F01) is never a copy and never an original.
    """
    if policy.copies == "any":
        return lambda files: files[0] if files else None
    unit = name.unit_hsaid if name else None

    def same_unit_usable(files: list[ReceivedFile]) -> ReceivedFile | None:
        if unit is None:
            return None
        return next((f for f in files if f.status in NOT_REJECTED and f.unit_hsaid == unit), None)

    return same_unit_usable


def _copy(
    ledger: Ledger,
    earlier: ReceivedFile,
    shown: str,
    received_at: dt.datetime,
    source_kind: str,
    actor: str,
    units: frozenset[str] | None,
) -> Submission:
    """A byte-identical copy: no submission; the arrival audited, the earlier kvittens the answer
    (when the sender may read it)."""
    _audit_copy(ledger, earlier, shown, received_at, source_kind, actor)
    _own_or_refuse(earlier, units, actor)
    return Submission(
        kvittens=json.loads(earlier.kvittens_json), receipt_id=earlier.receipt_id, new=False, file=earlier
    )


def _own_or_refuse(earlier: ReceivedFile, units: frozenset[str] | None, actor: str) -> None:
    """Refuse to answer a copy with a kvittens its sender may not read (``vardfil.actors``' rule)."""
    if units is None:
        return
    own = earlier.unit_hsaid in units if earlier.unit_hsaid is not None else earlier.actor == actor
    if not own:
        raise CopyOfAnotherUnit(
            "Filen är en byte-identisk kopia av en fil som redan tagits emot från en annan avsändare. "
            "En kopia är ingen ny inlämning och har inte registrerats; skicka enhetens egen fil."
        )


def _severity(result: ValidationResult, rule: str) -> str:
    if rule.startswith("F"):
        return "AVVISA_FIL"
    return result.spec.severity(rule).value if result.spec else "FEL"


def _audit_copy(
    ledger: Ledger, earlier: ReceivedFile, shown: str, received_at: dt.datetime, source_kind: str, actor: str
) -> None:
    ledger.add_audit(
        actor=actor,
        action="copy_received",
        subject=earlier.receipt_id,
        detail={
            "file_name": shown,
            "received_at": received_at.isoformat(),
            "source": source_kind,
            "same_name": shown == earlier.file_name,
        },
    )


def waiting_files(inbox: Path) -> list[Path]:
    """The files waiting in an inbox, oldest arrival first. Dot-files (transfers in progress by
    convention), folders, links and special files are not taken."""
    if not inbox.is_dir():
        return []
    files = [p for p in inbox.iterdir() if not p.name.startswith(".") and p.is_file() and not p.is_symlink()]
    return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))


@dataclass(frozen=True, kw_only=True)
class InboxResult:
    """One inbox file taken in."""

    name: str
    submission: Submission | None
    refused: str | None = None


def arrival_time(path: Path) -> dt.datetime:
    """The file's modification time as the transfer set it, aware UTC."""
    return dt.datetime.fromtimestamp(path.stat().st_mtime_ns / 1e9, tz=dt.UTC)


def intake_folder(
    inbox: Path, *, app: App, actor: Actor = INBOX_ACTOR, on_result: Callable[[InboxResult], None] | None = None
) -> list[InboxResult]:
    """Take in every new file of an inbox folder, oldest first; remove each once it is recorded.

    Dot-files (transfers in progress by convention), folders and symbolic links are left alone.
    ``on_result`` is called after each file is committed (progress for operators).
    """
    report = on_result or (lambda _r: None)
    entries, results = [], []
    for entry in os.scandir(inbox):
        if entry.name.startswith(".") or entry.is_dir(follow_symlinks=False):
            continue
        if entry.is_symlink() or not entry.is_file(follow_symlinks=False):
            results.append(
                InboxResult(
                    name=display_name(entry.name),
                    submission=None,
                    refused="inte en vanlig fil (länk eller specialfil): lämnas orörd",
                )
            )
            report(results[-1])
            continue
        entries.append(Path(entry.path))
    entries.sort(key=lambda p: (p.stat().st_mtime_ns, p.name))
    for path in entries:
        sub = submit(
            path, file_name=path.name, received_at=arrival_time(path), app=app, source_kind="inbox", actor=actor
        )
        path.unlink()  # only after the commit: a crash before it leaves the file for the next run
        results.append(InboxResult(name=path.name, submission=sub))
        report(results[-1])
    return results
