"""Logs an on-call engineer can read: one JSON object a line on stdout.

Every line has ``time`` (UTC, ISO 8601), ``level``, ``logger`` and ``event`` (what happened, in
words); a request's lines carry its ``request_id`` (also in the ``X-Request-ID`` response header
and in the audit log's entries of that request), and the access line of each request its
``method``, ``route`` (the route's template, never the values in the path), ``path`` (link tokens
redacted), ``status`` and ``duration_ms``. Where a line is about a file it has ``receipt_id``.

No personnummer reaches a line: nothing here logs a row, and every text (the event, a value, an
error's traceback) is masked on the way out as a last defence (``vardfil.privacy``).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# The request being served (set by ``vardfil.web.middleware.RequestLog``, carried into threads by
# contextvars and into worker processes explicitly by ``vardfil.workers``).
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("vardfil_request_id", default=None)

# What a client may send as its own request id: a proxy's or a journal system's correlation id.
# Anything else (too long, other characters: a header is also a way to inject text into a log)
# is replaced by one of ours.
_CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{8,64}")
_DIGITS = re.compile(r"\d{6}[-+.:]?\d{4}")
# A set-password link's token is the proof of the link; a log is read by more people than the
# account's owner.
LINK_PATH = re.compile(r"(/konto/losenord/)[^/?#\s]+")
# The fields a line may carry besides the fixed ones (``extra=`` of a logging call).
FIELDS = (
    "request_id",
    "method",
    "route",
    "path",
    "status",
    "duration_ms",
    "receipt_id",
    "period",
    "lane",
    "source",
    "result",
)


def new_request_id(offered: str | None = None) -> str:
    """The client's id when it is a sane one, else a new one. An id with a run of ten digits is
    never taken: it could be a personnummer, and the id is written unmasked to the audit log."""
    if offered and _CLIENT_ID.fullmatch(offered) and not _DIGITS.search(offered):
        return offered
    return secrets.token_hex(16)


@contextmanager
def in_request(rid: str | None) -> Iterator[None]:
    """Run a block as part of request ``rid`` (a worker job of that request)."""
    token = request_id.set(rid)
    try:
        yield
    finally:
        request_id.reset(token)


def redact_path(path: str) -> str:
    """A request path as it may be logged."""
    return LINK_PATH.sub(r"\1…", path)


class JsonFormatter(logging.Formatter):
    """One JSON object a line (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        from vardfil.privacy import masked

        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
            "pid": record.process,  # which of the server's processes (``serve --workers N``, a lane)
        }
        rid = getattr(record, "request_id", None) or request_id.get()
        if rid:
            line["request_id"] = rid
        for key in FIELDS[1:]:
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            line["error"] = record.exc_info[0].__name__
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(masked(line), ensure_ascii=False, default=str)


def log_config(level: str = "INFO") -> dict[str, Any]:
    """The ``logging.config.dictConfig`` of a server process (uvicorn's ``log_config``): vardfil's
    and uvicorn's own lines as JSON on stdout; uvicorn's access log off (``RequestLog`` writes one
    line a request, with the request id and the route)."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "vardfil.logs.JsonFormatter"}},
        "handlers": {"stdout": handler},
        "loggers": {
            "uvicorn": {"handlers": ["stdout"], "level": level, "propagate": False},
            "uvicorn.error": {"handlers": ["stdout"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
            # Alembic says what it checks at every start: an on-call engineer needs only its warnings.
            "alembic": {"level": "WARNING"},
        },
        "root": {"handlers": ["stdout"], "level": level},
    }


def configure(level: str = "INFO") -> None:
    """JSON lines on stdout for this process (a server's worker process; uvicorn configures the
    server processes themselves from :func:`log_config`)."""
    import logging.config

    logging.config.dictConfig(log_config(level))
    logging.captureWarnings(True)
