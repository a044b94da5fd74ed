"""vardfil_close: the close at the deadline itself — 15:00 Europe/Stockholm on the third vardag.

On the ``ThirdVardagTimetable`` (vardfil's Airflow plugin). First every file waiting in the inbox
is taken in (a file that landed at 14:59 counts: its arrival is its modification time), then the
period that just ended is closed as of the run's instant and the region workbook is written (a
unit's workbook is written when the unit first downloads it). The closed period is announced on the ``vardfil://underlag`` Asset (extra: the period), so the
analysts' own DAGs can be scheduled on it. Safe to rerun: the close is recorded once.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Asset, dag, get_current_context, task

# The imports from outside airflow.sdk: Airflow needs the timetable as an instance (it loads only
# the calendar, filespec.calendar), and the task groups both DAGs share; neither loads pandas or
# polars.
from vardfil.airflow.dag_parts import RETRIES, RETRY_DELAY, inbox_intake, publish_workbooks
from vardfil.airflow.plugin import ThirdVardagTimetable

UNDERLAG = Asset("vardfil://underlag", extra={"what": "ersättningsunderlag of a closed period"})


@dag(
    dag_id="vardfil_close",
    schedule=ThirdVardagTimetable(),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    tags=["vardfil"],
    doc_md=__doc__,
)
def vardfil_close():
    @task(trigger_rule="none_failed", outlets=[UNDERLAG], retries=RETRIES, retry_delay=RETRY_DELAY)
    def close(intakes: list[list[dict]]) -> dict:
        from vardfil.airflow.plugin import period_of_deadline
        from vardfil.airflow.tasks import close_one, current_instant

        now = current_instant()
        period = period_of_deadline(dt.datetime.fromisoformat(now))
        summary = close_one(period, now)
        get_current_context()["outlet_events"][UNDERLAG].extra = {"period": period}
        return summary

    publish_workbooks(close(inbox_intake()), many=False)


vardfil_close()
