"""The functions Airflow tasks call: one each, small JSON-able results, safe to rerun.

Each opens the application from the environment's settings (``vardfil.app.open_app``) and closes
it again: a task is one process's unit of work, and a worker may run tasks of other DAGs between
ours. "Now" is always the DAG run's instant, passed in, never the wall clock, so reruns and
backfills decide the same way.

Retries: an exception marked retryable (``vardfil.errors.Transient``: a busy database, an
unreachable store, a history that moved) is raised as it is, and Airflow retries the task; any
other exception is a fault a retry cannot mend (bad reference data, a bug), and is raised as
``AirflowFailException`` so the task fails at once instead of failing three times.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, ParamSpec, TypeVar

from filespec.calendar import Period, deadline_before_or_at, parse_instant
from vardfil.actors import Actor, job
from vardfil.app import App, open_app
from vardfil.errors import VardfilError
from vardfil.mail import mail_pending, send_reminders

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")


def retry_only_transient(fn: Callable[P, R]) -> Callable[P, R]:
    """Let Airflow retry a task only for a retryable :class:`VardfilError`."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except VardfilError as e:
            if e.retryable:
                raise
            fail(e)
        except Exception as e:  # noqa: BLE001 - a bug is no more mendable by a retry than bad data
            fail(e)

    return run


def fail(e: Exception) -> NoReturn:
    """Fail the running task without its retries (outside Airflow: raise ``e`` as it is)."""
    try:
        from airflow.sdk.exceptions import AirflowFailException
    except ImportError:  # called outside Airflow (tests, scripts)
        raise e from None
    raise AirflowFailException(f"{type(e).__name__}: {e}") from e


@contextmanager
def _app() -> Iterator[App]:
    app = open_app()
    try:
        yield app
    finally:
        app.close()


@retry_only_transient
def new_inbox_batches() -> list[list[str]]:
    """Paths of the files waiting in the inbox, oldest first, in batches of ``VARDFIL_INTAKE_BATCH``
    (default 10): one mapped intake task a batch.

    A task is a process of its own: a fresh one spent ~1.7 s importing the libraries and opening
    the application before its first file, and then ~0.06 s a month file (benchmarks/RESULTS.md).
    One task a file spent thirty times the work on starting; a batch starts once, and 300 files
    still make 30 tasks for the workers to share in a burst.
    """
    from vardfil.month.intake import waiting_files

    with _app() as app:
        paths = [str(p) for p in waiting_files(app.settings.inbox)]
        size = app.settings.intake_batch
    return [paths[i : i + size] for i in range(0, len(paths), size)]


@retry_only_transient
def intake_batch(paths: list[str]) -> list[dict[str, Any]]:
    """Take in each file of a batch in turn, in one process (its arrival is its modification time;
    a file gone already is skipped).

    A file that fails does not stop the others: each is recorded on its own. The task then fails
    with the failure: a retryable one if any (the retry finds the files taken meanwhile gone, and
    takes the rest), else the first, at once (``retry_only_transient``).
    """
    from vardfil.month.intake import arrival_time, submit

    results: list[dict[str, Any]] = []
    failures: list[Exception] = []
    with _app() as app:
        for path in paths:
            p = Path(path)
            # The inbox file is removed only after its record commits, so a missing file was taken
            # by an earlier try of this task: the ledger has it, and there is nothing to do.
            if not p.exists():
                results.append({"name": p.name, "skipped": True})
                continue
            try:
                sub = submit(p, file_name=p.name, received_at=arrival_time(p), app=app, source_kind="dag", actor=_job())
            except Exception as e:  # noqa: BLE001 - the rest of the batch is still taken in
                # The file name (unit, period) and the kind of fault; never the file's contents.
                from validators.identifiers import mask_text  # polars: not at the scheduler's import

                log.warning("intake of %s failed: %s", mask_text(p.name), type(e).__name__)
                failures.append(e)
                continue
            p.unlink()
            kv = sub.kvittens
            results.append(
                {
                    "name": p.name,
                    "receipt_id": kv["receipt_id"],
                    "status": kv["status"],
                    "on_time": kv["on_time"],
                    "new": sub.new,
                }
            )
    if failures:
        retryable = [e for e in failures if isinstance(e, VardfilError) and e.retryable]
        raise (retryable or failures)[0]
    return results


