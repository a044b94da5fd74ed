"""The analysts' pages: the month board, dispens, close, finalise, downloads, audit log."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from filespec.calendar import Period, parse_wall_time
from reports.workbooks import Trends
from vardfil.access import close_receipts
from vardfil.accounts import User
from vardfil.actors import describe
from vardfil.app import App
from vardfil.delivery import ensure_closable, ensure_no_open_dispens, may_close, open_dispens
from vardfil.directory import catalogue_flags
from vardfil.errors import Refused
from vardfil.month.approval import finalise
from vardfil.month.dispens import grant_dispens
from vardfil.month.views import board_periods, month_board, period_needing_action
from vardfil.portal import charts
from vardfil.portal.access import checked_form, log_read, now, page, require_analyst, served_period, vardfil
from vardfil.privacy import masked
from vardfil.publish.payment import make_payment, payment_view
from vardfil.publish.workbooks import trends
from vardfil.swedish import kronor, percent, whole_kronor
from vardfil.workers import close_job

router = APIRouter()


@router.get("/analys")
def board_now(request: Request) -> Response:
    """The board without a period: the one that needs action now (as the start page does)."""
    require_analyst(request)
    return RedirectResponse(f"/analys/{period_needing_action(vardfil(request), now(request))}", status_code=303)


@router.get("/analys/{period}", response_class=HTMLResponse)
def month_board_page(request: Request, period: str) -> Response:
    """Every unit of the period: delivery, rejected share, amounts once closed."""
    user = require_analyst(request)
    p, app = served_period(period), vardfil(request)
    state = app.ledger.closes.period_state(p)
    closed = app.ledger.closes.period_closed(p)
    t = trends(app, p) if closed else None
    payment = payment_view(app, p) if state is not None and state.state == "FINALISED" else None
    return page(
        request,
        "board.html",
        user,
        period=str(p),
        window=p.window,
        rows=month_board(app, p),
        closed=app.ledger.closes.period_closed(p),
        state=state.state if state else "OPEN",
        can_close=may_close(p, now(request)),
        charts=_board_charts(t) if t else None,
        flags=t.flags if t else [],
        catalogue=catalogue_flags(app),
        periods=[str(q) for q in board_periods(app, p, now(request))],
        previous=str(p.previous()),
        following=str(p.next()),
        dispenses=_dispenses(app, p, now(request)),
        payment=payment,
        open_dispens=[
            {"name": _unit_name(app, u), "until": until}
            for u, until in open_dispens(app.ledger, p, now(request)).items()
        ],
    )


def _unit_name(app: App, hsaid: str) -> str:
    unit = app.reference.units.get(hsaid)
    return f"{unit.namn} ({hsaid})" if unit else hsaid


def _dispenses(app: App, p: Period, at: dt.datetime) -> list[dict[str, object]]:
    """Every dispens row of the period, for the board: who, until when, why, by whom, and whether
    it is in force and still open."""
    names = app.ledger.accounts.names_of_actors()
    force = {r.id for r in app.ledger.decisions.dispens_in_force(p).values()}
    out: list[dict[str, object]] = []
    for r in app.ledger.decisions.dispens_rows(p):
        state = (
            "återkallad"
            if r.withdrawn
            else ("pågår" if r.id in force and r.deadline > at else ("har löpt ut" if r.id in force else "ersatt"))
        )
        out.append(
            {
                "name": _unit_name(app, r.unit_hsaid),
                "until": r.deadline,
                "withdrawn": r.withdrawn,
                "reason": r.reason,
                "by": describe(r.granted_by, names),
                "at": r.granted_at,
                "state": state,
            }
        )
    return out


def _board_charts(t: Trends) -> dict[str, Markup]:
    """The board's pictures: the same three as the region workbook's Trender sheet, each with its
    numbers as a table beside it."""
    totals = [(q, float(a)) for q, a in t.totals]
    changes = [(n, float(c)) for n, c in t.changes]
    return {
        # A line needs two periods; with one, the table above already says it all.
        "total": charts.line("c-total", "Regionens summa per period", totals, kronor, tick_fmt=whole_kronor)
        + charts.table("c-total-tal", "Siffrorna i diagrammet", ("Period", "Summa"), totals, kronor)
        if len(t.totals) > 1
        else Markup(""),
        "changes": charts.bars("c-changes", "De största förändringarna mot föregående period", changes, kronor)
        + charts.table("c-changes-tal", "Siffrorna i diagrammet", ("Vårdenhet", "Förändring"), changes, kronor),
        "rejected": charts.bars("c-rejected", "Andel avvisade rader per enhet", t.rejected, percent)
        + charts.table(
            "c-rejected-tal", "Siffrorna i diagrammet", ("Vårdenhet", "Avvisade rader"), t.rejected, percent
        ),
    }


Action = Callable[[App, Period, User, FormData, dt.datetime], Awaitable[object]]


async def _act(request: Request, period: str, action: Action) -> Response:
    """An analyst's POST on a period: checked, carried out off the event loop, answered with the
    board again; a request the application refuses is a 400 with its reason."""
    at = now(request)
    user = await run_in_threadpool(require_analyst, request)
    p = served_period(period)
    form = await checked_form(request, user)
    try:
        await action(vardfil(request), p, user, form, at)
    except Refused as e:
        raise HTTPException(status_code=400, detail=str(e)) from None
    return RedirectResponse(f"/analys/{p}", status_code=303)


@router.post("/analys/{period}/dispens")
async def grant(request: Request, period: str) -> Response:
    """Grant a unit an extended deadline."""

    async def action(app: App, p: Period, user: User, form: FormData, _at: dt.datetime) -> object:
        # The form's date-and-time field sends Swedish wall time; a time the clocks pass twice or
        # skip is refused rather than guessed (the CLI wants an offset always).
        try:
            until = parse_wall_time(str(form.get("until")))
        except ValueError:
            raise HTTPException(
                status_code=400,
                detail="Ange en tidpunkt i svensk tid, till exempel 2026-11-06 15:00 (vid sommartidens "
                "slut med +01:00 eller +02:00)",
            ) from None
        return await run_in_threadpool(
            lambda: grant_dispens(
                app,
                unit_hsaid=str(form.get("unit")),
                period=p,
                until=until,
                reason=str(form.get("reason") or ""),
                actor=user.actor,
            )
        )

    return await _act(request, period, action)


@router.post("/analys/{period}/close")
async def close(request: Request, period: str) -> Response:
    """Close the period now and publish every workbook (in the large lane: it takes a minute)."""

    async def action(app: App, p: Period, user: User, form: FormData, at: dt.datetime) -> object:
        ensure_closable(p, at)  # answered here at once rather than after a wait for the lane
        despite = form.get("despite_dispens") == "1"
        # Answered here at once, not after a wait for the lane; the close checks again.
        if not despite:
            ensure_no_open_dispens(app.ledger, p, at)
        return await request.app.state.pool.run("large", close_job, p, at, user.actor, despite)

    return await _act(request, period, action)


@router.post("/analys/{period}/finalise")
async def finalise_period(request: Request, period: str) -> Response:
    """Finalise the period: its underlag never changes again."""

    async def action(app: App, p: Period, user: User, _form: FormData, _at: dt.datetime) -> object:
        return await run_in_threadpool(lambda: finalise(app.ledger, period=p, actor=user.actor))

    return await _act(request, period, action)


@router.post("/analys/{period}/utbetalning")
async def make_payment_basis(request: Request, period: str) -> Response:
    """Make the payment basis of a finalised period now (the nightly run makes it otherwise)."""

    async def action(app: App, p: Period, user: User, _form: FormData, _at: dt.datetime) -> object:
        return await run_in_threadpool(lambda: make_payment(app, p))

    return await _act(request, period, action)


@router.get("/analys/{period}/utbetalning/{name}")
def payment_file(request: Request, period: str, name: str) -> Response:
    """A file of the period's payment basis, by a name the folder holds (never a path from the request)."""
    require_analyst(request)
    p = served_period(period)
    view = payment_view(vardfil(request), p)
    if view is None or name not in view["files"]:
        raise HTTPException(status_code=404, detail="Filen finns inte (betalningsunderlaget är inte gjort)")
    media = {"xml": "application/xml", "csv": "text/csv; charset=utf-8"}.get(name.rsplit(".", 1)[-1])
    return FileResponse(view["folder"] / name, filename=name, media_type=media)


