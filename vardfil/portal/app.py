"""The portal: units upload and read their kvittens; analysts run the month.

Server-rendered (FastAPI + Jinja2, no front-end build). It calls the same intake, ledger, close and
report functions as the CLI and the DAGs.

Security: sessions are server-side (only a hash of the token is stored), the cookie is
``HttpOnly`` and ``SameSite=Strict`` (``Secure`` behind TLS: ``VARDFIL_SECURE_COOKIES=1``); every
form carries the session's CSRF token and every POST checks it; a unit user is bound to its
HSA-ids and every route that names a unit or a file checks it (``_unit``/``_file``); upload names
are only ever text (files are stored under their hash). The region's SSO plugs in at
``current_user``.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import os
import secrets
import tempfile
from decimal import Decimal
from pathlib import Path

import polars as pl
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import or_, select

from filespec import file_rule_messages, load_listing, load_reference, price_list_for, spec_for
from reports import total, underlag_for
from reports.workbooks import COMPONENT_NAMES
from validators.window import STOCKHOLM, parse_instant, period_of_window, window_for
from vardfil.accounts import User, sign_in, sign_out, user_for
from vardfil.approval import ApprovalError, answer, finalise
from vardfil.close import CloseContext, CloseError, CloseTooEarly, close_period, pseudonym_key, reh_history
from vardfil.intake import display_name, submit
from vardfil.ledger import FileKey, Ledger
from vardfil.models import Approval, PeriodClose, ReceivedFile, UnderlagLineRow
from vardfil.settings import load_settings
from vardfil.store import RawStore

COOKIE = "vardfil_session"
PRE_COOKIE = "vardfil_login_csrf"
MAX_UPLOAD = 200 * 1024 * 1024 + 64 * 1024  # the spec's limit plus room for the multipart envelope
FINDINGS_SHOWN = 50
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def make_clock():
    """The portal's clock. ``VARDFIL_CLOCK_FILE`` (demos and tests only) names a file holding the
    current instant, so a test can cross a deadline; otherwise the real time."""
    path = os.environ.get("VARDFIL_CLOCK_FILE")
    if path:
        return lambda: parse_instant(Path(path).read_text().strip())
    return lambda: dt.datetime.now(dt.timezone.utc).astimezone(STOCKHOLM)


def create_app() -> FastAPI:
    """The portal application on the process's settings."""
    settings = load_settings()
    app = FastAPI(title="vardfil", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.ledger = Ledger(settings.database_url)
    app.state.store = RawStore(settings.store)
    app.state.reference = load_reference(settings.reference)
    app.state.clock = make_clock()
    app.state.secure = os.environ.get("VARDFIL_SECURE_COOKIES") == "1"
    _routes(app)
    return app


# --- request helpers -----------------------------------------------------------------------------

def current_user(request: Request) -> User | None:
    """The signed-in user (the place for the region's SSO: map its identity to an account here)."""
    return user_for(request.app.state.ledger, request.cookies.get(COOKIE))


def _require(request: Request) -> User:
    user = current_user(request)
    if user is None:
        raise HTTPException(status_code=303, headers={"Location": "/login"})
    return user


def _analyst(request: Request) -> User:
    user = _require(request)
    if not user.analyst:
        raise HTTPException(status_code=403, detail="Endast för analytiker")
    return user


def _unit(request: Request, hsaid: str) -> tuple[User, object]:
    user = _require(request)
    unit = request.app.state.reference.units.get(hsaid)
    if unit is None or not user.may_see_unit(hsaid):
        raise HTTPException(status_code=403, detail="Du har inte behörighet till denna vårdenhet")
    return user, unit


def _file(request: Request, receipt_id: str) -> tuple[User, ReceivedFile]:
    user = _require(request)
    f = request.app.state.ledger.file_by_receipt(receipt_id)
    # Someone else's file is answered as if it did not exist.
    if f is None or not (user.may_see_unit(f.unit_hsaid) or (f.unit_hsaid is None and f.actor == user.username)):
        raise HTTPException(status_code=404, detail="Kvittensen finns inte")
    return user, f


async def _form(request: Request, user: User) -> dict:
    form = await request.form()
    if not hmac.compare_digest(str(form.get("csrf", "")), user.csrf):
        raise HTTPException(status_code=403, detail="Ogiltig eller saknad CSRF-token")
    return form


def _page(request: Request, template: str, user: User | None, **ctx) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, template, {"user": user, "now": request.app.state.clock(), **ctx})


