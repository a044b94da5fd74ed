"""Sign-in and sign-out, the start page that sends each role where it works, and the
accessibility statement every page links to (public: the law wants it reachable by anyone)."""

from __future__ import annotations

import datetime as dt
import hmac
import math
import secrets
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markdown_it import MarkdownIt
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from filespec.calendar import STOCKHOLM
from vardfil.accounts import SESSION_HOURS, id_token_of, sign_in, sign_out
from vardfil.month.views import period_needing_action
from vardfil.oidc import OidcError
from vardfil.portal.access import COOKIE, PRE_COOKIE, checked_form, current_user, now, page, require_user, vardfil

router = APIRouter()


def _login_page(request: Request, error: str | None, status: int = 200) -> HTMLResponse:
    # A pre-session CSRF token in its own cookie: the sign-in form is posted before any session.
    token = secrets.token_urlsafe(32)
    settings = vardfil(request).settings
    resp = page(
        request,
        "login.html",
        None,
        csrf=token,
        error=error,
        idp=vardfil(request).oidc is not None,
        passwords=settings.password_signin,
        signed_out=request.query_params.get("utloggad") == "1",
    )
    resp.status_code = status
    resp.set_cookie(
        PRE_COOKIE, token, httponly=True, samesite="strict", secure=vardfil(request).settings.secure_cookies
    )
    return resp


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> Response:
    """The sign-in form."""
    return _login_page(request, None)


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the credentials; a session cookie and the start page, or the form again."""
    mode = vardfil(request).settings.password_signin
    if mode == "off":
        raise HTTPException(status_code=403, detail="Inloggning med lösenord är avstängd: logga in med SITHS eID")
    form = await request.form()  # a few kilobytes at most: BodyLimit
    pre = request.cookies.get(PRE_COOKIE, "")
    if not pre or not hmac.compare_digest(str(form.get("csrf", "")), pre):
        raise HTTPException(status_code=403, detail="Ogiltig eller saknad CSRF-token")
    address = request.client.host if request.client else ""
    # scrypt costs half a second of CPU by design: in a thread (it releases the GIL), never in
    # the event loop that stamps the arrival of files.
    result = await run_in_threadpool(
        sign_in,
        vardfil(request).ledger,
        str(form.get("username", ""))[:128],
        str(form.get("password", "")),
        address=address,
        roles=("admin",) if mode == "admin-only" else None,
    )
    if result.locked_until is not None:
        wait = (result.locked_until - dt.datetime.now(dt.UTC)).total_seconds()
        when = (
            f"om {max(1, math.ceil(wait))} sekunder"
            if wait < 60
            else f"efter kl. {result.locked_until.astimezone(STOCKHOLM):%H:%M}"
        )
        resp = _login_page(request, f"För många inloggningsförsök på kort tid. Försök igen {when}.", 429)
        resp.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return resp
    if result.token is None:
        return _login_page(request, "Fel användarnamn eller lösenord", 401)
    redirect = RedirectResponse("/", status_code=303)
    redirect.set_cookie(
        COOKIE,
        result.token,
        httponly=True,
        samesite="strict",
        secure=vardfil(request).settings.secure_cookies,
        max_age=SESSION_HOURS * 3600,
    )
    redirect.delete_cookie(PRE_COOKIE)
    return redirect


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session; a session from the IdP is ended there too (RP-initiated logout with the
    id token as the hint), and the IdP sends the browser back to the sign-in page."""
    user = await run_in_threadpool(require_user, request)
    await checked_form(request, user)
    app = vardfil(request)
    token = request.cookies.get(COOKIE)
    id_token = await run_in_threadpool(id_token_of, app.ledger, token)
    await run_in_threadpool(sign_out, app.ledger, token)
    target = "/login?utloggad=1"
    rp = app.oidc
    if id_token and rp is not None:
        try:
            at_idp = await run_in_threadpool(
                lambda: rp.end_session_url(id_token=id_token, state=secrets.token_urlsafe(16))
            )
        except OidcError:
            at_idp = None  # signed out here; the IdP's session ends with its own lifetime
        target = at_idp or target
    resp = RedirectResponse(target, status_code=303)
    resp.delete_cookie(COOKIE)
    return resp


@router.get("/")
def home(request: Request) -> Response:
    """Analysts to the board of the month whose window is open, unit users to their unit."""
    user = require_user(request)
    if user.analyst:
        # The board opens on the period that needs action: past its deadline and not closed, else
        # the open window's.
        target = period_needing_action(vardfil(request), now(request))
        return RedirectResponse(f"/analys/{target}", status_code=303)
    if user.auditor:
        return RedirectResponse("/logg", status_code=303)
    return RedirectResponse(f"/enhet/{sorted(user.units)[0]}", status_code=303)


STATEMENT = Path(__file__).parent / "tillganglighet.md"  # docs/tillganglighet.md, shipped with the portal


@lru_cache(maxsize=1)
def _statement_html() -> Markup:
    # The statement is written once, in docs/tillganglighet.md, and shown here as it is written;
    # raw HTML in it is not passed through.
    text = STATEMENT.read_text(encoding="utf-8")
    return Markup(MarkdownIt("commonmark", {"html": False}).render(text))


@router.get("/tillganglighet", response_class=HTMLResponse)
def accessibility_statement(request: Request) -> Response:
    """Tillgänglighetsredogörelsen (DOS-lagen), linked from the foot of every page."""
    return page(request, "statement.html", current_user(request), body=_statement_html())
