"""vardfil_nightly: every night, take in what arrived, close what is due, remind who is missing.

intake (one mapped task per inbox file) → the period whose deadline passed, if not closed → close
→ unit workbooks in batches (mapped) → region workbook; reminders while a window is open; a run summary. Every task is idempotent: a rerun or
backfill finds files already taken and periods already closed. Wiring only: each task calls one
``vardfil.tasks`` function (imported inside the task, so parsing this file stays light).
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Asset, dag, get_current_context, task

UNDERLAG = Asset("vardfil://underlag", extra={"what": "ersättningsunderlag of a closed period"})


@dag(
    dag_id="vardfil_nightly",
    schedule="0 2 * * *",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1))),
    catchup=False,
    max_active_runs=1,
    tags=["vardfil"],
    doc_md=__doc__,
)
def vardfil_nightly():
    @task
    def list_new_files() -> list[str]:
        from vardfil.tasks import new_inbox_files

        return new_inbox_files()

    @task(retries=2, retry_delay=dt.timedelta(minutes=1))
    def intake(path: str) -> dict:
        from vardfil.tasks import intake_one

        return intake_one(path)

    @task(trigger_rule="none_failed")
    def due_periods(intakes: list[dict]) -> list[str]:
        from vardfil.tasks import current_instant, due_periods as due

        return due(current_instant())

    @task(outlets=[UNDERLAG])
    def close(period: str) -> dict:
        from vardfil.tasks import close_one

        summary = close_one(period)  # as of the period's deadline: the same close as at 15:00
        get_current_context()["outlet_events"][UNDERLAG].extra = {"period": period}
        return summary

    @task(trigger_rule="none_failed")
    def workbook_batches(closes: list[dict]) -> list[dict]:
        from vardfil.tasks import workbook_batches as batches

        return batches(list(closes or []))

    @task
    def unit_workbooks(batch: dict) -> list[str]:
        from vardfil.tasks import write_workbooks

        return write_workbooks(batch["period"], units=batch["units"], region=False)

    @task(trigger_rule="none_failed")
    def workbooks(closes: list[dict], unit_books: list[list[str]]) -> list[str]:
        from vardfil.tasks import write_workbooks

        region = [p for c in (closes or []) for p in write_workbooks(c["period"], units=[])]
        return [p for books in (unit_books or []) for p in books] + region

    @task(trigger_rule="none_failed")
    def reminders(intakes: list[dict]) -> list[dict]:
        from vardfil.tasks import current_instant, reminders as due_reminders

        return due_reminders(current_instant())

    @task(trigger_rule="none_failed")
    def summary(intakes: list[dict], closes: list[dict], due: list[dict], books: list[str]) -> dict:
        from vardfil.tasks import current_instant, summarise

        return summarise(current_instant(), list(intakes or []), list(closes or []), list(due or []))

    taken = intake.expand(path=list_new_files())
    closes = close.expand(period=due_periods(taken))
    books = workbooks(closes, unit_workbooks.expand(batch=workbook_batches(closes)))
    summary(taken, closes, reminders(taken), books)


vardfil_nightly()
