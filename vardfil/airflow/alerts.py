"""The callback of the DAGs' Deadline Alerts (Airflow 3): a missed deadline mails the operators.

``vardfil_close`` must be done 30 minutes after the period's deadline (its run's logical date is
the deadline itself, 15:00 on the third vardag), ``vardfil_nightly`` by 06:00 (its run is at
02:00). When a run is not done by then Airflow's triggerer awaits :func:`deadline_missed` with the
run's context; it writes one message per run and alert through the same mail module as everything
else (``vardfil.mail``: SMTP, or the outbox folder by default) to ``VARDFIL_OPERATOR_EMAIL``, else
to the analysts and admins. What the operator does then: ``docs/operations.md``, "Airflow's
deadline alerts". Prometheus' ``VardfilCloseOverdue`` and ``VardfilNightlyMissing`` say the same
from the ledger, so a scheduler that is down itself is noticed too.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from typing import Any

CLOSE_GRACE = dt.timedelta(minutes=30)
NIGHTLY_BY = dt.timedelta(hours=4)  # the run at 02:00 done by 06:00
# Off only for ``airflow dags test`` (``vardfil sample``, the DAG tests): Airflow 3.3.2's
# ``DAG.test()`` keeps a DAG's deadline alerts unserialised and fails every successful test run
# looking them up by id (``DagRun.update_state``). The scheduler's path is unaffected.
SWITCH = "VARDFIL_DEADLINE_ALERTS"


def alert(what: str) -> Any:
    """The Deadline Alert of a DAG (``close``: 30 minutes after its run's logical date, the
    deadline; ``nightly``: 4 hours after its 02:00 run), or None when ``VARDFIL_DEADLINE_ALERTS=0``."""
    if os.environ.get(SWITCH) == "0":
        return None
    from airflow.sdk.definitions.callback import AsyncCallback
    from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
        interval=CLOSE_GRACE if what == "close" else NIGHTLY_BY,
        callback=AsyncCallback(deadline_missed, kwargs={"what": what}),
        name="close-30-minutes-after-the-deadline" if what == "close" else "nightly-done-by-0600",
    )


async def deadline_missed(context: dict[str, Any] | None = None, **kwargs: Any) -> bool:
    """AsyncCallback of a Deadline Alert (run by the triggerer): the message, sent off the event
    loop (SMTP and the ledger block). True when a message was sent now."""
    return await asyncio.to_thread(notify, context or {}, str(kwargs.get("what", "")))


def notify(context: dict[str, Any], what: str) -> bool:
    """The message of one missed deadline (``what``: ``close`` or ``nightly``), once per run."""
    from vardfil.app import open_app
    from vardfil.mail import notify_deadline_missed

    run = context.get("dag_run") or {}
    deadline = (context.get("deadline") or {}).get("deadline_time")
    with open_app() as app:
        return notify_deadline_missed(
            app,
            what=what,
            dag_id=str(run.get("dag_id") or ""),
            run_id=str(run.get("dag_run_id") or run.get("run_id") or ""),
            logical_date=_instant(run.get("logical_date")),
            deadline=_instant(deadline),
            state=str(run.get("state") or ""),
        )


def _instant(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and value:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return None