@retry_only_transient
def due_periods(now: str) -> list[str]:
    """The period whose deadline passed most recently, if it is not closed yet.

    Older periods that were never closed are not closed by the nightly run: closing them is an
    analyst's decision (``vardfil close`` or a manual run of ``vardfil_close``).
    """
    from vardfil.delivery import open_dispens

    at = parse_instant(now)
    period = Period.of_window(deadline_before_or_at(at))
    with _app() as app:
        if app.ledger.closes.period_closed(period):
            return []
        # A unit promised more time is waited for: the period is due once its last dispens ends.
        return [] if open_dispens(app.ledger, period, at) else [str(period)]


@retry_only_transient
def dispens_wait(period: str, now: str | None = None) -> dict[str, Any]:
    """Whether the period's last dispens has ended (``done``), and the instant its close is as of:
    the deadline, or the end of the last dispens when one runs past it (``at``)."""
    from vardfil.delivery import close_due, last_dispens_end

    p = Period.parse(period)
    real = parse_instant(now) if now else dt.datetime.now(dt.UTC)
    with _app() as app:
        last = last_dispens_end(app.ledger, p)
        at = close_due(app.ledger, p)
    return {"done": real >= at, "at": at.isoformat(), "last_dispens": last.isoformat() if last else None}


@retry_only_transient
def close_one(period: str, at: str | None = None) -> dict[str, Any]:
    """Close a period as of an instant (default: its deadline); the summary without the unit list.

    The nightly run closes a period it finds due as of the deadline, not as of its own run time:
    the result is then the one the close at 15:00 would have given, whenever the fallback ran. A
    close never falls inside a unit's open dispens: it is as of the end of the period's last
    dispens when that is later (the DAGs wait for it first, ``dispens_wait``).
    """
    from vardfil.delivery import last_dispens_end
    from vardfil.month.close import close_period

    p = Period.parse(period)
    with _app() as app:
        instant = parse_instant(at) if at else p.deadline
        last = last_dispens_end(app.ledger, p)
        if last is not None and last > instant:
            instant = last
        summary = close_period(p, at=instant, app=app, actor=_job())
    return {
        k: summary[k]
        for k in (
            "period",
            "closed_at",
            "underlag_parquet",
            "besok_parquet",
            "acg_parquet",
            "total",
            "missing_units",
            "rattelse",
            "snapshot_sha256",
        )
    }


@retry_only_transient
def write_region_workbook(period: str) -> str:
    """(Re)write the region workbook of a closed period; its path. A unit's workbook is written
    when the unit first downloads it."""
    from vardfil.publish.workbooks import write_region_workbook as write

    with _app() as app:
        return str(write(Period.parse(period), app=app))


@retry_only_transient
def reminders(now: str) -> list[dict[str, Any]]:
    """While a window is open: the active units with no usable file yet for its period."""
    from vardfil.delivery import period_status

    at = parse_instant(now)
    period = Period.of_window(at)
    with _app() as app:
        # Every night: the kvittenser of the last week whose mail failed (this is their retry).
        mail_pending(app, since=at - dt.timedelta(days=7))
        if not period.window.is_open(at):
            return []
        status = period_status(app.ledger, app.reference, period, as_of=at)
        due = [
            {
                "unit_hsaid": u.unit.hsaid,
                "file_type": u.unit.filtyp,
                "period": str(period),
                "deadline": period.deadline.isoformat(),
            }
            for u in status.missing()
        ]
        if due:
            app.ledger.add_audit(
                actor=_job(),
                action="reminders_due",
                subject=str(period),
                detail={"units": [d["unit_hsaid"] for d in due], "at": at.isoformat()},
            )
        # Reminders by mail on the window's first three vardagar (each once per unit and day).
        send_reminders(app, at)
        return due


