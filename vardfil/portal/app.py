"""The web server: the portal (units upload and read their kvittens; analysts run the month) and
the journal systems' API under ``/api/v1``, on one port.

Server-rendered (FastAPI + Jinja2, no front-end build), a thin front door: each handler checks who
is asking, calls one application function (``vardfil.month``, ``vardfil.publish``) and renders its
answer. Routers per audience: ``signin``, ``unit``, ``analyst``; the shared access rules are in
``access``.

The event loop only waits (the 15:00 burst, ``vardfil.workers``): every request is stamped when it
arrives (``received_at``), bodies are streamed to disk under a limit enforced while they are read,
page handlers run in the thread pool, and validation, closes and workbooks in worker processes.

Security: sessions are server-side (only a hash of the token is stored), the cookie is
``HttpOnly`` and ``SameSite=Strict`` (``Secure`` behind TLS: ``VARDFIL_SECURE_COOKIES=1``); every
form carries the session's CSRF token and every POST checks it; a unit user is bound to its
HSA-ids and every route that names a unit or a file checks it (``access.unit_of``/``file_of``);
upload names are only ever text (files are stored under their hash); every response carries a
strict Content-Security-Policy, ``nosniff``, ``DENY`` framing, no referrer and ``no-store``. The
region's IdP signs people in with SITHS (``oidc``, ``docs/identity.md``).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from filespec import max_file_bytes
from vardfil.accounts import User
from vardfil.api import create_api
from vardfil.app import App, make_clock, open_app
from vardfil.metrics import exposition, process_gone
from vardfil.portal import analyst, logg, oidc, rules, signin, unit, unit_admin
from vardfil.portal.access import current_user, page
from vardfil.web.body import BadUpload
from vardfil.web.middleware import ArrivalStamp, BodyLimit, PeerStamp, RequestLog, SecurityHeaders
from vardfil.workers import WorkerPool

STATIC = Path(__file__).parent / "static"
# The two routes that take a file; every other body is a small form.
UPLOAD_PATHS = re.compile(r"^/(enhet/[^/]+/upload|api/v1/filer)$")


def create_app(vardfil_app: App | None = None) -> FastAPI:
    """The server on an application (default: opened from the process's settings)."""
    core = vardfil_app or open_app()
    logging.captureWarnings(True)  # a library's warning is a log line too (JSON under ``vardfil serve``)
    core.ledger  # noqa: B018 - open and migrate the ledger at start, not on the first request
    pool = WorkerPool(core.settings, workers=core.settings.pool_workers)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        pool.start()  # the workers import pandera and polars now, not when the first file waits
        yield
        pool.shutdown()
        process_gone(os.getpid())  # this process's share of the live gauges ends with it

    web = FastAPI(title="vardfil", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    web.state.vardfil = core
    web.state.pool = pool
    web.state.clock = clock = make_clock(core.settings.clock_file)
    _middleware(web, core, clock)
    _error_pages(web)
    _operations(web, core, pool, clock)
    for router in (
        signin.router,
        oidc.router,
        unit.router,
        unit_admin.router,
        analyst.router,
        rules.router,
        logg.router,
    ):
        web.include_router(router)
    web.mount("/api/v1", create_api(core, pool))
    web.mount("/static", StaticFiles(directory=STATIC), name="static")
    return web


def _middleware(web: FastAPI, core: App, clock: Callable[[], dt.datetime]) -> None:
    """The layers every request passes through."""
    # Added innermost first: a request meets ArrivalStamp, then SecurityHeaders, then BodyLimit.
    web.add_middleware(
        BodyLimit,
        upload_limit=max_file_bytes() + 64 * 1024,
        is_upload=lambda path: UPLOAD_PATHS.match(path) is not None,
    )
    web.add_middleware(
        SecurityHeaders, hsts=core.settings.secure_cookies, form_targets=_origins(core.settings.oidc_issuer)
    )
    web.add_middleware(ArrivalStamp, clock=clock)
    # The client's address (the sign-in throttle's per-address key) from X-Forwarded-For only when
    # the peer is one of the operator's proxies; uvicorn's own handling (which trusts loopback) is
    # off in ``vardfil serve``. Outermost, so every layer sees the same client.
    if core.settings.trusted_proxies:
        web.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(core.settings.trusted_proxies))
    web.add_middleware(PeerStamp)  # the peer as it connected
    # Outermost: every answer, a 413 from BodyLimit too, has its request id and its access line.
    web.add_middleware(RequestLog)


def _error_pages(web: FastAPI) -> None:
    """Refusals as the portal's Swedish error page (never a traceback)."""

    @web.exception_handler(StarletteHTTPException)
    async def _errors(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 303 and exc.headers:
            return RedirectResponse(exc.headers["Location"], status_code=303)
        user = await _user_or_none(request)
        resp = page(request, "error.html", user, status=exc.status_code, message=_message(exc))
        resp.status_code = exc.status_code
        return resp

    @web.exception_handler(BadUpload)
    async def _bad_upload(request: Request, exc: BadUpload) -> Response:
        resp = page(request, "error.html", await _user_or_none(request), status=400, message=str(exc))
        resp.status_code = 400
        return resp


def _operations(web: FastAPI, core: App, pool: WorkerPool, clock: Callable[[], dt.datetime]) -> None:
    """What the platform asks: liveness, readiness, the metrics scrape."""

    @web.get("/healthz")
    async def healthz() -> dict[str, bool]:
        """Liveness: the process answers (nothing else is asked: a liveness probe that fails on
        a busy database would restart every pod at once)."""
        return {"ok": True}

    @web.get("/readyz")
    async def readyz() -> Response:
        """Readiness (``docs/operations.md``): 503 unless the ledger answers at its newest schema,
        the store takes a write and both worker lanes answer; the mail queue is reported."""
        checks = await run_in_threadpool(readiness, core, pool, clock())
        ready = all(c["ok"] for name, c in checks.items() if name != "mail")
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    @web.get("/metrics")
    async def metrics() -> Response:
        """Prometheus' scrape (``vardfil.metrics``): no personal data in any name or label."""
        body = await run_in_threadpool(exposition, core, clock())
        return Response(body, media_type=CONTENT_TYPE_LATEST)


def _origins(url: str | None) -> tuple[str, ...]:
    if not url:
        return ()
    u = urlparse(url)
    return (f"{u.scheme}://{u.netloc}",)


def readiness(core: App, pool: WorkerPool, now: dt.datetime) -> dict[str, dict[str, Any]]:
    """The checks of ``/readyz``, each ``{"ok": bool, ...}``."""
    try:
        at_head = core.ledger.schema_at_head()
        ledger: dict[str, Any] = {"ok": at_head, **({} if at_head else {"detail": "schema not at head"})}
    except Exception as e:  # noqa: BLE001 - any failure to answer is "not ready", named by its type
        ledger = {"ok": False, "detail": type(e).__name__}
    lanes = pool.alive()
    checks: dict[str, dict[str, Any]] = {
        "ledger": ledger,
        "store": {"ok": core.store.writable()},
        "lanes": {"ok": all(lane["alive"] for lane in lanes.values()), **lanes},
    }
    if ledger["ok"]:
        unsent, oldest = core.ledger.figures.unsent_mail()
        waited = (now - oldest).total_seconds() if oldest else 0.0
        # Reported, not a reason to take the portal out of service: units must still be able to
        # deliver while mail is down (the VardfilMailFailing alert is what calls someone).
        checks["mail"] = {"ok": waited <= MAIL_STUCK_SECONDS, "unsent": unsent, "oldest_unsent_seconds": round(waited)}
    return checks


# A message that has waited this long is "stuck" (the VardfilMailFailing alert's threshold).
MAIL_STUCK_SECONDS = 3600


async def _user_or_none(request: Request) -> User | None:
    return await run_in_threadpool(current_user, request)


def _message(exc: StarletteHTTPException) -> str:
    # Starlette's own errors (an unknown address, a wrong method) speak English: a person here
    # reads Swedish.
    return (
        {404: "Sidan finns inte.", 405: "Den åtgärden går inte att göra här."}.get(exc.status_code, str(exc.detail))
        if exc.detail in ("Not Found", "Method Not Allowed")
        else str(exc.detail)
    )
