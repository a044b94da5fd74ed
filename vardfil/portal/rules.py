"""The rule catalogue as pages: every version, every rule with its message and the precise
readings that concern it. Anyone signed in may read it: units, vendors' contacts and analysts look
up what a rule code in a kvittens means."""

from __future__ import annotations

from itertools import pairwise

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from filespec.catalogue import Catalogue, catalogue, diff, versions
from vardfil.portal.access import page, require_user

router = APIRouter()


def _catalogue(version: str) -> Catalogue:
    try:
        return catalogue(version)
    except KeyError:
        raise HTTPException(status_code=404, detail=f"Filspecifikationen {version[:30]} finns inte") from None


@router.get("/regler", response_class=HTMLResponse)
def rules_index(request: Request) -> Response:
    """Every shipped version, and what changed between consecutive versions of a filtyp."""
    user = require_user(request)
    known = versions()
    pairs = [(a, b) for a, b in pairwise(known) if a.split("-")[0] == b.split("-")[0]]
    return page(
        request,
        "rules_index.html",
        user,
        versions=[catalogue(v) for v in known],
        changes=[(a, b, diff(a, b)) for a, b in pairs],
    )


@router.get("/regler/{version}", response_class=HTMLResponse)
def rules_version(request: Request, version: str) -> Response:
    """Every rule of one version."""
    user = require_user(request)
    return page(request, "rules_version.html", user, cat=_catalogue(version))


@router.get("/regler/{version}/{code}", response_class=HTMLResponse)
def rule_page(request: Request, version: str, code: str) -> Response:
    """One rule: severity, fields, the Swedish message and its precise readings."""
    user = require_user(request)
    cat = _catalogue(version)
    entry = cat.rule(code)
    if entry is None:
        raise HTTPException(status_code=404, detail=f"Regeln {code[:10]} finns inte i {cat.spec.spec_version}")
    others = [v for v in versions() if v != version and catalogue(v).rule(code) is not None]
    starts = {v: catalogue(v).spec.valid_from for v in versions()}
    return page(request, "rule.html", user, cat=cat, rule=entry, others=others, starts=starts)