def _close_ctx(app) -> CloseContext:
    s = app.state.settings
    return CloseContext(ledger=app.state.ledger, store=app.state.store, reference=app.state.reference,
                        out_root=s.output, pseudonym_key=pseudonym_key(s.home, s.pseudonym_key))


# --- what the pages show ---------------------------------------------------------------------------

def _history(ledger: Ledger, hsaid: str) -> list[ReceivedFile]:
    with ledger.reading() as s:
        return list(s.scalars(select(ReceivedFile).where(ReceivedFile.unit_hsaid == hsaid)
                              .order_by(ReceivedFile.received_at.desc(), ReceivedFile.id.desc()).limit(200)))


def _replaced(ledger: Ledger, f: ReceivedFile) -> ReceivedFile | None:
    """The file a resubmission replaces: the newest earlier non-AVVISAD file of the same slot."""
    if f.unit_hsaid is None:
        return None
    with ledger.reading() as s:
        q = select(ReceivedFile).where(
            ReceivedFile.unit_hsaid == f.unit_hsaid, ReceivedFile.file_type == f.file_type,
            ReceivedFile.period == f.period, ReceivedFile.status.in_(("GODKAND", "DELVIS_GODKAND")),
            ReceivedFile.id != f.id, ReceivedFile.received_at <= f.received_at)
        return s.scalars(q.order_by(ReceivedFile.received_at.desc(), ReceivedFile.id.desc())).first()


def record_diff(store: RawStore, new: ReceivedFile, old: ReceivedFile) -> dict:
    """Rows added, removed and changed between two files' accepted rows, keyed by besok_id."""
    def rows(f):
        if f.accepted_path is None:
            return pl.DataFrame(schema={"besok_id": pl.Utf8})
        return pl.read_parquet(store.resolve(f.accepted_path)).drop("rad")

    a, b = rows(old), rows(new)
    added = b.join(a, on="besok_id", how="anti")["besok_id"].to_list()
    removed = a.join(b, on="besok_id", how="anti")["besok_id"].to_list()
    common = [c for c in b.columns if c in a.columns and c != "besok_id"]
    joined = b.join(a, on="besok_id", how="inner", suffix="__old")
    changed_mask = pl.any_horizontal([pl.col(c).ne_missing(pl.col(f"{c}__old")) for c in common]) if common else pl.lit(False)
    changed = joined.filter(changed_mask)["besok_id"].to_list()
    return {"old": old, "added": added, "removed": removed, "changed": changed}


def preview(app, f: ReceivedFile) -> dict | None:
    """The underlag this file would give if it stayed gällande (not for AVVISAD files)."""
    if f.status == "AVVISAD" or f.unit_hsaid is None:
        return None
    unit = app.state.reference.units.get(f.unit_hsaid)
    if unit is None:
        return None
    accepted = pl.read_parquet(app.state.store.resolve(f.accepted_path)) if f.accepted_path else pl.DataFrame()
    history = reh_history(_close_ctx(app), unit, f.period, app.state.clock()) if unit.filtyp == "REH" else None
    lines = underlag_for(unit=unit, period=f.period, accepted=accepted,
                         listing=load_listing(app.state.reference.root, f.period), history=history,
                         prices=price_list_for(f.period))
    return {"lines": lines, "total": total(lines)}


