"""The unit's pages: upload, kvittens, countdown, history, underlag, approval."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from filespec import file_rule_messages, max_file_bytes, spec_for
from filespec.calendar import Period
from reports import COMPONENT_LABELS
from vardfil.errors import Refused
from vardfil.month.approval import answer
from vardfil.month.intake import display_name, submit
from vardfil.month.views import preview, record_diff, replaced_by, unit_underlag_overview
from vardfil.portal.web import checked_form, file_of, now, page, unit_of, vardfil

router = APIRouter()
FINDINGS_SHOWN = 50
# Room for the multipart envelope around the largest file any spec accepts.
MAX_UPLOAD = max_file_bytes() + 64 * 1024


def _too_large() -> HTTPException:
    return HTTPException(status_code=413, detail=f"{file_rule_messages()['F06']} (F06). Filen togs inte emot.")


@router.get("/enhet/{hsaid}", response_class=HTMLResponse)
async def unit_page(request: Request, hsaid: str) -> Response:
    """The unit's month: countdown to its deadline, its files, its published underlag."""
    user, unit = unit_of(request, hsaid)
    app, at = vardfil(request), now(request)
    period = Period.of_window(at)
    deadline = app.ledger.dispens_deadline(hsaid, str(period)) or period.deadline
    return page(
        request,
        "unit.html",
        user,
        unit=unit,
        period=str(period),
        deadline=deadline,
        window_open=period.window.is_open(at, deadline),
        seconds_left=max(0, int((deadline - at).total_seconds())),
        history=app.ledger.unit_history(hsaid),
        underlag=unit_underlag_overview(app, unit),
        names=COMPONENT_LABELS,
    )


@router.post("/enhet/{hsaid}/upload")
async def upload(request: Request, hsaid: str) -> Response:
    """Receive a file: stamped at arrival, before the body is read; answered with its kvittens."""
    # Stamped first: a unit that pressed "Skicka" at 14:59:58 is on time however long the body
    # takes to arrive or the server takes to get to it.
    received_at = now(request)
    user, _ = unit_of(request, hsaid)
    if int(request.headers.get("content-length") or 0) > MAX_UPLOAD:
        raise _too_large()
    form = await checked_form(request, user)
    upload_file = form.get("file")
    filename = getattr(upload_file, "filename", None)
    if upload_file is None or isinstance(upload_file, str) or not filename:
        raise HTTPException(status_code=400, detail="Välj en fil att skicka")
    name = display_name(filename.replace("\\", "/").rsplit("/", 1)[-1])
    parts = name.split("_")
    # A file named for another unit is refused before it is stored: the unit user may act only for
    # its own units, and a misrouted file would otherwise get that unit's kvittens (F07 aside).
    if len(parts) >= 2 and parts[1].startswith("SE") and parts[1] != hsaid:
        raise HTTPException(status_code=403, detail="Filnamnet anger en annan vårdenhet än din")
    app = vardfil(request)
    with tempfile.NamedTemporaryFile(
        dir=app.store.root if app.store.root.exists() else None, prefix=".upload-", delete=False
    ) as tmp:
        size = 0
        while chunk := await upload_file.read(1 << 20):
            size += len(chunk)
            if size > MAX_UPLOAD:
                Path(tmp.name).unlink(missing_ok=True)
                raise _too_large()
            tmp.write(chunk)
    try:
        sub = submit(
            Path(tmp.name), file_name=name, received_at=received_at, app=app, source_kind="portal", actor=user.username
        )
    finally:
        Path(tmp.name).unlink(missing_ok=True)
    return RedirectResponse(f"/kvittens/{sub.receipt_id}", status_code=303)


@router.get("/kvittens/{receipt_id}", response_class=HTMLResponse)
async def kvittens_page(request: Request, receipt_id: str) -> Response:
    """A kvittens as a person reads it: findings with their messages, payment preview, diff."""
    user, f = file_of(request, receipt_id)
    app = vardfil(request)
    kv = json.loads(f.kvittens_json)
    spec = spec_for(f.file_type, f.period) if f.file_type and f.period else None
    messages = {
        rule: (spec.message(rule) if spec else file_rule_messages().get(rule, "")) for rule in kv["counts_by_rule"]
    }
    old = replaced_by(app, f)
    return page(
        request,
        "kvittens.html",
        user,
        f=f,
        kv=kv,
        findings=kv["findings"][:FINDINGS_SHOWN],
        messages=messages,
        preview=preview(app, f, now(request)),
        names=COMPONENT_LABELS,
        diff=record_diff(app, f, old) if old else None,
    )


@router.get("/kvittens/{receipt_id}/findings.csv")
async def kvittens_csv(request: Request, receipt_id: str) -> Response:
    """The full findings list."""
    _, f = file_of(request, receipt_id)
    return FileResponse(
        vardfil(request).store.resolve(f.findings_path),
        media_type="text/csv; charset=utf-8",
        filename=f"{f.file_name.removesuffix('.csv')}_fel.csv",
    )


@router.get("/kvittens/{receipt_id}/kvittens.json")
async def kvittens_json(request: Request, receipt_id: str) -> Response:
    """The kvittens JSON, as the spec defines it."""
    _, f = file_of(request, receipt_id)
    return Response(
        f.kvittens_json,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{f.receipt_id}.json"'},
    )


@router.get("/enhet/{hsaid}/underlag/{period}.xlsx")
async def unit_workbook(request: Request, hsaid: str, period: str) -> Response:
    """The unit's published workbook of a closed period."""
    _, unit = unit_of(request, hsaid)
    try:
        p = Period.parse(period)
    except ValueError:
        raise HTTPException(status_code=404, detail="Underlaget är inte publicerat") from None
    path = vardfil(request).output / str(p) / "enheter" / f"{hsaid}_{unit.filtyp}_{p}.xlsx"
    if not path.is_file():
        raise HTTPException(status_code=404, detail="Underlaget är inte publicerat")
    return FileResponse(path, filename=path.name)


@router.post("/enhet/{hsaid}/underlag/{period}/svar")
async def respond(request: Request, hsaid: str, period: str) -> Response:
    """The unit approves or disputes its underlag."""
    user, unit = unit_of(request, hsaid)
    form = await checked_form(request, user)
    try:
        answer(
            vardfil(request).ledger,
            unit_hsaid=hsaid,
            file_type=unit.filtyp,
            period=period,
            action="INVAND" if form.get("action") == "INVAND" else "GODKANN",
            comment=str(form.get("comment") or ""),
            actor=user.username,
        )
    except Refused as e:
        raise HTTPException(status_code=400, detail=str(e)) from None
    return RedirectResponse(f"/enhet/{hsaid}", status_code=303)
