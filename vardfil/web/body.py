"""Reading an upload: the multipart body streamed to a file beside the raw store, never spooled
whole in memory or in /tmp first. The size limit is the body limit of ``middleware.BodyLimit``,
enforced while the bytes arrive.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header
from starlette.requests import Request

FIELD_LIMIT = 16 * 1024  # the other fields of an upload form: a CSRF token, a choice


class BadUpload(Exception):
    """The body is not a multipart form with a file (the message says what, in Swedish)."""


@dataclass
class Upload:
    """A received upload: the file's name as sent, where its bytes are, and the other fields."""

    filename: str | None = None
    path: Path | None = None
    size: int = 0
    fields: dict[str, str] = field(default_factory=dict)

    def discard(self) -> None:
        """Remove the received bytes (after intake has stored them under their hash)."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)


@dataclass
class _Part:
    """The part of a multipart body being read: its headers as they arrive, then its field name."""

    header: bytes = b""
    value: bytes = b""
    headers: dict[bytes, bytes] = field(default_factory=dict)
    name: str | None = None


async def read_upload(request: Request, *, staging: Path, file_field: str = "file") -> Upload:
    """Stream a multipart body: the part ``file_field`` to a new file in ``staging`` (on the same
    file system as the store), every other part into ``fields`` (16 KB in all)."""
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise BadUpload("Skicka filen som multipart/form-data med fältet 'file'.")
    staging.mkdir(parents=True, exist_ok=True)
    upload = Upload()
    part = _Part()
    out: IO[bytes] | None = None
    text: list[bytes] = []
    field_bytes = 0

    def on_header_field(data: bytes, start: int, end: int) -> None:
        part.header += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        part.value += data[start:end]

    def on_header_end() -> None:
        part.headers[part.header.lower()] = part.value
        part.header, part.value = b"", b""

    def on_headers_finished() -> None:
        nonlocal out
        _, disp = parse_options_header(part.headers.get(b"content-disposition", b""))
        name = disp.get(b"name", b"").decode("utf-8", "replace")
        filename = disp.get(b"filename")
        part.name = name
        if name == file_field and filename is not None and upload.path is None:
            upload.filename = filename.decode("utf-8", "replace")
            fd, tmp = tempfile.mkstemp(dir=staging, prefix=".upload-")
            upload.path = Path(tmp)
            out = os.fdopen(fd, "wb")

    def on_part_data(data: bytes, start: int, end: int) -> None:
        nonlocal field_bytes
        if out is not None and part.name == file_field:
            out.write(data[start:end])
            upload.size += end - start
            return
        field_bytes += end - start
        if field_bytes > FIELD_LIMIT:
            raise BadUpload("Formulärets fält är för stora.")
        text.append(data[start:end])

    def on_part_end() -> None:
        nonlocal out
        name = part.name
        if out is not None and name == file_field:
            out.close()
            out = None
        elif name:
            upload.fields[name] = b"".join(text).decode("utf-8", "replace")
        text.clear()
        part.headers, part.name = {}, None

    parser = MultipartParser(
        boundary,
        {
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
        # A 5,000-character file name is a file to answer with F01, not a form to refuse.
        max_header_size=32 * 1024,
    )
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except BaseException as e:
        # Whatever stopped the body (the limit, a broken form, a client gone), nothing half-
        # received stays behind: it was never a submission.
        if out is not None:
            out.close()
        upload.discard()
        if isinstance(e, MultipartParseError):
            raise BadUpload("Formuläret kunde inte läsas (trasig multipart).") from None
        raise
    if out is not None:  # a body that ended inside the file part
        out.close()
        upload.discard()
        raise BadUpload("Filen kom inte fram hel.")
    return upload
