"""What every portal router shares: who is asking, what they may see, CSRF, and page rendering.

Access rules live here once: a unit user is bound to its HSA-ids, and every route that names a
unit or a file goes through :func:`unit_of` or :func:`file_of`; someone else's file is answered as
if it did not exist. Sessions come from a password or from the region's IdP (``oidc``); either way
:func:`current_user` gives the same :class:`User`.
"""

from __future__ import annotations

import datetime as dt
import hmac
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData

from filespec import Unit, price_list_for
from filespec.calendar import Period
from vardfil import swedish
from vardfil.accounts import User, user_for
from vardfil.actors import may_read_file
from vardfil.app import App
from vardfil.ledger import ReceivedFile

COOKIE = "vardfil_session"
PRE_COOKIE = "vardfil_login_csrf"
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
# Everything a page shows a person goes through the Swedish presentation (vardfil.swedish); the
# templates never format a number or an instant themselves.
TEMPLATES.env.filters.update(
    kr=swedish.kronor,
    procent=swedish.percent,
    tal=swedish.number,
    tid=swedish.local_time,
    sekunder=lambda instant: swedish.local_time(instant, seconds=True),
    status=swedish.status,
    komponent=swedish.component,
    rad=swedish.line,
    periodstatus=swedish.period_state,
    roll=swedish.role,
    manad=swedish.month,
)


def vardfil(request: Request) -> App:
    """The application the portal was built on."""
    app: App = request.app.state.vardfil
    return app


def now(request: Request) -> dt.datetime:
    """The portal's clock (the real time, or a test's clock file)."""
    clock: dt.datetime = request.app.state.clock()
    return clock


def current_user(request: Request) -> User | None:
    """The signed-in user of this request's session (password or IdP), if any."""
    app = vardfil(request)
    return user_for(app.ledger, request.cookies.get(COOKIE), idle_minutes=app.settings.session_idle_minutes)


def require_user(request: Request) -> User:
    """The signed-in user; a redirect to the sign-in page otherwise."""
    user = current_user(request)
    if user is None:
        # A redirect raised as an exception, so every handler can require a user in one line.
        raise HTTPException(status_code=303, headers={"Location": "/login"})
    return user


def require_analyst(request: Request) -> User:
    """An analyst or admin; 403 for anyone else."""
    user = require_user(request)
    if not user.analyst:
        raise HTTPException(status_code=403, detail="Endast för analytiker")
    return user


def unit_of(request: Request, hsaid: str) -> tuple[User, Unit]:
    """The user and the unit a route names, if the user may act for it; 403 otherwise."""
    user = require_user(request)
    unit = vardfil(request).reference.units.get(hsaid)
    if unit is None or not user.may_see_unit(hsaid):
        raise HTTPException(status_code=403, detail="Du har inte behörighet till denna vårdenhet")
    return user, unit


def admin_of(request: Request, hsaid: str) -> tuple[User, Unit]:
    """The user and the unit a route names, if the user administers that unit; 403 otherwise."""
    user, unit = unit_of(request, hsaid)
    if not user.may_admin_unit(hsaid):
        raise HTTPException(status_code=403, detail="Endast enhetens administratörer hanterar konton och API-nycklar")
    return user, unit


def file_of(request: Request, receipt_id: str) -> tuple[User, ReceivedFile]:
    """The user and the received file a route names; 404 when it is not the user's to see."""
    user = require_user(request)
    f = vardfil(request).ledger.files.file_by_receipt(receipt_id)
    # A file with no valid name has no unit: only the account that sent it may read its kvittens
    # (by its typed actor, never by a name). 404, not 403, for someone else's file: a receipt id
    # must not confirm that a file exists.
    if f is None or not may_read_file(user, f):
        raise HTTPException(status_code=404, detail="Kvittensen finns inte")
    return user, f


def served_period(text: str) -> Period:
    """The period an address names, if the portal serves it: a real period with a price list and
    a deadline the calendar can compute; the 404 page otherwise (never a traceback)."""
    try:
        p = Period.parse(text)
        price_list_for(str(p))
        p.deadline  # noqa: B018 - a deadline past the calendar's years raises here, not in a page
    except (ValueError, OverflowError, LookupError, KeyError):
        raise HTTPException(status_code=404, detail=f"Perioden {text[:20]} finns inte") from None
    return p


def check_csrf(sent: object, user: User) -> None:
    """403 unless ``sent`` is the session's CSRF token (compared in constant time)."""
    if not hmac.compare_digest(str(sent or ""), user.csrf):
        raise HTTPException(status_code=403, detail="Ogiltig eller saknad CSRF-token")


async def checked_form(request: Request, user: User) -> FormData:
    """The posted form (a few kilobytes at most: ``BodyLimit``), after checking its CSRF token."""
    form = await request.form()
    check_csrf(form.get("csrf"), user)
    return form


def page(request: Request, template: str, user: User | None, **ctx: Any) -> HTMLResponse:
    """A rendered page; every template gets the user and the portal's "now"."""
    return TEMPLATES.TemplateResponse(request, template, {"user": user, "now": now(request), **ctx})


# A read of patient-level data that cannot be logged is not served (vardfil.access).
NOT_LOGGED = "Uppgifterna kan inte visas just nu: åtkomstloggen går inte att skriva. Försök igen om en stund."


def log_read(
    request: Request,
    user: User,
    *,
    action: str,
    kind: str,
    unit_hsaid: str | None,
    period: Period | None,
    file: str,
    receipts: list[str],
) -> None:
    """The access-log entry of a read this request is about to serve; 503 when it cannot be written."""
    from vardfil.access import AccessLogUnavailable, logged, reader_of_user
    from vardfil.logs import request_id

    reader = reader_of_user(user, unit_hsaid, address=address_of(request), request_id=request_id.get())
    try:
        logged(
            vardfil(request),
            reader,
            action=action,
            kind=kind,
            unit_hsaid=unit_hsaid,
            period=period,
            file=file,
            receipts=receipts,
        )
    except AccessLogUnavailable:
        raise HTTPException(status_code=503, detail=NOT_LOGGED) from None


def address_of(request: Request) -> str | None:
    """The client's address as the request's own layers saw it (the trusted proxy's header read)."""
    return request.client.host if request.client else None
