"""ASGI middleware of the web front doors (portal and API): the arrival stamp, the request id and
access line, the body limit and the security headers. Pure ASGI, not Starlette's BaseHTTPMiddleware: they must act before a
handler runs and while the body streams, without buffering it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


# Content-Security-Policy: only this origin's own styles and scripts (no inline code), never
# framed, forms posted only here. The pages carry health data; a third-party script is a leak.
def csp(form_targets: tuple[str, ...] = ()) -> str:
    """The policy; ``form_targets``: other origins a form may lead to (the IdP: signing out posts
    to vardfil, which redirects there, and a redirect after a form is held to ``form-action``)."""
    actions = " ".join(("'self'", *form_targets))
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"frame-ancestors 'none'; form-action {actions}; base-uri 'none'; object-src 'none'"
    )


CSP = csp()
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


HSTS = b"max-age=31536000; includeSubDomains"


class ArrivalStamp:
    """Stamps every request with the instant it arrived, before anything else runs.

    uvicorn calls the application as soon as a request's head has arrived, before its body: this
    is the instant a file "arrived" (``received_at``) for the portal and the API alike, whatever
    happens to the body afterwards (a slow upload, a queue for a validation worker).
    """

    def __init__(self, app: ASGIApp, clock: Callable[[], dt.datetime]):
        self.app, self.clock = app, clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            state = scope.setdefault("state", {})
            state["received_at"] = self.clock()
            # The same instant on the monotonic clock, for the kvittens latency: the server's
            # clock may be a test's or the burst benchmark's, running faster than time.
            state["arrived"] = time.perf_counter()
        await self.app(scope, receive, send)


class RequestLog:
    """One request id a request (the client's ``X-Request-ID`` when it is a sane one, else a new
    one): in the response header, in every log line and audit entry the request makes, and in one
    JSON access line when it is answered, which also counts it (``vardfil_http_requests_total``,
    by the route's template: never the values in the path)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from vardfil import logs
        from vardfil.metrics import HTTP_DURATION, HTTP_REQUESTS

        offered = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        rid = logs.new_request_id(offered)
        started = time.perf_counter()
        status = 500

        async def with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        token = logs.request_id.set(rid)
        try:
            await self.app(scope, receive, with_id)
        finally:
            duration = time.perf_counter() - started
            route = route_of(scope)
            HTTP_REQUESTS.labels(route, scope["method"], str(status)).inc()
            HTTP_DURATION.labels(route).observe(duration)
            if route not in QUIET_ROUTES or status >= 400:
                access.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "route": route,
                        "path": logs.redact_path(scope["path"]),
                        "status": status,
                        "duration_ms": round(duration * 1000, 1),
                    },
                )
            logs.request_id.reset(token)


access = logging.getLogger("vardfil.access")
# Probes and scrapes come every few seconds: a line each would bury the requests people made.
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics", "/static"})


def route_of(scope: Scope) -> str:
    """The template of the route that answered (``/enhet/{hsaid}/upload``), ``/static`` for a
    static file, ``other`` for an address no route knows."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path is None:
        return "other"
    if path == "/static":
        return "/static"
    root = str(scope.get("root_path", ""))
    return f"{root}{path}" if root.endswith("/api/v1") else str(path)


class PeerStamp:
    """Keeps the request's own TCP peer (``state["peer"]``) before any proxy header is read: the
    client-certificate headers count only when that peer is a trusted proxy (``vardfil.systems``),
    whatever X-Forwarded-For says the client was."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            client = scope.get("client")
            scope.setdefault("state", {})["peer"] = client[0] if client else None
        await self.app(scope, receive, send)


class BodyTooLarge(Exception):
    """Raised from ``receive`` when a request body passes its limit."""


class BodyLimit:
    """Refuses a request body past its limit while it is read, never after: a declared
    Content-Length over the limit is answered 413 before a byte of the body is read, and a
    chunked body is cut off at the limit. Upload routes get the largest file a spec accepts plus
    room for the multipart envelope; every other route a few kilobytes (a sign-in form does not
    need 300 MB)."""

    def __init__(
        self, app: ASGIApp, *, upload_limit: int, form_limit: int = 64 * 1024, is_upload: Callable[[str], bool]
    ):
        self.app, self.upload_limit, self.form_limit, self.is_upload = app, upload_limit, form_limit, is_upload

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.upload_limit if self.is_upload(scope["path"]) else self.form_limit
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(scope, send)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _too_large(scope, send)


async def _too_large(scope: Scope, send: Send) -> None:
    # The API answers JSON; a person in the portal gets a line of Swedish text.
    if scope["path"].startswith("/api/"):
        body = json.dumps(
            {"error": "too_large", "detail": "Filen är större än 200 MB (F06) och togs inte emot."}, ensure_ascii=False
        ).encode()
        ctype = b"application/json"
    else:
        body = "Filen eller formuläret är för stort (högst 200 MB) och togs inte emot.".encode()
        ctype = b"text/plain; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", ctype),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    """Adds the security headers to every response, and ``Cache-Control: no-store`` to everything
    but the static files: pages, kvittenser and downloads carry health data, and a shared or
    back-button cache must not keep them."""

    def __init__(self, app: ASGIApp, *, hsts: bool = False, form_targets: tuple[str, ...] = ()):
        # Served over TLS (VARDFIL_SECURE_COOKIES=1): browsers are told to use nothing else for a
        # year, so a later visit cannot be stripped to plain HTTP on the way.
        self.app = app
        self.headers = (
            [(b"content-security-policy", csp(form_targets).encode())]
            + SECURITY_HEADERS
            + ([(b"strict-transport-security", HSTS)] if hsts else [])
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"]
                headers += self.headers
                headers.append((b"cache-control", b"public, max-age=3600" if static else b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)
