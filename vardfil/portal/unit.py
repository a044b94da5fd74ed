"""The unit's pages: upload, kvittens, countdown, history, underlag, approval."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from filespec import Unit, file_rule_messages, spec_for
from filespec.calendar import Period
from filespec.catalogue import versions
from vardfil.access import close_receipts, period_of
from vardfil.accounts import User
from vardfil.app import App
from vardfil.delivery import claimed_unit, deadline_of
from vardfil.errors import CopyOfAnotherUnit, Refused
from vardfil.ledger import ReceivedFile
from vardfil.metrics import kvittens_ready
from vardfil.month.approval import answer
from vardfil.month.intake import sent_name
from vardfil.month.views import preview, record_diff, replaced_by, unit_months, unit_underlag_overview
from vardfil.portal import charts
from vardfil.portal.access import (
    check_csrf,
    checked_form,
    file_of,
    log_read,
    now,
    page,
    served_period,
    unit_of,
    vardfil,
)
from vardfil.publish.payment import document_view, payment_folder
from vardfil.publish.workbooks import unit_workbook_path
from vardfil.swedish import kronor, whole_kronor
from vardfil.web.body import read_upload
from vardfil.workers import submit_job, workbook_job

router = APIRouter()
FINDINGS_SHOWN = 50


@router.get("/enhet/{hsaid}", response_class=HTMLResponse)
def unit_page(request: Request, hsaid: str) -> Response:
    """The unit's month: countdown to its deadline, its files, its published underlag."""
    user, unit = unit_of(request, hsaid)
    app, at = vardfil(request), now(request)
    period = Period.of_window(at)
    deadline = deadline_of(app.ledger, hsaid, period)
    dispens = app.ledger.decisions.dispens_in_force(period).get(hsaid)
    return page(
        request,
        "unit.html",
        user,
        unit=unit,
        period=str(period),
        deadline=deadline,
        dispens=dispens,
        window_open=period.window.is_open(at, deadline),
        seconds_left=max(0, int((deadline - at).total_seconds())),
        history=app.ledger.files.unit_history(hsaid),
        months=_months_chart(app, unit),
        underlag=(underlag := unit_underlag_overview(app, unit)),
        documents={
            u.period
            for u in underlag
            if u.finalised
            and (payment_folder(app, u.period) / f"VF-{u.period.compact}-{unit.filtyp}-{hsaid}.xml").is_file()
        },
    )


def _months_chart(app: App, unit: Unit) -> Markup:
    points = [(q, float(a)) for q, a in unit_months(app, unit)]
    if len(points) < 2:
        return Markup("")
    return charts.line(
        "c-months", f"{unit.namn}: underlaget per period", points, kronor, tick_fmt=whole_kronor
    ) + charts.table("c-months-tal", "Siffrorna i diagrammet", ("Period", "Underlag"), points, kronor)


@router.post("/enhet/{hsaid}/upload")
async def upload(request: Request, hsaid: str) -> Response:
    """Receive a file: stamped at arrival (``ArrivalStamp``), checked before its body is read,
    streamed to disk, recorded in a worker process; answered with its kvittens page."""
    received_at = request.state.received_at
    user, _ = await run_in_threadpool(unit_of, request, hsaid)
    app = vardfil(request)
    received = await read_upload(request, staging=app.store.root / "incoming")
    try:
        check_csrf(received.fields.get("csrf"), user)
        if received.path is None or not received.filename:
            raise HTTPException(status_code=400, detail="Välj en fil att skicka")
        name = sent_name(received.filename)
        # A file named for another unit is refused before it is recorded: the user acts only for
        # its own units, and a misrouted file must not be answered with another unit's kvittens.
        if claimed_unit(name) not in (None, hsaid):
            raise HTTPException(status_code=403, detail="Filnamnet anger en annan vårdenhet än din")
        pool = request.app.state.pool
        try:
            done = await pool.run(
                pool.lane_for(received.size),
                submit_job,
                str(received.path),
                name,
                received_at,
                "portal",
                user.actor,
                None if user.analyst else user.units,
            )
        except CopyOfAnotherUnit as e:
            raise HTTPException(status_code=409, detail=str(e)) from None
    finally:
        received.discard()
    kvittens_ready(request, "portal")
    return RedirectResponse(f"/kvittens/{done['receipt_id']}", status_code=303)


@router.get("/kvittens/{receipt_id}", response_class=HTMLResponse)
def kvittens_page(request: Request, receipt_id: str) -> Response:
    """A kvittens as a person reads it: findings with their messages, payment preview, diff."""
    user, f = file_of(request, receipt_id)
    app = vardfil(request)
    kv = json.loads(f.kvittens_json)
    _log_kvittens(request, user, f, kv, "läsa")
    spec = spec_for(f.file_type, f.period) if f.file_type and f.period else None
    messages = {
        rule: (spec.message(rule) if spec else file_rule_messages().get(rule, "")) for rule in kv["counts_by_rule"]
    }
    old = replaced_by(app, f)
    # Rule codes link to the catalogue of the version that judged the file; a file without a valid
    # name (F01) names no version: its file rules read the same in every one.
    rule_version = f.spec_version or min(versions())
    return page(
        request,
        "kvittens.html",
        user,
        rule_version=rule_version,
        f=f,
        kv=kv,
        findings=kv["findings"][:FINDINGS_SHOWN],
        messages=messages,
        preview=preview(app, f, now(request)),
        diff=record_diff(app, f, old) if old else None,
    )


