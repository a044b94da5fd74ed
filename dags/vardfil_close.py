"""vardfil_close: the close at the deadline itself — 15:00 Europe/Stockholm on the third vardag.

On the ``ThirdVardagTimetable`` (vardfil's Airflow plugin). First every file waiting in the inbox
is taken in (a file that landed at 14:59 counts: its arrival is its modification time), then the
period that just ended is closed as of the run's instant and every workbook is written: the unit
workbooks in batches of units (mapped tasks, spread over the workers), then the region workbook. The
closed period is announced on the ``vardfil://underlag`` Asset (extra: the period), so the
analysts' own DAGs can be scheduled on it. Safe to rerun: the close is recorded once.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Asset, dag, get_current_context, task

# The one import from outside airflow.sdk: Airflow needs the timetable as an instance. It loads
# only the calendar (validators.window), never pandas or polars.
from vardfil.airflow_plugin import ThirdVardagTimetable

UNDERLAG = Asset("vardfil://underlag", extra={"what": "ersättningsunderlag of a closed period"})


@dag(
    dag_id="vardfil_close",
    schedule=ThirdVardagTimetable(),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["vardfil"],
    doc_md=__doc__,
)
def vardfil_close():
    @task
    def list_new_files() -> list[str]:
        from vardfil.tasks import new_inbox_files

        return new_inbox_files()

    @task(retries=2, retry_delay=dt.timedelta(minutes=1))
    def intake(path: str) -> dict:
        from vardfil.tasks import intake_one

        return intake_one(path)

    @task(trigger_rule="none_failed", outlets=[UNDERLAG])
    def close(intakes: list[dict]) -> dict:
        from vardfil.airflow_plugin import period_of_deadline
        from vardfil.tasks import close_one, current_instant

        now = current_instant()
        period = period_of_deadline(dt.datetime.fromisoformat(now))
        summary = close_one(period, now)
        get_current_context()["outlet_events"][UNDERLAG].extra = {"period": period}
        return summary

    @task
    def workbook_batches(closed: dict) -> list[dict]:
        from vardfil.tasks import workbook_batches as batches

        return batches([closed])

    @task
    def unit_workbooks(batch: dict) -> list[str]:
        from vardfil.tasks import write_workbooks

        return write_workbooks(batch["period"], units=batch["units"], region=False)

    @task
    def workbooks(closed: dict, unit_books: list[list[str]]) -> list[str]:
        from vardfil.tasks import write_workbooks

        return [p for books in unit_books for p in books] + write_workbooks(closed["period"], units=[])

    closed = close(intake.expand(path=list_new_files()))
    workbooks(closed, unit_workbooks.expand(batch=workbook_batches(closed)))


vardfil_close()
