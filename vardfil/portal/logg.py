"""The auditor's pages (role ``auditor``): the access log's monthly follow-up with its sign-off,
and a patient's extract. Not the analysts': they are among the readers followed up."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from filespec.calendar import Period
from vardfil import access
from vardfil.accounts import User
from vardfil.errors import Refused
from vardfil.portal.access import checked_form, now, page, require_user, served_period, vardfil

router = APIRouter()


def require_auditor(request: Request) -> User:
    """An auditor (or admin); 403 for anyone else."""
    user = require_user(request)
    if not user.auditor:
        raise HTTPException(status_code=403, detail="Endast för logggranskare")
    return user


@router.get("/logg", response_class=HTMLResponse)
def index(request: Request) -> Response:
    """The months to follow up (the last twelve) and the patient extract's form."""
    user = require_auditor(request)
    this = Period.of_date(now(request).date())
    months = [this.shift(-i) for i in range(12)]
    signed = {r.period for r in vardfil(request).ledger.accesses.reviews()}
    return page(request, "logg.html", user, months=months, signed=signed)


@router.get("/logg/uppfoljning/{period}", response_class=HTMLResponse)
def follow_up(request: Request, period: str) -> Response:
    """The follow-up report of a calendar month."""
    user = require_auditor(request)
    p = served_period(period)
    report = access.review(vardfil(request), p)
    return page(request, "logg_review.html", user, report=report, kinds=access.KINDS, actions=access.ACTIONS)


@router.post("/logg/uppfoljning/{period}")
async def sign(request: Request, period: str) -> Response:
    """The reviewer signs the report as it reads now."""
    user = await run_in_threadpool(require_auditor, request)
    form = await checked_form(request, user)
    p = served_period(period)
    report = await run_in_threadpool(
        lambda: access.sign_review(
            vardfil(request), p, actor=user.actor, comment=str(form.get("comment") or "") or None
        )
    )
    return page(request, "logg_review.html", user, report=report, kinds=access.KINDS, actions=access.ACTIONS)


@router.post("/logg/patient", response_class=HTMLResponse)
async def patient(request: Request) -> Response:
    """A patient's extract: who accessed files that hold them (posted, never in an address)."""
    user = await run_in_threadpool(require_auditor, request)
    form = await checked_form(request, user)
    number = str(form.get("personnummer") or "")
    try:
        extract = await run_in_threadpool(lambda: access.patient_extract(vardfil(request), number, actor=user.actor))
    except Refused as e:
        raise HTTPException(status_code=400, detail=str(e)) from None
    return page(request, "logg_patient.html", user, extract=extract, kinds=access.KINDS, actions=access.ACTIONS)
