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
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlparse

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from filespec import max_file_bytes
from filespec.calendar import STOCKHOLM, parse_instant
from vardfil.accounts import User
from vardfil.api import create_api
from vardfil.app import App, open_app
from vardfil.portal import analyst, oidc, rules, signin, unit, unit_admin
from vardfil.portal.access import current_user, page
from vardfil.web.body import BadUpload
from vardfil.web.middleware import ArrivalStamp, BodyLimit, PeerStamp, SecurityHeaders
from vardfil.workers import WorkerPool

STATIC = Path(__file__).parent / "static"
# The two routes that take a file; every other body is a small form.
UPLOAD_PATHS = re.compile(r"^/(enhet/[^/]+/upload|api/v1/filer)$")


def make_clock(clock_file: Path | None) -> Callable[[], dt.datetime]:
    """The server's clock. A clock file (``VARDFIL_CLOCK_FILE``: demos, tests and the burst
    benchmark only) holds the current instant, so a test can cross a deadline; or
    ``INSTANT EPOCH RATE``: the clock showed INSTANT at Unix time EPOCH and runs RATE times as
    fast as real time (the benchmark replays 14:00–15:00 in two minutes). Else the real time."""
    if clock_file is None:
        return lambda: dt.datetime.now(dt.UTC).astimezone(STOCKHOLM)

    def read() -> dt.datetime:
        instant, *moving = clock_file.read_text().split()
        at = parse_instant(instant)
        if moving:
            epoch, rate = float(moving[0]), float(moving[1])
            at += dt.timedelta(seconds=(time.time() - epoch) * rate)
        return at

    return read


def create_app(vardfil_app: App | None = None) -> FastAPI:
    """The server on an application (default: opened from the process's settings)."""
    core = vardfil_app or open_app()
    core.ledger  # noqa: B018 - open and migrate the ledger at start, not on the first request
    pool = WorkerPool(core.settings, workers=core.settings.pool_workers)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        pool.start()  # the workers import pandera and polars now, not when the first file waits
        yield
        pool.shutdown()

    web = FastAPI(title="vardfil", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    web.state.vardfil = core
    web.state.pool = pool
    web.state.clock = clock = make_clock(core.settings.clock_file)
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
    web.add_middleware(PeerStamp)  # outermost: the peer as it connected
    _redact_access_log()

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

    @web.get("/healthz")
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    for router in (signin.router, oidc.router, unit.router, unit_admin.router, analyst.router, rules.router):
        web.include_router(router)
    web.mount("/api/v1", create_api(core, pool))
    web.mount("/static", StaticFiles(directory=STATIC), name="static")
    return web


class _RedactLinks(logging.Filter):
    """Keeps a set-password link's token out of the access log: the token is the proof of the
    link, and a log is read by more people than the account's owner."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3 and isinstance(record.args[2], str):
            record.args = (*record.args[:2], LINK_PATH.sub(r"\1…", record.args[2]), *record.args[3:])
        return True


LINK_PATH = re.compile(r"(/konto/losenord/)[^/?#\s]+")


def _origins(url: str | None) -> tuple[str, ...]:
    if not url:
        return ()
    u = urlparse(url)
    return (f"{u.scheme}://{u.netloc}",)


def _redact_access_log() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _RedactLinks) for f in access.filters):
        access.addFilter(_RedactLinks())


async def _user_or_none(request: Request) -> User | None:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(current_user, request)


def _message(exc: StarletteHTTPException) -> str:
    # Starlette's own errors (an unknown address, a wrong method) speak English: a person here
    # reads Swedish.
    return (
        {404: "Sidan finns inte.", 405: "Den åtgärden går inte att göra här."}.get(exc.status_code, str(exc.detail))
        if exc.detail in ("Not Found", "Method Not Allowed")
        else str(exc.detail)
    )
