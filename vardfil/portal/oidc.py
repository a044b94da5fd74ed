"""Signing in the region's way: SITHS through the IdP (OpenID Connect), rights from the
commissions (``vardfil.rights``), signing out at the IdP too, and the IdP's back-channel logout.

- ``GET /oidc/login``: a new ``state`` (only its hash is kept, bound to this browser by a cookie),
  ``nonce`` and PKCE verifier; the browser is sent to the IdP.
- ``GET /oidc/callback``: the state taken once, the code exchanged, the id token verified
  (``vardfil.oidc``), the person let in or refused with a Swedish page that says why and what to do.
- ``POST /logout`` (``signin``) ends the session here and sends the browser to the IdP's
  ``end_session_endpoint`` with ``id_token_hint`` when the session came from it.
- ``POST /oidc/backchannel-logout``: the IdP's logout token (verified, used once) ends the
  sessions of its ``sid`` (or ``sub``) at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from vardfil.accounts import SESSION_HOURS, sign_in_person
from vardfil.actors import job, person
from vardfil.app import App
from vardfil.ledger import utcnow
from vardfil.metrics import signed_in
from vardfil.oidc import OidcError, RelyingParty
from vardfil.portal.access import COOKIE, page, vardfil
from vardfil.rights import Grant, Person, Refusal, decide

router = APIRouter()
BINDING_COOKIE = "vardfil_oidc"
MAX_LOGIN_AGE_MINUTES = 10  # from the IdP's first page to the callback


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _rp(app: App) -> RelyingParty:
    if app.oidc is None:
        raise HTTPException(status_code=404, detail="Inloggning med SITHS är inte inställd i denna tjänst")
    return app.oidc


def refusal_page(request: Request, title: str, message: str, *, status: int = 403) -> HTMLResponse:
    """A refused sign-in: what happened and what to do, and the way back to try again."""
    resp = page(request, "refused.html", None, title=title, message=message, idp=vardfil(request).oidc is not None)
    resp.status_code = status
    return resp


@router.get("/oidc/login")
def login(request: Request) -> Response:
    """Start a sign-in at the IdP."""
    app = vardfil(request)
    rp = _rp(app)
    state, nonce, binding = (secrets.token_urlsafe(32) for _ in range(3))
    verifier = secrets.token_urlsafe(48)  # 64 characters (RFC 7636: 43-128)
    try:
        url = rp.authorization_url(state=state, nonce=nonce, code_verifier=verifier)
    except OidcError as e:
        return refusal_page(request, "Inloggningstjänsten svarar inte", str(e), status=503)
    app.ledger.accounts.add_pending_login(
        state_sha256=_sha(state), binding_sha256=_sha(binding), nonce=nonce, code_verifier=verifier, now=utcnow()
    )
    resp = RedirectResponse(url, status_code=303)
    resp.set_cookie(
        BINDING_COOKIE,
        binding,
        max_age=MAX_LOGIN_AGE_MINUTES * 60,
        httponly=True,
        # Lax: the IdP's redirect back is a top-level navigation from another site, which a
        # Strict cookie would not go with; the cookie binds the state, it signs nobody in.
        samesite="lax",
        secure=app.settings.secure_cookies,
        path="/oidc",
    )
    return resp


@router.get("/oidc/callback")
async def callback(request: Request) -> Response:
    """The IdP's answer: a person let in, or a page that says why not."""
    app = vardfil(request)
    rp = _rp(app)
    q = request.query_params
    if q.get("error"):
        return refusal_page(
            request,
            "Inloggningen avbröts",
            "Inloggningstjänsten avbröt inloggningen"
            + (f" ({(q.get('error_description') or '')[:200]})" if q.get("error_description") else "")
            + ". Försök igen, eller kontakta regionens IT-support om det upprepas.",
        )
    state, code = q.get("state") or "", q.get("code") or ""
    binding = request.cookies.get(BINDING_COOKIE, "")
    pending = await run_in_threadpool(
        app.ledger.accounts.take_pending_login,
        state_sha256=_sha(state),
        binding_sha256=_sha(binding),
        now=utcnow(),
        max_age=dt.timedelta(minutes=MAX_LOGIN_AGE_MINUTES),
    )
    if pending is None or not code:
        signed_in("oidc", "state")
        return refusal_page(
            request,
            "Inloggningen kan inte slutföras",
            "Inloggningssvaret är redan använt, för gammalt eller hör till en annan webbläsare. "
            "Börja om inloggningen från vardfils inloggningssida.",
            status=400,
        )
    try:
        tokens = await run_in_threadpool(
            lambda: rp.exchange(code=code, code_verifier=pending.code_verifier, nonce=pending.nonce)
        )
    except OidcError as e:
        await run_in_threadpool(
            app.ledger.add_audit,
            actor=job("portal"),
            action="sign_in_refused",
            subject="oidc",
            detail={"reason": e.reason},
        )
        signed_in("oidc", e.reason)
        return refusal_page(request, "Inloggningen kunde inte verifieras", str(e), status=401)
    claims = tokens.claims
    hsa = str(claims.get(rp.settings.claim("employeeHsaId")) or "")
    verdict = await run_in_threadpool(_verdict, app, rp, claims, hsa)
    if isinstance(verdict, Refusal):
        await run_in_threadpool(_audit_refusal, app, verdict, hsa, claims)
        signed_in("oidc", verdict.code)
        return refusal_page(request, verdict.title, verdict.message)
    signed = await run_in_threadpool(
        lambda: sign_in_person(
            app.ledger, verdict, id_token=tokens.id_token, sid=claims.get("sid"), sub=str(claims["sub"])
        )
    )
    if signed.token is None:
        return refusal_page(
            request,
            "Ditt konto är spärrat i vardfil",
            "En administratör har spärrat ditt konto i vardfil. Kontakta din enhets administratör.",
        )
    resp = RedirectResponse("/", status_code=303)
    resp.set_cookie(
        COOKIE,
        signed.token,
        httponly=True,
        samesite="strict",
        secure=app.settings.secure_cookies,
        max_age=SESSION_HOURS * 3600,
    )
    resp.delete_cookie(BINDING_COOKIE, path="/oidc")
    return resp


