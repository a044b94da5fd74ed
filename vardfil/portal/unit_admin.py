"""A unit's own administration: its accounts and its journal systems' API tokens, run by the
unit's administrators (role ``unit_admin``) as the region's directory makes each unit responsible
for its own staff. Nobody types a password for somebody else: a new or reset account gets a
one-time link by mail. Everything is in the audit log (``vardfil.accounts``)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from vardfil.accounts import (
    add_unit_account,
    create_token,
    disable_unit_account,
    grant_unit_admin,
    link_is_live,
    reset_unit_account,
    revoke_unit_token,
    set_password_with_link,
    unit_tokens,
)
from vardfil.errors import Refused
from vardfil.portal.access import admin_of, checked_form, page, vardfil

router = APIRouter()


@router.get("/enhet/{hsaid}/konton", response_class=HTMLResponse)
def unit_accounts(request: Request, hsaid: str) -> Response:
    """The unit's accounts and API tokens, with the forms to change them."""
    user, unit = admin_of(request, hsaid)
    ledger = vardfil(request).ledger
    return page(
        request,
        "unit_admin.html",
        user,
        unit=unit,
        accounts=ledger.accounts.of_unit(hsaid),
        admins=ledger.accounts.admins_of_unit(hsaid),
        tokens=unit_tokens(ledger, hsaid),
        new_token=None,
    )


async def _act(request: Request, hsaid: str, action: Callable[..., object], **fixed: str) -> Response:
    user, _ = await run_in_threadpool(admin_of, request, hsaid)
    form = await checked_form(request, user)
    try:
        await run_in_threadpool(lambda: action(vardfil(request), form, user.actor, **fixed))
    except Refused as e:
        raise HTTPException(status_code=400, detail=str(e)) from None
    return RedirectResponse(f"/enhet/{hsaid}/konton", status_code=303)


@router.post("/enhet/{hsaid}/konton")
async def add_account(request: Request, hsaid: str) -> Response:
    """Add a person: the account gets a one-time link by mail to choose a password."""
    return await _act(
        request,
        hsaid,
        lambda app, form, actor: add_unit_account(
            app,
            unit_hsaid=hsaid,
            username=str(form.get("username") or "").strip(),
            email=str(form.get("email") or "").strip(),
            actor=actor,
        ),
    )


# Accounts and tokens are addressed by their ids: a name is text a person typed, and one with a
# "/", a "?" or nothing in it made an address that did not reach its route. The older addresses by
# name stay for bookmarks and scripts.


@router.post("/enhet/{hsaid}/konto/{account_id}/inaktivera")
async def disable_account(request: Request, hsaid: str, account_id: int) -> Response:
    """The person has left: the account signs nobody in."""
    return await _act(
        request,
        hsaid,
        lambda app, form, actor: disable_unit_account(app, unit_hsaid=hsaid, account=account_id, actor=actor),
    )


@router.post("/enhet/{hsaid}/konto/{account_id}/aterstall")
async def reset_account(request: Request, hsaid: str, account_id: int) -> Response:
    """A new one-time link by mail; the old password stops working now."""
    return await _act(
        request,
        hsaid,
        lambda app, form, actor: reset_unit_account(app, unit_hsaid=hsaid, account=account_id, actor=actor),
    )


@router.post("/enhet/{hsaid}/konto/{account_id}/admin")
async def make_admin(request: Request, hsaid: str, account_id: int) -> Response:
    """Make one of the unit's people (with a commission on it) an administrator of the unit."""
    return await _act(
        request,
        hsaid,
        lambda app, form, actor: grant_unit_admin(
            app, unit_hsaid=hsaid, account_id=account_id, actor=actor, revoke=form.get("action") == "revoke"
        ),
    )


@router.post("/enhet/{hsaid}/konton/{username}/inaktivera")
async def disable_account_by_name(request: Request, hsaid: str, username: str) -> Response:
    """The older address of ``disable_account``."""
    return await _act(
        request,
        hsaid,
        lambda app, form, actor: disable_unit_account(app, unit_hsaid=hsaid, account=username, actor=actor),
    )


@router.post("/enhet/{hsaid}/konton/{username}/aterstall")
async def reset_account_by_name(request: Request, hsaid: str, username: str) -> Response:
    """The older address of ``reset_account``."""
    return await _act(
        request,
        hsaid,
        lambda app, form, actor: reset_unit_account(app, unit_hsaid=hsaid, account=username, actor=actor),
    )


@router.post("/enhet/{hsaid}/nycklar", response_class=HTMLResponse)
async def add_token(request: Request, hsaid: str) -> Response:
    """A new API token for the unit's journal system, shown once on the page that answers."""
    user, unit = await run_in_threadpool(admin_of, request, hsaid)
    form = await checked_form(request, user)
    app = vardfil(request)
    try:
        token = await run_in_threadpool(
            lambda: create_token(
                app.ledger, app.reference, unit_hsaid=hsaid, name=str(form.get("name") or "").strip(), actor=user.actor
            )
        )
    except Refused as e:
        raise HTTPException(status_code=400, detail=str(e)) from None
    return await run_in_threadpool(
        lambda: page(
            request,
            "unit_admin.html",
            user,
            unit=unit,
            accounts=app.ledger.accounts.of_unit(hsaid),
            admins=app.ledger.accounts.admins_of_unit(hsaid),
            tokens=unit_tokens(app.ledger, hsaid),
            new_token=token,
        )
    )


@router.post("/enhet/{hsaid}/nyckel/{token_id}/aterkalla")
async def revoke_token(request: Request, hsaid: str, token_id: int) -> Response:
    """Revoke one of the unit's tokens; it stops working at once."""
    return await _act(
        request,
        hsaid,
        lambda app, form, actor: revoke_unit_token(app.ledger, unit_hsaid=hsaid, token=token_id, actor=actor),
    )


@router.post("/enhet/{hsaid}/nycklar/{name}/aterkalla")
async def revoke_token_by_name(request: Request, hsaid: str, name: str) -> Response:
    """The older address of ``revoke_token``."""
    return await _act(
        request,
        hsaid,
        lambda app, form, actor: revoke_unit_token(app.ledger, unit_hsaid=hsaid, token=name, actor=actor),
    )


@router.get("/konto/losenord/{token}", response_class=HTMLResponse)
def password_page(request: Request, token: str) -> Response:
    """The page a one-time link opens: choose a password (no session: the link is the proof)."""
    live = link_is_live(vardfil(request).ledger, token)
    resp = page(request, "set_password.html", None, token=token, live=live, error=None, done=None)
    resp.status_code = 200 if live else 410
    return resp


@router.post("/konto/losenord/{token}", response_class=HTMLResponse)
async def set_password(request: Request, token: str) -> Response:
    """Set the password; the link is spent."""
    form = await request.form()
    first, second = str(form.get("password") or ""), str(form.get("password2") or "")
    error, done = None, None
    if first != second:
        error = "Lösenorden är inte lika"
    else:
        try:
            done = await run_in_threadpool(set_password_with_link, vardfil(request).ledger, token, first)
        except Refused as e:
            error = str(e)
        if done is None and error is None:
            error = "Länken är redan använd eller för gammal. Be enhetens administratör om en ny."
    resp = page(request, "set_password.html", None, token=token, live=done is None, error=error, done=done)
    resp.status_code = 200 if done else 400
    return resp
