"""Prometheus metrics of the server and its worker processes, served at ``/metrics``.

One prefix (``vardfil_``), base units (seconds, bytes), ``_total`` counters and histograms for
durations. No label carries a person, a patient, a file name or a receipt id: the labels are
small fixed sets (source, file type, status, lane, route template, reason).

Two kinds, one page (``docs/operations.md``, "Metrics"):

- **Events** counted where they happen, in every server process (``vardfil serve --workers N``) and
  every worker process of their lanes. prometheus_client's multiprocess mode adds them up: each
  process writes its values to files under ``PROMETHEUS_MULTIPROC_DIR``, which ``vardfil serve``
  sets (and empties) before the first process imports prometheus_client; the spawned processes
  inherit it. Without it (a test's in-process server) they are this process's own.
- **State** read from the ledger and the store at each scrape (:class:`LedgerCollector`): files
  per status, periods per state, each recent period's close deadline and whether it is closed,
  the last close, the outbox, the nightly run, verify, the store's disk. The CLI's and the DAG
  tasks' runs push nothing: what they do is in the ledger, and shows here.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from vardfil.app import App

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# A kvittens is due within a second (the alert's threshold); the buckets are finest around it.
_LATENCY = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0, 60.0)
_WORK = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

FILES_RECEIVED = Counter(
    "vardfil_files_received",
    "Files received and judged (a byte-identical copy is no submission and not counted).",
    ["source", "file_type", "status", "on_time"],
)
KVITTENS_LATENCY = Histogram(
    "vardfil_kvittens_latency_seconds",
    "From a request's arrival stamp to its kvittens being ready (portal and API uploads).",
    ["source"],
    buckets=_LATENCY,
)
WORKER_WAIT = Histogram(
    "vardfil_worker_wait_seconds", "How long a job waited for a worker of its lane.", ["lane"], buckets=_LATENCY
)
QUEUE_DEPTH = Gauge(
    "vardfil_worker_queue_depth",
    "Jobs handed to a lane and not yet done (waiting or running), over every server process.",
    ["lane"],
    multiprocess_mode="livesum",
)
VALIDATION_DURATION = Histogram(
    "vardfil_validation_duration_seconds", "Judging and recording one file, by its size.", ["size_band"], buckets=_WORK
)
CLOSE_DURATION = Histogram(
    "vardfil_close_duration_seconds", "One close of a period, publishing included.", buckets=_WORK
)
CLOSES = Counter("vardfil_closes", "Closes run by the portal, by result (done, refused, failed).", ["result"])
CLOSE_LINES = Counter("vardfil_close_lines", "Underlag lines published by the portal's closes.")
MAILS = Counter("vardfil_mails", "Messages by what happened: queued, sent, failed, retried.", ["kind", "event"])
SIGNINS = Counter(
    "vardfil_signins",
    "Sign-ins by method (password, oidc) and result, a refusal by its reason.",
    ["method", "result", "reason"],
)
HTTP_REQUESTS = Counter(
    "vardfil_http_requests", "Requests answered, by route template, method and status.", ["route", "method", "status"]
)
HTTP_DURATION = Histogram(
    "vardfil_http_request_duration_seconds", "Time to answer a request, by route template.", ["route"], buckets=_LATENCY
)


def kvittens_ready(request: Any, source: str) -> None:
    """A kvittens is ready to be sent back: its latency from the request's arrival stamp."""
    arrived = getattr(request.state, "arrived", None)
    if arrived is not None:
        KVITTENS_LATENCY.labels(source).observe(max(0.0, time.perf_counter() - arrived))


def signed_in(method: str, reason: str | None = None) -> None:
    """Count a sign-in: succeeded (``reason`` None) or refused for ``reason`` (a fixed code)."""
    SIGNINS.labels(method, "refused" if reason else "succeeded", reason or "").inc()


def size_band(size: int) -> str:
    """A file's size as a label: the lanes' own boundary (20 MB) and the typical month file's."""
    if size <= 1024 * 1024:
        return "upto_1mb"
    return "upto_20mb" if size <= 20 * 1024 * 1024 else "over_20mb"


def multiprocess() -> bool:
    """Whether this process writes its values for a multiprocess scrape."""
    return bool(os.environ.get(MULTIPROC_ENV))