def board(app, period: str) -> list[dict]:
    """The month board: every active unit and filtyp, its delivery, rejected share and amounts."""
    ledger, ref = app.state.ledger, app.state.reference
    window = window_for(period)
    with ledger.reading() as s:
        closed = s.get(PeriodClose, period) is not None
        lines = list(s.scalars(select(UnderlagLineRow).where(UnderlagLineRow.close_period == period)))
        prev_period = period_of_window(window.opens - dt.timedelta(days=1))
        prev_lines = list(s.scalars(select(UnderlagLineRow).where(UnderlagLineRow.close_period == prev_period,
                                                                  UnderlagLineRow.corrected_period.is_(None))))
    rows = []
    for unit in sorted(ref.units.values(), key=lambda u: (u.filtyp, u.hsaid)):
        if not unit.active_in(period):
            continue
        key = FileKey(unit_hsaid=unit.hsaid, file_type=unit.filtyp, period=period)
        limit = ledger.dispens_deadline(unit.hsaid, period) or window.deadline
        on_time = ledger.gallande(key, received_before=limit)
        newest = ledger.gallande(key)
        status = "i tid" if on_time else ("sen" if newest else "saknas")
        f = on_time or newest
        amount = sum((Decimal(ln.amount) for ln in lines if ln.unit_hsaid == unit.hsaid and ln.file_type == unit.filtyp), Decimal(0))
        prev = sum((Decimal(ln.amount) for ln in prev_lines if ln.unit_hsaid == unit.hsaid and ln.file_type == unit.filtyp), Decimal(0))
        rows.append({"unit": unit, "status": status, "file": f, "dispens": ledger.dispens_deadline(unit.hsaid, period),
                     "rejected_share": (f.rows_rejected / f.rows_total) if f and f.rows_total else None,
                     "amount": amount if closed else None, "change": (amount - prev) if closed and prev_lines else None})
    return rows


# --- routes ----------------------------------------------------------------------------------------

