"""The portal: units upload and read their kvittens; analysts run the month.

Server-rendered (FastAPI + Jinja2, no front-end build), a thin front door: each handler checks who
is asking, calls one application function (``vardfil.month``, ``vardfil.publish``) and renders its
answer. Routers per audience: ``signin``, ``unit``, ``analyst``; the shared access rules are in
``web``.

Security: sessions are server-side (only a hash of the token is stored), the cookie is
``HttpOnly`` and ``SameSite=Strict`` (``Secure`` behind TLS: ``VARDFIL_SECURE_COOKIES=1``); every
form carries the session's CSRF token and every POST checks it; a unit user is bound to its
HSA-ids and every route that names a unit or a file checks it (``web.unit_of``/``web.file_of``);
upload names are only ever text (files are stored under their hash). The region's SSO plugs in at
``web.current_user``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from filespec.calendar import STOCKHOLM, parse_instant
from vardfil.app import App, open_app
from vardfil.portal import analyst, signin, unit
from vardfil.portal.web import current_user, page


def make_clock(clock_file: Path | None) -> Callable[[], dt.datetime]:
    """The portal's clock. A clock file (``VARDFIL_CLOCK_FILE``, demos and tests only) holds the
    current instant, so a test can cross a deadline; otherwise the real time."""
    if clock_file is not None:
        return lambda: parse_instant(clock_file.read_text().strip())
    return lambda: dt.datetime.now(dt.UTC).astimezone(STOCKHOLM)


def create_app(vardfil_app: App | None = None) -> FastAPI:
    """The portal on an application (default: opened from the process's settings)."""
    core = vardfil_app or open_app()
    web = FastAPI(title="vardfil", docs_url=None, redoc_url=None, openapi_url=None)
    web.state.vardfil = core
    web.state.clock = make_clock(core.settings.clock_file)
    core.ledger  # noqa: B018 - open and migrate the ledger at start, not on the first request

    @web.exception_handler(HTTPException)
    async def _errors(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 303 and exc.headers:
            return RedirectResponse(exc.headers["Location"], status_code=303)
        resp = page(request, "error.html", current_user(request), status=exc.status_code, message=exc.detail)
        resp.status_code = exc.status_code
        return resp

    @web.get("/healthz")
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    for router in (signin.router, unit.router, analyst.router):
        web.include_router(router)
    return web