def _verdict(app: App, rp: RelyingParty, claims: dict[str, Any], hsa: str) -> Person | Refusal:
    """``vardfil.rights.decide`` on the claims, with the person's grants (a grant the catalogue
    suspended, its commission gone, gives nothing until it is lifted)."""
    found = app.ledger.accounts.grants(hsa) if hsa else []
    return decide(
        claims,
        accepted_acr=rp.settings.acr_values,
        purposes=rp.settings.purposes,
        units=_active_units(app),
        grants=[Grant(role=g.role, unit_hsaid=g.unit_hsaid) for g in found if g.suspended_at is None],
        claim=rp.settings.claim,
    )


def _active_units(app: App) -> dict[str, Any]:
    """The register's units, by HSA-id (a commission on a unit outside it gives nothing)."""
    return dict(app.reference.units)


def _audit_refusal(app: App, verdict: Refusal, hsa: str, claims: dict[str, Any]) -> None:
    who = person(hsa) if hsa and _hsa_shaped(hsa) else job("portal")
    app.ledger.add_audit(
        actor=who,
        action="sign_in_refused",
        subject=who,
        detail={"reason": verdict.code, "acr": claims.get("acr"), "amr": claims.get("amr")},
    )


def _hsa_shaped(text: str) -> bool:
    from vardfil.rights import HSAID

    return HSAID.fullmatch(text) is not None


@router.post("/oidc/backchannel-logout")
async def backchannel_logout(request: Request) -> Response:
    """OIDC Back-Channel Logout 1.0: the IdP says a session ended; every portal session of it ends."""
    app = vardfil(request)
    rp = _rp(app)
    form = await request.form()
    token = str(form.get("logout_token") or "")
    headers = {"Cache-Control": "no-store"}
    try:
        claims = await run_in_threadpool(rp.verify_logout_token, token)
    except OidcError:
        return JSONResponse({"error": "invalid_request"}, status_code=400, headers=headers)
    if not await run_in_threadpool(app.ledger.accounts.first_sight_of, _sha(str(claims["jti"])), utcnow()):
        return JSONResponse({"error": "invalid_request"}, status_code=400, headers=headers)
    ended = await run_in_threadpool(
        lambda: app.ledger.accounts.end_idp_sessions(sid=claims.get("sid"), sub=claims.get("sub"))
    )
    await run_in_threadpool(
        app.ledger.add_audit,
        actor=job("portal"),
        action="backchannel_logout",
        subject="oidc",
        detail={"sessions": ended, "by": "sid" if claims.get("sid") else "sub"},
    )
    return Response(status_code=200, headers=headers)
