"""The analysts' pages: the month board, dispens, close, finalise, downloads, audit log."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from filespec.calendar import Period, parse_instant
from vardfil.accounts import User
from vardfil.app import App
from vardfil.errors import Refused
from vardfil.month.approval import finalise
from vardfil.month.close import close_period
from vardfil.month.dispens import grant_dispens
from vardfil.month.views import month_board
from vardfil.portal.web import checked_form, now, page, require_analyst, vardfil
from vardfil.publish.workbooks import write_workbooks

router = APIRouter()


def _period(text: str) -> Period:
    try:
        return Period.parse(text)
    except ValueError:
        raise HTTPException(status_code=404, detail=f"Perioden {text[:20]} finns inte") from None


@router.get("/analys/{period}", response_class=HTMLResponse)
async def month_board_page(request: Request, period: str) -> Response:
    """Every unit of the period: delivery, rejected share, amounts once closed."""
    user = require_analyst(request)
    p, app = _period(period), vardfil(request)
    state = app.ledger.period_state(str(p))
    return page(
        request,
        "board.html",
        user,
        period=str(p),
        window=p.window,
        rows=month_board(app, str(p)),
        closed=app.ledger.period_closed(str(p)),
        state=state.state if state else "OPEN",
        can_close=now(request) >= p.deadline,
    )


@router.post("/analys/{period}/dispens")
async def grant(request: Request, period: str) -> Response:
    """Grant a unit an extended deadline."""
    user = require_analyst(request)
    p = _period(period)
    form = await checked_form(request, user)
    # A time without an offset is refused, as in the CLI: at the DST change it names two instants.
    try:
        until = parse_instant(str(form.get("until")))
    except ValueError:
        raise HTTPException(status_code=400, detail="Ange tidpunkten som ÅÅÅÅ-MM-DDTHH:MM+01:00") from None
    try:
        grant_dispens(
            vardfil(request),
            unit_hsaid=str(form.get("unit")),
            period=str(p),
            until=until,
            reason=str(form.get("reason") or ""),
            actor=user.username,
        )
    except Refused as e:
        raise HTTPException(status_code=400, detail=str(e)) from None
    return RedirectResponse(f"/analys/{p}", status_code=303)


async def _act(request: Request, period: str, action: Callable[[App, Period, User], object]) -> Response:
    """An analyst's POST on a period: checked, carried out, answered with the board again; a
    request the application refuses is a 400 with its reason."""
    user = require_analyst(request)
    p = _period(period)
    await checked_form(request, user)
    try:
        action(vardfil(request), p, user)
    except Refused as e:
        raise HTTPException(status_code=400, detail=str(e)) from None
    return RedirectResponse(f"/analys/{p}", status_code=303)


@router.post("/analys/{period}/close")
async def close(request: Request, period: str) -> Response:
    """Close the period now and publish every workbook."""
    at = now(request)

    def close_and_publish(app: App, p: Period, user: User) -> None:
        close_period(str(p), at=at, app=app, actor=user.username)
        write_workbooks(str(p), app=app)

    return await _act(request, period, close_and_publish)


@router.post("/analys/{period}/finalise")
async def finalise_period(request: Request, period: str) -> Response:
    """Finalise the period: its underlag never changes again."""
    return await _act(request, period, lambda app, p, user: finalise(app.ledger, period=str(p), actor=user.username))


@router.get("/analys/{period}/download/{name}")
async def download(request: Request, period: str, name: str) -> Response:
    """One of the period's published files, by its fixed name (never a path from the request)."""
    require_analyst(request)
    p = _period(period)
    # The name is looked up, never joined onto a path: nothing from the request reaches the file system.
    allowed = {"underlag.parquet", "besok.parquet", "acg.parquet", f"region_{p}.xlsx"}
    if name not in allowed:
        raise HTTPException(status_code=404, detail="Filen finns inte")
    path = vardfil(request).output / str(p) / name
    if not path.is_file():
        raise HTTPException(status_code=404, detail="Filen finns inte (perioden är inte stängd)")
    return FileResponse(path, filename=name)


@router.get("/analys/audit/log", response_class=HTMLResponse)
async def audit(request: Request) -> Response:
    """The newest entries of the audit log."""
    user = require_analyst(request)
    return page(request, "audit.html", user, entries=vardfil(request).ledger.audit_entries(limit=300))
