"""vardfil_close: the close at the deadline itself — 15:00 Europe/Stockholm on the third vardag.

On the ``ThirdVardagTimetable`` (vardfil's Airflow plugin); a Deadline Alert mails the operators
when the run is not done 30 minutes after the deadline. First every file waiting in the inbox
is taken in (a file that landed at 14:59 counts: its arrival is its modification time), then the
period that just ended is closed as of the run's instant and the region workbook is written (a
unit's workbook is written when the unit first downloads it). The closed period is announced on the ``vardfil://underlag`` Asset (extra: the period), so the
analysts' own DAGs can be scheduled on it. Safe to rerun: the close is recorded once.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import Asset, PokeReturnValue, dag, get_current_context, task

# The imports from outside airflow.sdk: Airflow needs the timetable as an instance (it loads only
# the calendar, filespec.calendar), and the task groups both DAGs share; neither loads pandas or
# polars.
from vardfil.airflow.alerts import alert as deadline_alert
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
    # The run's logical date is the deadline: not done half an hour later, the operators are
    # mailed (vardfil.airflow.alerts; Prometheus' VardfilCloseOverdue says the same from the ledger).
    deadline=deadline_alert("close"),
)
def vardfil_close():
    # A unit granted a dispens is waited for: the close runs when the period's last dispens has
    # ended (checked every ten minutes, the worker slot given back between checks), as of its end.
    @task.sensor(poke_interval=600, timeout=14 * 24 * 3600, mode="reschedule", trigger_rule="none_failed")
    def wait_for_dispens(intakes: list[list[dict]]) -> PokeReturnValue:
        from vardfil.airflow.plugin import period_of_deadline
        from vardfil.airflow.tasks import current_instant, dispens_wait

        period = period_of_deadline(dt.datetime.fromisoformat(current_instant()))
        state = dispens_wait(period)
        return PokeReturnValue(is_done=state["done"], xcom_value={"period": period, "at": state["at"]})

    @task(trigger_rule="none_failed", outlets=[UNDERLAG], retries=RETRIES, retry_delay=RETRY_DELAY)
    def close(due: dict) -> dict:
        from vardfil.airflow.tasks import close_one, current_instant

        # As of the run's instant (the deadline), or the end of the period's last dispens.
        at = max(dt.datetime.fromisoformat(current_instant()), dt.datetime.fromisoformat(due["at"]))
        summary = close_one(due["period"], at.isoformat())
        get_current_context()["outlet_events"][UNDERLAG].extra = {"period": due["period"]}
        return summary

    publish_workbooks(close(wait_for_dispens(inbox_intake())), many=False)


vardfil_close()