def _routes(app: FastAPI) -> None:  # noqa: C901 - one place lists every route (the isolation test reads them)
    @app.exception_handler(HTTPException)
    async def _errors(request: Request, exc: HTTPException):
        if exc.status_code == 303:
            return RedirectResponse(exc.headers["Location"], status_code=303)
        resp = _page(request, "error.html", current_user(request), status=exc.status_code, message=exc.detail)
        resp.status_code = exc.status_code
        return resp

    @app.get("/login", response_class=HTMLResponse)
    async def login_page(request: Request):
        token = secrets.token_urlsafe(32)
        resp = _page(request, "login.html", None, csrf=token, error=None)
        resp.set_cookie(PRE_COOKIE, token, httponly=True, samesite="strict", secure=app.state.secure)
        return resp

    @app.post("/login")
    async def login(request: Request):
        form = await request.form()
        pre = request.cookies.get(PRE_COOKIE, "")
        if not pre or not hmac.compare_digest(str(form.get("csrf", "")), pre):
            raise HTTPException(status_code=403, detail="Ogiltig eller saknad CSRF-token")
        token = sign_in(app.state.ledger, str(form.get("username", ""))[:128], str(form.get("password", "")))
        if token is None:
            fresh = secrets.token_urlsafe(32)
            resp = _page(request, "login.html", None, csrf=fresh, error="Fel användarnamn eller lösenord")
            resp.set_cookie(PRE_COOKIE, fresh, httponly=True, samesite="strict", secure=app.state.secure)
            resp.status_code = 401
            return resp
        resp = RedirectResponse("/", status_code=303)
        resp.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=app.state.secure, max_age=8 * 3600)
        resp.delete_cookie(PRE_COOKIE)
        return resp

    @app.post("/logout")
    async def logout(request: Request):
        user = _require(request)
        await _form(request, user)
        sign_out(app.state.ledger, request.cookies.get(COOKIE))
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(COOKIE)
        return resp

    @app.get("/")
    async def home(request: Request):
        user = _require(request)
        if user.analyst:
            return RedirectResponse(f"/analys/{period_of_window(app.state.clock())}", status_code=303)
        return RedirectResponse(f"/enhet/{sorted(user.units)[0]}", status_code=303)

    # Unit pages ------------------------------------------------------------------------------------

    @app.get("/enhet/{hsaid}", response_class=HTMLResponse)
    async def unit_page(request: Request, hsaid: str):
        user, unit = _unit(request, hsaid)
        now = app.state.clock()
        period = period_of_window(now)
        window = window_for(period)
        deadline = app.state.ledger.dispens_deadline(hsaid, period) or window.deadline
        with app.state.ledger.reading() as s:
            closes = list(s.scalars(select(PeriodClose).order_by(PeriodClose.period.desc()).limit(12)))
            answers = {(a.period, a.file_type): a for a in s.scalars(
                select(Approval).where(Approval.unit_hsaid == hsaid).order_by(Approval.id))}
            closed_lines = list(s.scalars(select(UnderlagLineRow).where(UnderlagLineRow.unit_hsaid == hsaid)))
        underlag = []
        for pc in closes:
            mine = [ln for ln in closed_lines if ln.close_period == pc.period and ln.file_type == unit.filtyp]
            if mine:
                state = app.state.ledger.period_state(pc.period)
                underlag.append({"period": pc.period, "lines": mine, "total": sum(Decimal(x.amount) for x in mine),
                                 "answer": answers.get((pc.period, unit.filtyp)),
                                 "finalised": state is not None and state.state == "FINALISED"})
        return _page(request, "unit.html", user, unit=unit, period=period, deadline=deadline,
                     window_open=window.opens <= now < deadline, seconds_left=max(0, int((deadline - now).total_seconds())),
                     history=_history(app.state.ledger, hsaid), underlag=underlag, names=COMPONENT_NAMES)

    @app.post("/enhet/{hsaid}/upload")
    async def upload(request: Request, hsaid: str):
        received_at = app.state.clock()  # stamped at arrival, before the body is read
        user, unit = _unit(request, hsaid)
        if int(request.headers.get("content-length") or 0) > MAX_UPLOAD:
            raise HTTPException(status_code=413, detail="Filen är större än 200 MB (F06) och togs inte emot")
        form = await _form(request, user)
        upload_file = form.get("file")
        if upload_file is None or not getattr(upload_file, "filename", None):
            raise HTTPException(status_code=400, detail="Välj en fil att skicka")
        name = display_name(upload_file.filename.replace("\\", "/").rsplit("/", 1)[-1])
        parts = name.split("_")
        if len(parts) >= 2 and parts[1].startswith("SE") and parts[1] != hsaid:
            raise HTTPException(status_code=403, detail="Filnamnet anger en annan vårdenhet än din")
        with tempfile.NamedTemporaryFile(dir=app.state.store.root if app.state.store.root.exists() else None,
                                         prefix=".upload-", delete=False) as tmp:
            size = 0
            while chunk := await upload_file.read(1 << 20):
                size += len(chunk)
                if size > MAX_UPLOAD:
                    Path(tmp.name).unlink(missing_ok=True)
                    raise HTTPException(status_code=413, detail="Filen är större än 200 MB (F06) och togs inte emot")
                tmp.write(chunk)
        try:
            sub = submit(Path(tmp.name), file_name=name, received_at=received_at, ledger=app.state.ledger,
                         store=app.state.store, reference=app.state.reference, source_kind="portal",
                         actor=user.username)
        finally:
            Path(tmp.name).unlink(missing_ok=True)
        return RedirectResponse(f"/kvittens/{sub.receipt_id}", status_code=303)

    @app.get("/kvittens/{receipt_id}", response_class=HTMLResponse)
    async def kvittens_page(request: Request, receipt_id: str):
        user, f = _file(request, receipt_id)
        kv = json.loads(f.kvittens_json)
        spec = spec_for(f.file_type, f.period) if f.file_type else None
        messages = {rule: (spec.message(rule) if spec else file_rule_messages().get(rule, ""))
                    for rule in kv["counts_by_rule"]}
        old = _replaced(app.state.ledger, f)
        return _page(request, "kvittens.html", user, f=f, kv=kv, findings=kv["findings"][:FINDINGS_SHOWN],
                     messages=messages, preview=preview(app, f), names=COMPONENT_NAMES,
                     diff=record_diff(app.state.store, f, old) if old else None)

    @app.get("/kvittens/{receipt_id}/findings.csv")
    async def kvittens_csv(request: Request, receipt_id: str):
        _, f = _file(request, receipt_id)
        return FileResponse(app.state.store.resolve(f.findings_path), media_type="text/csv; charset=utf-8",
                            filename=f"{f.file_name.removesuffix('.csv')}_fel.csv")

    @app.get("/kvittens/{receipt_id}/kvittens.json")
    async def kvittens_json(request: Request, receipt_id: str):
        _, f = _file(request, receipt_id)
        return Response(f.kvittens_json, media_type="application/json",
                        headers={"Content-Disposition": f'attachment; filename="{f.receipt_id}.json"'})

    @app.get("/enhet/{hsaid}/underlag/{period}.xlsx")
    async def unit_workbook(request: Request, hsaid: str, period: str):
        _, unit = _unit(request, hsaid)
        path = app.state.settings.output / period / "enheter" / f"{hsaid}_{unit.filtyp}_{period}.xlsx"
        if not path.is_file():
            raise HTTPException(status_code=404, detail="Underlaget är inte publicerat")
        return FileResponse(path, filename=path.name)

    @app.post("/enhet/{hsaid}/underlag/{period}/svar")
    async def respond(request: Request, hsaid: str, period: str):
        user, unit = _unit(request, hsaid)
        form = await _form(request, user)
        try:
            answer(app.state.ledger, unit_hsaid=hsaid, file_type=unit.filtyp, period=period,
                   action="INVAND" if form.get("action") == "INVAND" else "GODKANN",
                   comment=str(form.get("comment") or ""), actor=user.username)
        except ApprovalError as e:
            raise HTTPException(status_code=400, detail=str(e)) from None
        return RedirectResponse(f"/enhet/{hsaid}", status_code=303)

    # Analyst pages ---------------------------------------------------------------------------------

    @app.get("/analys/{period}", response_class=HTMLResponse)
    async def month_board(request: Request, period: str):
        user = _analyst(request)
        window = window_for(period)
        state = app.state.ledger.period_state(period)
        return _page(request, "board.html", user, period=period, window=window, rows=board(app, period),
                     closed=app.state.ledger.period_closed(period), state=state.state if state else "OPEN",
                     can_close=app.state.clock() >= window.deadline)

    @app.post("/analys/{period}/dispens")
    async def grant(request: Request, period: str):
        user = _analyst(request)
        form = await _form(request, user)
        try:
            until = parse_instant(str(form.get("until")))
            if until <= window_for(period).deadline:
                raise ValueError("en dispens måste sluta efter den ordinarie tidsgränsen")
            app.state.ledger.grant_dispens(unit_hsaid=str(form.get("unit")), period=period, deadline=until,
                                           reason=str(form.get("reason") or ""), actor=user.username)
        except ValueError as e:
            raise HTTPException(status_code=400, detail=str(e)) from None
        return RedirectResponse(f"/analys/{period}", status_code=303)

    @app.post("/analys/{period}/close")
    async def close(request: Request, period: str):
        user = _analyst(request)
        await _form(request, user)
        ctx = _close_ctx(app)
        try:
            close_period(period, at=app.state.clock(), ctx=ctx, actor=user.username)
            from vardfil.report import write_reports

            write_reports(period, ctx=ctx)
        except CloseTooEarly as e:
            raise HTTPException(status_code=400, detail=str(e)) from None
        return RedirectResponse(f"/analys/{period}", status_code=303)

    @app.post("/analys/{period}/finalise")
    async def finalise_period(request: Request, period: str):
        user = _analyst(request)
        await _form(request, user)
        try:
            finalise(app.state.ledger, period=period, actor=user.username)
        except ApprovalError as e:
            raise HTTPException(status_code=400, detail=str(e)) from None
        return RedirectResponse(f"/analys/{period}", status_code=303)

    @app.get("/analys/{period}/download/{name}")
    async def download(request: Request, period: str, name: str):
        _analyst(request)
        allowed = {"underlag.parquet", "besok.parquet", "acg.parquet", f"region_{period}.xlsx"}
        if name not in allowed:  # never a path from the request
            raise HTTPException(status_code=404, detail="Filen finns inte")
        path = app.state.settings.output / period / name
        if not path.is_file():
            raise HTTPException(status_code=404, detail="Filen finns inte (perioden är inte stängd)")
        return FileResponse(path, filename=name)

    @app.get("/analys/audit/log", response_class=HTMLResponse)
    async def audit(request: Request):
        user = _analyst(request)
        return _page(request, "audit.html", user, entries=app.state.ledger.audit_entries(limit=300))

    @app.get("/healthz")
    async def healthz():
        return {"ok": True}