@router.get("/analys/{period}/download/{name}")
def download(request: Request, period: str, name: str) -> Response:
    """One of the period's published files, by its fixed name (never a path from the request)."""
    user = require_analyst(request)
    p = served_period(period)
    # The name is looked up, never joined onto a path: nothing from the request reaches the file system.
    allowed = {"underlag.parquet", "besok.parquet", "acg.parquet", f"region_{p}.xlsx"}
    if name not in allowed:
        raise HTTPException(status_code=404, detail="Filen finns inte")
    path = vardfil(request).output / str(p) / name
    if not path.is_file():
        raise HTTPException(status_code=404, detail="Filen finns inte (perioden är inte stängd)")
    if name in PATIENT_LEVEL:  # visit by visit, pseudonymised: still a patient's data
        log_read(
            request,
            user,
            action="ladda_ner",
            kind=PATIENT_LEVEL[name],
            unit_hsaid=None,
            period=p,
            file=name,
            receipts=close_receipts(vardfil(request), p),
        )
    return FileResponse(path, filename=name)


# The period's files that hold a row per visit (the underlag and the region workbook are sums).
PATIENT_LEVEL = {"besok.parquet": "besok", "acg.parquet": "acg"}


def _shown_detail(detail: str | None) -> str:
    """An audit entry's detail (JSON) as shown: masked value by value, so digests stay whole."""
    if not detail:
        return ""
    try:
        return json.dumps(masked(json.loads(detail)), ensure_ascii=False, sort_keys=True)
    except ValueError:
        return str(masked(detail))


@router.get("/analys/audit/log", response_class=HTMLResponse)
def audit(request: Request) -> Response:
    """The newest entries of the audit log."""
    user = require_analyst(request)
    ledger = vardfil(request).ledger
    names = ledger.accounts.names_of_actors()
    # Shown masked whatever was written: entries from before every form of a personnummer was
    # masked at the write stay as they are in the log (it is append-only), never on this page.
    entries = [
        {
            "at": e.at,
            "actor": describe(e.actor, names),
            "action": e.action,
            "subject": masked(e.subject) or "",
            "detail": _shown_detail(e.detail)[:300],
        }
        for e in ledger.audit_entries(limit=300)
    ]
    return page(request, "audit.html", user, entries=entries)
