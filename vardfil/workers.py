"""The worker processes of the web front doors: heavy work off the event loop, in two lanes.

At 15:00 on the third vardag three hundred units deliver within the hour, and one of them sends
200 MB. Run inside the web server's event loop, that one validation (seconds of CPU) stamped a
file sent at 14:59:58 at 15:00:04. Here:

- the **small lane** (one process per core) validates and records files up to ``LARGE_BYTES``;
- the **large lane** (one process) takes larger files, closes and workbooks, so a large job queues
  behind the large lane, never in front of the small files;
- the event loop only waits: it stamps arrival, streams the body to disk and awaits the future.

Worker processes are started with ``spawn`` (the server has threads, and forking a threaded
process can copy a held lock), open the application once from the parent's settings, and import
pandera and polars before the first file arrives (``warm``). ``VARDFIL_POOL_WORKERS=0`` runs
every job in a thread of the server process instead (a development server on a laptop).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import threading
import time
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from filespec.calendar import Period
from vardfil.app import App, open_app
from vardfil.settings import Settings

P = ParamSpec("P")
R = TypeVar("R")
# Above this a file goes to the large lane: a 20 MB file validates in about a second here.
LARGE_BYTES = 20 * 1024 * 1024

_worker_app: App | None = None
# Set by ``vardfil serve``: the worker processes it spawns write JSON lines too.
JSON_LOGS_ENV = "VARDFIL_JSON_LOGS"
# How long a lane may take to answer ``warm`` before /readyz calls it not alive.
PROBE_SECONDS = 2.0


def _job(fn: Any, rid: str | None, queued_at: float, lane: str, *args: Any) -> Any:
    """In a worker: one job of request ``rid``, its wait for a worker counted."""
    from vardfil.logs import in_request
    from vardfil.metrics import WORKER_WAIT

    WORKER_WAIT.labels(lane).observe(max(0.0, time.time() - queued_at))
    with in_request(rid):
        return fn(*args)


def _init_worker(settings: Settings) -> None:
    global _worker_app
    if os.environ.get(JSON_LOGS_ENV):  # a worker of ``vardfil serve``: its lines as the server's
        from vardfil import logs

        logs.configure()
    # The parent opened (and migrated) the ledger already.
    _worker_app = open_app(settings, migrate=False)
    import validators.engine  # noqa: F401 - the imports cost ~1 s: pay them before the first file


def _app() -> App:
    assert _worker_app is not None, "called outside a worker process"
    return _worker_app


def submit_job(
    path: str,
    file_name: str,
    received_at: dt.datetime,
    source_kind: str,
    actor: str,
    units: frozenset[str] | None = None,
) -> dict[str, Any]:
    """In a worker: record one received file through the intake; the kvittens and receipt
    (``units``: what the sender acts for, ``vardfil.month.intake.submit``)."""
    from vardfil.month.intake import submit

    sub = submit(
        Path(path),
        file_name=file_name,
        received_at=received_at,
        app=_app(),
        source_kind=source_kind,
        actor=actor,
        units=units,
    )
    return {"kvittens": sub.kvittens, "receipt_id": sub.receipt_id, "new": sub.new}


def validate_job(path: str, file_name: str, received_at: dt.datetime) -> dict[str, Any]:
    """In a worker: judge a file and record nothing (the API's ``?test=true``); its kvittens."""
    from validators import validate_file

    result = validate_file(
        Path(path), file_name=file_name, received_at=received_at, reference=_app().reference, keep_accepted=False
    )
    kv: dict[str, Any] = result.kvittens.to_dict()
    return kv


def close_job(period: Period, at: dt.datetime, actor: str, despite_dispens: bool = False) -> None:
    """In a worker: close a period and publish it (the unit workbooks follow when asked for)."""
    from vardfil.month.close import close_period
    from vardfil.publish.workbooks import write_region_workbook

    close_period(period, at=at, app=_app(), actor=actor, despite_dispens=despite_dispens)
    write_region_workbook(period, app=_app())


def workbook_job(period: Period, unit_hsaid: str) -> str | None:
    """In a worker: a unit's workbook of a closed period, written if it is the first time."""
    from vardfil.publish.workbooks import unit_workbook_file

    app = _app()
    unit = app.reference.units.get(unit_hsaid)
    path = unit_workbook_file(app, period, unit) if unit else None
    return str(path) if path else None


def warm() -> bool:
    """A no-op that proves a worker is up (sent once per worker at start)."""
    return _worker_app is not None


class WorkerPool:
    """The two lanes; started on first use, shut down with the server."""

    def __init__(self, settings: Settings, *, workers: int | None = None):
        self.settings = settings
        self.workers = (os.cpu_count() or 1) if workers is None else workers
        self._lanes: dict[str, Executor] = {}
        self._probes: dict[str, Future[Any] | None] = {}
        self._lock = threading.Lock()

    def _lane(self, name: str) -> Executor:
        with self._lock:
            if name not in self._lanes:
                if self.workers == 0:
                    # In-process: the jobs open the application in the calling thread's process.
                    _init_worker(self.settings)
                    self._lanes[name] = ThreadPoolExecutor(max_workers=2 if name == "small" else 1)
                else:
                    n = self.workers if name == "small" else 1
                    self._lanes[name] = ProcessPoolExecutor(
                        max_workers=n,
                        mp_context=get_context("spawn"),
                        initializer=_init_worker,
                        initargs=(self.settings,),
                    )
            return self._lanes[name]

    def start(self) -> None:
        """Start both lanes' processes now (a server at its start, not at the first upload)."""
        for lane in ("small", "large"):
            executor = self._lane(lane)
            n = self.workers if lane == "small" and self.workers else 1
            for f in [executor.submit(warm) for _ in range(n)]:
                f.result()

    async def run(self, lane: str, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` in a lane and wait for it without holding the event loop (the
        request's id goes with it, and the lane's queue depth counts it until it is done)."""
        from vardfil.logs import request_id
        from vardfil.metrics import QUEUE_DEPTH

        depth = QUEUE_DEPTH.labels(lane)
        depth.inc()
        try:
            future: Future[Any] = self._submit(lane, _job, fn, request_id.get(), time.time(), lane, *args)
            return await asyncio.wrap_future(future)
        finally:
            depth.dec()

    def _submit(self, lane: str, fn: Any, *args: Any) -> Future[Any]:
        try:
            return self._lane(lane).submit(fn, *args)
        except BrokenProcessPool:
            # A worker died (killed, out of memory): the lane is started anew for the next job,
            # and this one is tried once on it.
            with self._lock:
                broken = self._lanes.pop(lane, None)
            if broken is not None:
                broken.shutdown(wait=False, cancel_futures=True)
            return self._lane(lane).submit(fn, *args)

    def alive(self) -> dict[str, dict[str, Any]]:
        """Per lane: whether it answers ``warm`` within ``PROBE_SECONDS``, and its processes' ids
        (an on-call engineer's first look). A probe still unanswered is waited on again, not
        queued behind itself."""
        report: dict[str, dict[str, Any]] = {}
        for lane in ("small", "large"):
            with self._lock:
                probe = self._probes.get(lane)
                if probe is None or probe.done():
                    try:
                        probe = self._lanes[lane].submit(warm) if lane in self._lanes else None
                    except (BrokenProcessPool, RuntimeError):
                        probe = None
                    self._probes[lane] = probe
            ok = False
            if probe is not None:
                try:
                    ok = bool(probe.result(timeout=PROBE_SECONDS))
                except (FutureTimeout, BrokenProcessPool, RuntimeError):
                    ok = False
            executor = self._lanes.get(lane)
            processes = getattr(executor, "_processes", None) or {}
            report[lane] = {"alive": ok, "pids": sorted(processes)}
        return report

    def lane_for(self, size: int) -> str:
        """The lane of a file of ``size`` bytes."""
        return "large" if size > LARGE_BYTES else "small"

    def shutdown(self) -> None:
        """Stop the lanes (waiting for the jobs in progress: a file being recorded is finished)."""
        with self._lock:
            for executor in self._lanes.values():
                executor.shutdown(wait=True, cancel_futures=False)
            self._lanes.clear()
