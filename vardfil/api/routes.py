"""The API's routes: thin, like the portal's. Authentication reads only the header, so a request
without a valid token is answered before a byte of its body is read."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from vardfil.accounts import token_unit
from vardfil.actors import Actor, may_read_file
from vardfil.actors import system as system_actor
from vardfil.actors import token as token_actor
from vardfil.app import App
from vardfil.delivery import claimed_unit
from vardfil.errors import CopyOfAnotherUnit
from vardfil.ledger.tables import ReceivedFile
from vardfil.metrics import kvittens_ready
from vardfil.month.intake import display_name, sent_name
from vardfil.systems import certificate_of, trusted_peer
from vardfil.web.body import BadUpload, read_upload
from vardfil.workers import WorkerPool, submit_job, validate_job

ERRORS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "bad_request",
    500: "internal",
    503: "unavailable",
}


def _error(status: int, detail: str) -> HTTPException:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return HTTPException(status_code=status, detail=detail, headers=headers)


def create_api(core: App, pool: WorkerPool) -> FastAPI:
    """The API application, mounted by the portal at ``/api/v1`` (one server, one port)."""
    api = FastAPI(
        title="vardfil API",
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        description=__doc__,
    )
    api.state.core, api.state.pool = core, pool

    @api.exception_handler(StarletteHTTPException)
    async def _errors(request: Request, exc: StarletteHTTPException) -> Response:
        body = {"error": ERRORS.get(exc.status_code, "error"), "detail": str(exc.detail)}
        return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    api.add_api_route(
        "/filer",
        send_file,
        methods=["POST"],
        summary="Skicka en redovisningsfil",
        response_description="Kvittensen (avsnitt 6.4)",
    )
    api.add_api_route("/kvittenser/{receipt_id}", kvittens, methods=["GET"], summary="En kvittens")
    api.add_api_route(
        "/kvittenser/{receipt_id}/findings.csv", findings, methods=["GET"], summary="Hela fellistan (CSV)"
    )
    return api


def _core(request: Request) -> App:
    core: App = request.app.state.core
    return core


async def _sender(request: Request) -> Sender:
    """Who sends: a bearer token (one unit), or a journal system's SITHS function certificate as
    the trusted proxy verified it (its registered units); 401 for anything else."""
    core = _core(request)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        found = await run_in_threadpool(token_unit, core.ledger, token.strip())
        if found is not None:
            return Sender(actor=token_actor(found.id), units=frozenset({found.unit_hsaid}))
    elif trusted_peer(request.state.peer, core.settings.trusted_proxies):
        cert = certificate_of(request.headers.get("x-client-verify"), request.headers.get("x-client-cert"))
        if cert is not None and cert.valid_at(dt.datetime.now(dt.UTC)):
            live = await run_in_threadpool(core.ledger.systems.live, cert.hsa_id)
            if live is not None:
                return Sender(actor=system_actor(cert.hsa_id), units=live[1])
    raise _error(401, "Saknar giltig API-nyckel (Authorization: Bearer …) eller giltigt funktionscertifikat.")


def _own_file(core: App, sender: Sender, receipt_id: str) -> ReceivedFile:
    f = core.ledger.files.file_by_receipt(receipt_id)
    # The sender's units, or a file with no valid name that this very sender sent (by its id):
    # anything else is answered as if it did not exist (a receipt id must not confirm someone
    # else's file).
    if f is None or not may_read_file(sender, f):
        raise _error(404, "Kvittensen finns inte.")
    return f


async def send_file(request: Request, test: Annotated[bool, Query()] = False) -> Response:
    """Record a file (or with ``test=true`` only judge it) and answer with its kvittens."""
    core, pool = _core(request), request.app.state.pool
    received_at = request.state.received_at  # the instant the request arrived (ArrivalStamp)
    try:
        sender = await _sender(request)
    except HTTPException:
        # Straight from a client, the refusal goes before a byte of the body is read. Behind the
        # region's proxy (which streams the body on, and has limited it), the body is read to its
        # end first: an answer while the proxy is still sending makes the server close a socket
        # with unread data, which resets it, and the sender would get the proxy's 502 instead.
        if trusted_peer(request.state.peer, core.settings.trusted_proxies):
            async for _ in request.stream():
                pass
        raise
    try:
        upload = await read_upload(request, staging=core.store.root / "incoming")
    except BadUpload as e:
        raise _error(400, str(e)) from None
    try:
        if upload.path is None or not upload.filename:
            raise _error(400, "Fältet 'file' med filen och dess namn saknas.")
        name = sent_name(upload.filename)
        claimed = claimed_unit(name)
        if claimed is not None and claimed not in sender.units:
            raise _error(403, "Filnamnet anger en vårdenhet som avsändaren inte får skicka för.")
        lane = pool.lane_for(upload.size)
        if test:
            kv = await pool.run(lane, validate_job, str(upload.path), name, received_at)
            kv["file_name"] = display_name(name)
            return JSONResponse(kv)
        try:
            done = await pool.run(
                lane, submit_job, str(upload.path), name, received_at, "api", sender.actor, sender.units
            )
        except CopyOfAnotherUnit as e:
            raise _error(409, str(e)) from None
        kvittens_ready(request, "api")
        return JSONResponse(done["kvittens"])
    finally:
        upload.discard()


async def kvittens(request: Request, receipt_id: str) -> Response:
    """The kvittens of one of the sender's files."""
    sender = await _sender(request)
    f = await run_in_threadpool(_own_file, _core(request), sender, receipt_id)
    body: dict[str, Any] = json.loads(f.kvittens_json)
    if body.get("findings"):  # rows and visits of the file: a read of patient-level data
        await _log_read(request, sender, f, kind="kvittens", action="läsa", file=f.receipt_id)
    return JSONResponse(body)


async def findings(request: Request, receipt_id: str) -> Response:
    """The full findings list of one of the sender's files."""
    sender = await _sender(request)
    f = await run_in_threadpool(_own_file, _core(request), sender, receipt_id)
    name = f"{f.file_name.removesuffix('.csv')}_fel.csv"
    await _log_read(request, sender, f, kind="fellista", action="ladda_ner", file=name)
    return FileResponse(
        _core(request).store.resolve(f.findings_path), media_type="text/csv; charset=utf-8", filename=name
    )


async def _log_read(request: Request, sender: Sender, f: ReceivedFile, *, kind: str, action: str, file: str) -> None:
    """The access-log entry of this read (``vardfil.access``); 503 when it cannot be written."""
    from vardfil.access import AccessLogUnavailable, logged, period_of, reader_of_sender
    from vardfil.logs import request_id

    reader = reader_of_sender(
        sender.actor, address=request.client.host if request.client else None, request_id=request_id.get()
    )
    try:
        await run_in_threadpool(
            lambda: logged(
                _core(request),
                reader,
                action=action,
                kind=kind,
                unit_hsaid=f.unit_hsaid,
                period=period_of(f),
                file=file,
                receipts=[f.receipt_id],
            )
        )
    except AccessLogUnavailable:
        raise _error(503, "Åtkomstloggen kan inte skrivas just nu; uppgifterna lämnas inte ut. Försök igen.") from None


@dataclass(frozen=True, kw_only=True)
class Sender:
    """Who sends or asks through the API: a token (``token:<id>``, one unit) or a journal system
    (``system:<HSA-id>``, its registered units)."""

    actor: Actor
    units: frozenset[str]

    def may_see_unit(self, hsaid: str | None) -> bool:
        return hsaid is not None and hsaid in self.units