def process_gone(pid: int) -> None:
    """A server process ends: its live gauges (the queue depth) stop counting."""
    if multiprocess():
        from prometheus_client import multiprocess as mp

        mp.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def exposition(app: App, now: dt.datetime) -> bytes:
    """The text of one scrape: every process's events, then the ledger's and the store's state."""
    events = CollectorRegistry()
    if multiprocess():
        from prometheus_client import multiprocess as mp

        mp.MultiProcessCollector(events)  # type: ignore[no-untyped-call]
        text = generate_latest(events)
    else:
        from prometheus_client import REGISTRY

        text = generate_latest(REGISTRY)
    state = CollectorRegistry()
    state.register(LedgerCollector(app, now))
    return text + generate_latest(state)


# How many ended periods are watched for their close: the newest two (a close is a month's work,
# and a period that ended longer ago is either closed or long since an incident).
WATCHED_PERIODS = 2


class LedgerCollector(Collector):
    """The state gauges, read at scrape time (see the module docstring)."""

    def __init__(self, app: App, now: dt.datetime):
        self.app, self.now = app, now

    def collect(self) -> Iterator[Metric]:
        from filespec.calendar import Period
        from vardfil.delivery import close_due

        ledger, figures = self.app.ledger, self.app.ledger.figures
        files = GaugeMetricFamily(
            "vardfil_files", "Received files in the ledger, per kvittens status.", labels=["status"]
        )
        for status, n in sorted(figures.files_by_status().items()):
            files.add_metric([status], n)
        yield files
        periods = GaugeMetricFamily("vardfil_periods", "Periods per recorded state.", labels=["state"])
        for state, n in sorted(figures.periods_by_state().items()):
            periods.add_metric([state], n)
        yield periods

        current = Period.of_window(self.now)  # the period whose window lies in this month
        ended = [current.shift(-i) for i in range(WATCHED_PERIODS) if current.shift(-i).window.opens <= self.now]
        first = figures.first_period()
        watched = [p for p in ended if first is not None and str(p) >= first]
        closed = figures.closes([str(p) for p in watched])
        due = GaugeMetricFamily(
            "vardfil_period_close_due_timestamp_seconds",
            "When a recent period's close is due: its deadline, or the end of its last dispens.",
            labels=["period"],
        )
        is_closed = GaugeMetricFamily(
            "vardfil_period_closed", "Whether a recent period is closed (1) or not (0).", labels=["period"]
        )
        for p in watched:
            due.add_metric([str(p)], close_due(ledger, p).timestamp())
            is_closed.add_metric([str(p)], 1 if str(p) in closed else 0)
        yield due
        yield is_closed
        last = GaugeMetricFamily(
            "vardfil_close_last_success_timestamp_seconds", "When a recent period was last closed.", labels=["period"]
        )
        for name, at in sorted(closed.items()):
            last.add_metric([name], at.timestamp())
        yield last
        window = current.window.is_open(self.now, close_due(ledger, current))
        yield GaugeMetricFamily(
            "vardfil_window_open",
            "Whether a period's window is open (files are on time now).",
            value=1 if window else 0,
        )

        unsent, oldest = figures.unsent_mail()
        yield GaugeMetricFamily(
            "vardfil_mail_unsent", "Messages whose sending failed and is not yet retried.", value=unsent
        )
        yield GaugeMetricFamily(
            "vardfil_mail_oldest_unsent_age_seconds",
            "How long the oldest unsent message has waited (0: none waits).",
            value=(self.now - oldest).total_seconds() if oldest else 0,
        )
        for action, name, what in (
            ("nightly_run", "vardfil_nightly_last_run_timestamp_seconds", "When the nightly run last finished."),
            ("verify", "vardfil_verify_last_run_timestamp_seconds", "When vardfil verify last ran."),
        ):
            run = figures.last_run(action)
            if run is not None:
                yield GaugeMetricFamily(name, what, value=run[0].timestamp())
                if action == "verify":
                    yield GaugeMetricFamily(
                        "vardfil_verify_problems",
                        "Files missing or changed at the last vardfil verify.",
                        value=int(run[1].get("problems", 0)),
                    )
        root = self.app.store.root
        while not root.exists() and root != root.parent:  # a store not yet written to
            root = root.parent
        usage = shutil.disk_usage(root)
        yield GaugeMetricFamily("vardfil_store_free_bytes", "Free space where the store is.", value=usage.free)
        yield GaugeMetricFamily("vardfil_store_capacity_bytes", "The size of the store's disk.", value=usage.total)