@retry_only_transient
def summarise(
    now: str, intakes: list[dict[str, Any]], closes: list[dict[str, Any]], due: list[dict[str, Any]]
) -> dict[str, Any]:
    """The run summary: what was taken in, closed and reminded (also written to the audit log)."""
    summary: dict[str, Any] = {
        "at": parse_instant(now).isoformat(),
        "files": len([i for i in intakes if not i.get("skipped")]),
        "rejected": len([i for i in intakes if i.get("status") == "AVVISAD"]),
        "late": len([i for i in intakes if i.get("on_time") is False]),
        "closed": [c["period"] for c in closes],
        "reminders": len(due),
    }
    with _app() as app:
        app.ledger.add_audit(actor=_job(), action="nightly_run", subject=summary["at"], detail=summary)
    return summary


@retry_only_transient
def directory_sync() -> dict[str, Any]:
    """The catalogue sync (``vardfil.directory``), when a catalogue is configured: a short report.

    A catalogue that cannot be read is a passing fault (retried, nothing changed); a sync that
    would take away too many rights at once fails the task for a person to look at (it is not
    retried: ``vardfil directory sync --confirm`` after checking)."""
    from vardfil.directory import run, settings_of

    with _app() as app:
        if settings_of(app) is None:
            return {"skipped": "VARDFIL_DIRECTORY_URL is not set"}
        report = run(app, actor=_job())
    return {
        k: report[k] if not isinstance(report[k], list) else len(report[k])
        for k in ("at", "removals", "suspend", "restore", "emails", "unit_deviations")
    }


@retry_only_transient
def payments_due() -> list[dict[str, Any]]:
    """The payment basis of every finalised period that has none yet (``vardfil payment``): made
    once, the night after the analysts finalised it. A refusal (a provider row missing or wrong)
    fails the task with the units named, for a person to correct ``vardgivare.csv``."""
    from vardfil.publish.payment import make_payment, payment_folder

    made = []
    with _app() as app:
        for period in app.ledger.closes.closed_periods():
            state = app.ledger.closes.period_state(period)
            listed = payment_folder(app, period) / f"utbetalning_{period.compact}.csv"
            if state is not None and state.state == "FINALISED" and not listed.is_file():
                paid = make_payment(app, period)
                made.append(
                    {"period": str(period), "documents": len(paid["documents"]), "total": paid["list"]["total"]}
                )
    return made


@retry_only_transient
def verify_store() -> dict[str, Any]:
    """``vardfil verify``: the counts checked; a missing or changed file fails the task (named in
    the error and the audit log; ``vardfil_verify_problems`` on /metrics)."""
    from vardfil.errors import Refused
    from vardfil.verify import verify

    with _app() as app:
        report = verify(app, actor=_job())
    if not report["ok"]:
        named = "; ".join(f"{p['state']} {p['kind']} {p['path']}" for p in report["problems"][:20])
        raise Refused(f"vardfil verify: {len(report['problems'])} files missing or changed: {named}")
    return {"checked": report["checked"], "problems": 0}


def _job() -> Actor:
    """Who acts in a task: ``job:dag:<dag id>`` inside an Airflow task, else ``job:airflow``."""
    try:
        from airflow.sdk import get_current_context

        dag = get_current_context().get("dag")
        if dag is not None:
            return job(f"dag:{dag.dag_id}")
    except Exception:  # noqa: BLE001 - outside a running task (the tests call tasks directly)
        pass
    return job("airflow")


def run_instant(logical_date: dt.datetime | None, run_after: dt.datetime | None) -> str:
    """The instant a DAG run stands for: its logical date, or when it was set to run."""
    return (logical_date or run_after or dt.datetime.now(dt.UTC)).isoformat()


def current_instant() -> str:
    """``run_instant`` of the DAG run the calling task belongs to (call it inside a task)."""
    from airflow.sdk import get_current_context

    ctx = get_current_context()
    return run_instant(ctx.get("logical_date"), getattr(ctx.get("dag_run"), "run_after", None))
