"""Task groups both DAGs share, defined once. Imported at the top of the DAG files, so it imports
only ``airflow.sdk``; each task body imports its ``vardfil.airflow.tasks`` function when it runs.

Retries: the task functions re-raise only retryable faults (``retry_only_transient``), so a retry
count here is spent only on a busy database or an unreachable store, never on a bug.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import task

RETRIES = 2
RETRY_DELAY = dt.timedelta(minutes=1)


def inbox_intake() -> Any:
    """``list_new_files`` → ``intake`` mapped over batches of them; the intake results (an XComArg:
    a list of each batch's results, see :func:`intake_results`)."""

    @task(retries=RETRIES, retry_delay=RETRY_DELAY)
    def list_new_files() -> list[list[str]]:
        from vardfil.airflow.tasks import new_inbox_batches

        return new_inbox_batches()

    @task(retries=RETRIES, retry_delay=RETRY_DELAY)
    def intake(paths: list[str]) -> list[dict[str, Any]]:
        from vardfil.airflow.tasks import intake_batch

        return intake_batch(paths)

    return intake.expand(paths=list_new_files())


def intake_results(batches: Any) -> list[dict[str, Any]]:
    """The mapped intake's results, one per file, from its per-batch lists (none when skipped)."""
    return [result for batch in (batches or []) for result in (batch or [])]


def publish_workbooks(closes: Any, *, many: bool) -> Any:
    """``workbooks``: the region workbook of each close. ``closes``: one close summary, or with
    ``many`` a list of them (the nightly run closes zero or one period). A unit's workbook is
    written when the unit first downloads it (``vardfil.publish.workbooks.unit_workbook_file``):
    the close has published its underlag already, and most of the 300 workbooks a month (40
    CPU-seconds) would otherwise be written before anyone asks for them."""

    @task(trigger_rule="none_failed", retries=RETRIES, retry_delay=RETRY_DELAY)
    def workbooks(closed: Any) -> list[str]:
        from vardfil.airflow.tasks import write_region_workbook

        periods = [c["period"] for c in (closed or [])] if many else [closed["period"]]
        return [write_region_workbook(period) for period in periods]

    return workbooks(closes)