@router.get("/kvittens/{receipt_id}/findings.csv")
def kvittens_csv(request: Request, receipt_id: str) -> Response:
    """The full findings list."""
    user, f = file_of(request, receipt_id)
    log_read(
        request,
        user,
        action="ladda_ner",
        kind="fellista",
        unit_hsaid=f.unit_hsaid,
        period=period_of(f),
        file=f"{f.file_name.removesuffix('.csv')}_fel.csv",
        receipts=[f.receipt_id],
    )
    return FileResponse(
        vardfil(request).store.resolve(f.findings_path),
        media_type="text/csv; charset=utf-8",
        filename=f"{f.file_name.removesuffix('.csv')}_fel.csv",
    )


@router.get("/kvittens/{receipt_id}/kvittens.json")
def kvittens_json(request: Request, receipt_id: str) -> Response:
    """The kvittens JSON, as the spec defines it."""
    user, f = file_of(request, receipt_id)
    _log_kvittens(request, user, f, json.loads(f.kvittens_json), "ladda_ner")
    return Response(
        f.kvittens_json,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{f.receipt_id}.json"'},
    )


@router.get("/enhet/{hsaid}/underlag/{period}.xlsx")
async def unit_workbook(request: Request, hsaid: str, period: str) -> Response:
    """The unit's workbook of a closed period, written in the large lane the first time it is asked
    for (the close publishes the underlag; the workbook follows on demand)."""
    user, unit = await run_in_threadpool(unit_of, request, hsaid)
    p = served_period(period)
    app = vardfil(request)
    path = unit_workbook_path(app, p, unit)
    if not path.is_file():
        if not await run_in_threadpool(app.ledger.closes.period_closed, p):
            raise HTTPException(status_code=404, detail="Underlaget är inte publicerat")
        written = await request.app.state.pool.run("large", workbook_job, p, hsaid)
        if written is None:
            raise HTTPException(status_code=404, detail="Underlaget är inte publicerat")
    receipts = await run_in_threadpool(close_receipts, app, p, hsaid)
    await run_in_threadpool(
        lambda: log_read(
            request,
            user,
            action="ladda_ner",
            kind="arbetsbok",
            unit_hsaid=hsaid,
            period=p,
            file=path.name,
            receipts=receipts,
        )
    )
    return FileResponse(path, filename=path.name)


def _log_kvittens(request: Request, user: User, f: ReceivedFile, kv: dict[str, object], action: str) -> None:
    """A kvittens with findings names rows and visits of the file: its read is logged. One
    without findings shows counts only, and is not patient-level data."""
    if kv.get("findings"):
        log_read(
            request,
            user,
            action=action,
            kind="kvittens",
            unit_hsaid=f.unit_hsaid,
            period=period_of(f),
            file=f.receipt_id,
            receipts=[f.receipt_id],
        )


@router.post("/enhet/{hsaid}/underlag/{period}/svar")
async def respond(request: Request, hsaid: str, period: str) -> Response:
    """The unit approves or disputes its underlag."""
    user, unit = await run_in_threadpool(unit_of, request, hsaid)
    p = served_period(period)
    form = await checked_form(request, user)
    try:
        await run_in_threadpool(
            lambda: answer(
                vardfil(request),
                unit_hsaid=hsaid,
                file_type=unit.filtyp,
                period=p,
                action="INVAND" if form.get("action") == "INVAND" else "GODKANN",
                comment=str(form.get("comment") or ""),
                actor=user.actor,
            )
        )
    except Refused as e:
        raise HTTPException(status_code=400, detail=str(e)) from None
    return RedirectResponse(f"/enhet/{hsaid}", status_code=303)


def _own_document(request: Request, hsaid: str, period: str) -> tuple[User, Unit, Path]:
    """The unit's self-billing document of a period (404 when it has none: not finalised, not
    made yet, a zero total, or an OFFENTLIG unit, which is settled internally)."""
    user, unit = unit_of(request, hsaid)
    p = served_period(period)
    path = payment_folder(vardfil(request), p) / f"VF-{p.compact}-{unit.filtyp}-{hsaid}.xml"
    if not path.is_file():
        raise HTTPException(status_code=404, detail="Det finns ingen avräkningsnota för perioden")
    return user, unit, path


@router.get("/enhet/{hsaid}/utbetalning/{period}", response_class=HTMLResponse)
def unit_payment(request: Request, hsaid: str, period: str) -> Response:
    """The unit's self-billing document as a page: the lines, the total, the due date, the bankgiro."""
    user, unit, path = _own_document(request, hsaid, period)
    return page(request, "payment.html", user, unit=unit, period=period, doc=document_view(path.read_bytes()))


@router.get("/enhet/{hsaid}/utbetalning/{period}/avrakningsnota.xml")
def unit_payment_xml(request: Request, hsaid: str, period: str) -> Response:
    """The document itself (Peppol BIS Billing 3, UBL 2.1)."""
    _, _, path = _own_document(request, hsaid, period)
    return FileResponse(path, filename=path.name, media_type="application/xml")
