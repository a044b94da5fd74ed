"""vardfil_nightly: every night, take in what arrived, close what is due, remind who is missing.

intake (one mapped task per batch of inbox files) → the period whose deadline passed, if not closed → close
→ the region workbook (a unit's when it is first downloaded); reminders while a window is open; the catalogue sync
(KIV/HSA: who still works where, when ``VARDFIL_DIRECTORY_URL`` is set); a run summary; ``vardfil
verify`` of every kept file; the payment basis of a finalised period. A Deadline Alert mails the operators when the run is not done by 06:00. Every task is idempotent: a rerun or
backfill finds files already taken and periods already closed. Wiring only: each task calls one
``vardfil.airflow.tasks`` function (imported inside the task, so parsing this file stays light).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Asset, dag, get_current_context, task

from vardfil.airflow.alerts import alert as deadline_alert
from vardfil.airflow.dag_parts import RETRIES, RETRY_DELAY, inbox_intake, intake_results, publish_workbooks

UNDERLAG = Asset("vardfil://underlag", extra={"what": "ersättningsunderlag of a closed period"})


@dag(
    dag_id="vardfil_nightly",
    schedule="0 2 * * *",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1))),
    catchup=False,
    max_active_runs=1,
    tags=["vardfil"],
    doc_md=__doc__,
    # The run at 02:00 done by 06:00, or the operators are mailed (vardfil.airflow.alerts).
    deadline=deadline_alert("nightly"),
)
def vardfil_nightly():
    @task(trigger_rule="none_failed", retries=RETRIES, retry_delay=RETRY_DELAY)
    def due_periods(intakes: list[list[dict]]) -> list[str]:
        from vardfil.airflow.tasks import current_instant
        from vardfil.airflow.tasks import due_periods as due

        return due(current_instant())

    @task(outlets=[UNDERLAG], retries=RETRIES, retry_delay=RETRY_DELAY)
    def close(period: str) -> dict:
        from vardfil.airflow.tasks import close_one

        summary = close_one(period)  # as of the period's deadline: the same close as at 15:00
        get_current_context()["outlet_events"][UNDERLAG].extra = {"period": period}
        return summary

    @task(trigger_rule="none_failed", retries=RETRIES, retry_delay=RETRY_DELAY)
    def reminders(intakes: list[list[dict]]) -> list[dict]:
        from vardfil.airflow.tasks import current_instant
        from vardfil.airflow.tasks import reminders as due_reminders

        return due_reminders(current_instant())

    @task(retries=RETRIES, retry_delay=RETRY_DELAY)
    def directory_sync() -> dict:
        from vardfil.airflow.tasks import directory_sync as sync

        return sync()

    # The payment basis of a period the analysts finalised (once; UTBETALNING.md).
    @task(retries=RETRIES, retry_delay=RETRY_DELAY)
    def payments() -> list:
        from vardfil.airflow.tasks import payments_due

        return payments_due()

    # Every kept file re-hashed against the ledger; problems fail the task (and show in /metrics).
    @task(retries=RETRIES, retry_delay=RETRY_DELAY)
    def verify() -> dict:
        from vardfil.airflow.tasks import verify_store

        return verify_store()

    @task(trigger_rule="none_failed", retries=RETRIES, retry_delay=RETRY_DELAY)
    def summary(
        intakes: list[list[dict]], closes: list[dict], due: list[dict], books: list[str], catalogue: dict
    ) -> dict:
        from vardfil.airflow.tasks import current_instant, summarise

        return summarise(current_instant(), intake_results(intakes), list(closes or []), list(due or []))

    taken = inbox_intake()
    closes = close.expand(period=due_periods(taken))
    books = publish_workbooks(closes, many=True)
    summary(taken, closes, reminders(taken), books, directory_sync())
    verify()
    payments()


vardfil_nightly()
