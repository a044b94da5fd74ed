"""The functions Airflow tasks call: one each, small JSON-able results, safe to rerun.

Settings come from the environment like every other entry point (``vardfil.settings``): the
inbox is ``VARDFIL_INBOX`` (default ``$VARDFIL_HOME/inbox``). "Now" is always the DAG run's
instant, passed in, never the wall clock, so reruns and backfills decide the same way.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from validators.window import parse_instant, period_of_window, window_for


def _inbox() -> Path:
    from vardfil.settings import load_settings

    return Path(os.environ.get("VARDFIL_INBOX") or load_settings().home / "inbox")


def _app():
    from filespec import load_reference
    from vardfil.ledger import Ledger
    from vardfil.settings import load_settings
    from vardfil.store import RawStore

    s = load_settings()
    return s, Ledger(s.database_url), RawStore(s.store), load_reference(s.reference)


def new_inbox_files() -> list[str]:
    """Paths of the files waiting in the inbox, oldest first (one mapped intake task each)."""
    inbox = _inbox()
    if not inbox.is_dir():
        return []
    files = [p for p in inbox.iterdir() if not p.name.startswith(".") and p.is_file() and not p.is_symlink()]
    return [str(p) for p in sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))]


def intake_one(path: str) -> dict:
    """Take in one inbox file (its arrival is its modification time); gone already: skipped."""
    from vardfil.intake import arrival_time, submit

    p = Path(path)
    if not p.exists():  # taken by an earlier try of this task: the ledger has it
        return {"name": p.name, "skipped": True}
    settings, ledger, store, reference = _app()
    try:
        sub = submit(p, file_name=p.name, received_at=arrival_time(p), ledger=ledger, store=store,
                     reference=reference, source_kind="dag", actor="airflow")
        p.unlink()
    finally:
        ledger.dispose()
    kv = sub.kvittens
    return {"name": p.name, "receipt_id": kv["receipt_id"], "status": kv["status"], "on_time": kv["on_time"],
            "new": sub.new}


def due_periods(now: str) -> list[str]:
    """The period whose deadline passed most recently, if it is not closed yet.

    Older periods that were never closed are not closed by the nightly run: closing them is an
    analyst's decision (``vardfil close`` or a manual run of ``vardfil_close``).
    """
    from vardfil.airflow_plugin import deadline_before_or_at

    at = parse_instant(now)
    period = period_of_window(deadline_before_or_at(at))
    _, ledger, _, _ = _app()
    try:
        closed = ledger.period_closed(period)
    finally:
        ledger.dispose()
    return [] if closed else [period]


def close_one(period: str, at: str | None = None) -> dict:
    """Close a period as of an instant (default: its deadline); the summary without the unit list.

    The nightly run closes a period it finds due as of the deadline, not as of its own run time:
    the result is then the one the close at 15:00 would have given, whenever the fallback ran.
    """
    from vardfil.close import CloseContext, close_period, pseudonym_key

    settings, ledger, store, reference = _app()
    try:
        ctx = CloseContext(ledger=ledger, store=store, reference=reference, out_root=settings.output,
                           pseudonym_key=pseudonym_key(settings.home, settings.pseudonym_key))
        instant = parse_instant(at) if at else window_for(period).deadline
        summary = close_period(period, at=instant, ctx=ctx, actor="airflow")
    finally:
        ledger.dispose()
    return {k: summary[k] for k in ("period", "closed_at", "underlag_parquet", "besok_parquet", "acg_parquet",
                                    "total", "missing_units", "rattelse", "snapshot_sha256")}


def write_workbooks(period: str, units: list[str] | None = None, region: bool = True) -> list[str]:
    """(Re)write the workbooks of a closed period (``units``: only those unit workbooks; ``region``:
    the region workbook too); their paths."""
    from vardfil.close import CloseContext, pseudonym_key
    from vardfil.report import write_reports

    settings, ledger, store, reference = _app()
    try:
        ctx = CloseContext(ledger=ledger, store=store, reference=reference, out_root=settings.output,
                           pseudonym_key=pseudonym_key(settings.home, settings.pseudonym_key))
        return [str(p) for p in write_reports(period, ctx=ctx, units=units, region=region)]
    finally:
        ledger.dispose()


def workbook_batches(closes: list[dict], batches: int | None = None) -> list[dict]:
    """The units of each closed period in up to ``batches`` (``VARDFIL_WORKBOOK_BATCHES``, default
    8) batches of consecutive units: one mapped unit-workbook task each, so the month's biggest
    stage spreads over the workers. ``[{"period": ..., "units": [hsaid, ...]}, ...]``."""
    import json

    from vardfil.models import PeriodClose

    n = batches or int(os.environ.get("VARDFIL_WORKBOOK_BATCHES") or 8)
    _, ledger, _, _ = _app()
    try:
        out = []
        for closed in closes:
            with ledger.reading() as s:
                pc = s.get(PeriodClose, closed["period"])
            units = [f["unit_hsaid"] for f in json.loads(pc.snapshot)["files"]]
            size = max(1, -(-len(units) // n))
            out += [{"period": closed["period"], "units": units[i:i + size]} for i in range(0, len(units), size)]
        return out
    finally:
        ledger.dispose()


def reminders(now: str) -> list[dict]:
    """While a window is open: the active units with no usable file yet for its period."""
    from vardfil.ledger import FileKey

    at = parse_instant(now)
    period = period_of_window(at)
    window = window_for(period)
    if not (window.opens <= at < window.deadline):
        return []
    _, ledger, _, reference = _app()
    try:
        due = []
        for unit in sorted(reference.units.values(), key=lambda u: (u.filtyp, u.hsaid)):
            if unit.active_in(period) and ledger.gallande(
                    FileKey(unit_hsaid=unit.hsaid, file_type=unit.filtyp, period=period), as_of=at) is None:
                due.append({"unit_hsaid": unit.hsaid, "file_type": unit.filtyp, "period": period,
                            "deadline": window.deadline.isoformat()})
        if due:
            with ledger.transaction() as s:
                ledger.audit(s, actor="airflow", action="reminders_due", subject=period,
                             detail={"units": [d["unit_hsaid"] for d in due], "at": at.isoformat()})
        return due
    finally:
        ledger.dispose()


def summarise(now: str, intakes: list[dict], closes: list[dict], due: list[dict]) -> dict:
    """The run summary: what was taken in, closed and reminded (also written to the audit log)."""
    _, ledger, _, _ = _app()
    summary = {
        "at": parse_instant(now).isoformat(),
        "files": len([i for i in intakes if not i.get("skipped")]),
        "rejected": len([i for i in intakes if i.get("status") == "AVVISAD"]),
        "late": len([i for i in intakes if i.get("on_time") is False]),
        "closed": [c["period"] for c in closes],
        "reminders": len(due),
    }
    try:
        with ledger.transaction() as s:
            ledger.audit(s, actor="airflow", action="nightly_run", subject=summary["at"], detail=summary)
    finally:
        ledger.dispose()
    return summary


def run_instant(logical_date: dt.datetime | None, run_after: dt.datetime | None) -> str:
    """The instant a DAG run stands for: its logical date, or when it was set to run."""
    return (logical_date or run_after or dt.datetime.now(dt.timezone.utc)).isoformat()


def current_instant() -> str:
    """``run_instant`` of the DAG run the calling task belongs to (call it inside a task)."""
    from airflow.sdk import get_current_context

    ctx = get_current_context()
    return run_instant(ctx.get("logical_date"), getattr(ctx.get("dag_run"), "run_after", None))
