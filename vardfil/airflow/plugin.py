"""Airflow plugin: the timetable of the close — 15:00 Europe/Stockholm on the third vardag.

Registered through the ``airflow.plugins`` entry point of the package, so every scheduler, worker
and ``airflow dags test`` that has vardfil installed knows it. It only adapts the region calendar
(``filespec.calendar``, which imports neither pandas nor polars) to Airflow's types: which instant
is a deadline is decided there, once.

Each run is an exact instant: the deadline of the period that just ended. The period a run closes
is the month before the month of its instant (``period_of_deadline``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.plugins_manager import AirflowPlugin
from airflow.timetables.base import DagRunInfo, DataInterval, Timetable
from pendulum import DateTime, instance

from filespec.calendar import Period, deadline_before_or_at, deadline_on_or_after

__all__ = [
    "ThirdVardagTimetable",
    "VardfilPlugin",
    "deadline_before_or_at",
    "deadline_on_or_after",
    "period_of_deadline",
]


def period_of_deadline(instant: dt.datetime) -> str:
    """The period a close at ``instant`` closes: the month before the instant's month."""
    return str(Period.of_window(instant))


def _pendulum(value: dt.datetime) -> DateTime:
    return instance(value.astimezone(dt.UTC))


class ThirdVardagTimetable(Timetable):
    """A run at 15:00 Europe/Stockholm on the third vardag of every month (DST-correct)."""

    description = "15:00 Europe/Stockholm on the third vardag of every month (the deadline)"

    @property
    def summary(self) -> str:
        return "third vardag 15:00 Europe/Stockholm"

    def infer_manual_data_interval(self, *, run_after: DateTime) -> DataInterval:
        """A manual run closes the period whose deadline passed most recently."""
        return DataInterval.exact(_pendulum(deadline_before_or_at(run_after)))

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: Any
    ) -> DagRunInfo | None:
        """The next deadline after the last run (or after the start, or now without catch-up)."""
        if last_automated_data_interval is not None:
            after = last_automated_data_interval.end + dt.timedelta(seconds=1)
        elif restriction.earliest is None:
            return None
        elif not restriction.catchup:
            after = max(restriction.earliest, dt.datetime.now(dt.UTC))
        else:
            after = restriction.earliest
        nxt = deadline_on_or_after(after)
        if restriction.latest is not None and nxt > restriction.latest:
            return None
        return DagRunInfo.exact(_pendulum(nxt))


class VardfilPlugin(AirflowPlugin):
    """Registers vardfil's timetable with Airflow."""

    name = "vardfil"
    timetables = [ThirdVardagTimetable]  # noqa: RUF012 - the AirflowPlugin API is a class attribute
