"""Reading an upload: the multipart body streamed to a file beside the raw store, never spooled
whole in memory or in /tmp first. The size limit is the body limit of ``middleware.BodyLimit``,
enforced while the bytes arrive.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks
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


class _Sink:
    """The multipart parser's callbacks: the file part to a new file in ``staging``, every other
    part into ``fields`` (16 KB in all)."""

    def __init__(self, staging: Path, file_field: str):
        self.staging, self.file_field = staging, file_field
        self.upload = Upload()
        self.part = _Part()
        self.out: IO[bytes] | None = None
        self.text: list[bytes] = []
        self.field_bytes = 0

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
        }

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.part.header += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.part.value += data[start:end]

    def on_header_end(self) -> None:
        self.part.headers[self.part.header.lower()] = self.part.value
        self.part.header, self.part.value = b"", b""

    def on_headers_finished(self) -> None:
        _, disp = parse_options_header(self.part.headers.get(b"content-disposition", b""))
        name = disp.get(b"name", b"").decode("utf-8", "replace")
        filename = disp.get(b"filename")
        self.part.name = name
        if name == self.file_field and filename is not None and self.upload.path is None:
            self.upload.filename = filename.decode("utf-8", "replace")
            fd, tmp = tempfile.mkstemp(dir=self.staging, prefix=".upload-")
            self.upload.path = Path(tmp)
            self.out = os.fdopen(fd, "wb")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.out is not None and self.part.name == self.file_field:
            self.out.write(data[start:end])
            self.upload.size += end - start
            return
        self.field_bytes += end - start
        if self.field_bytes > FIELD_LIMIT:
            raise BadUpload("Formulärets fält är för stora.")
        self.text.append(data[start:end])

    def on_part_end(self) -> None:
        name = self.part.name
        if self.out is not None and name == self.file_field:
            self.out.close()
            self.out = None
        elif name:
            self.upload.fields[name] = b"".join(self.text).decode("utf-8", "replace")
        self.text.clear()
        self.part.headers, self.part.name = {}, None

    def abandon(self) -> None:
        """Nothing half-received stays behind."""
        if self.out is not None:
            self.out.close()
            self.out = None
        self.upload.discard()


async def read_upload(request: Request, *, staging: Path, file_field: str = "file") -> Upload:
    """Stream a multipart body: the part ``file_field`` to a new file in ``staging`` (on the same
    file system as the store), every other part into ``fields`` (16 KB in all)."""
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise BadUpload("Skicka filen som multipart/form-data med fältet 'file'.")
    staging.mkdir(parents=True, exist_ok=True)
    sink = _Sink(staging, file_field)
    # A 5,000-character file name is a file to answer with F01, not a form to refuse.
    parser = MultipartParser(boundary, sink.callbacks(), max_header_size=32 * 1024)
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except BaseException as e:
        # Whatever stopped the body (the limit, a broken form, a client gone), nothing half-
        # received stays behind: it was never a submission.
        sink.abandon()
        if isinstance(e, MultipartParseError):
            raise BadUpload("Formuläret kunde inte läsas (trasig multipart).") from None
        raise
    if sink.out is not None:  # a body that ended inside the file part
        sink.abandon()
        raise BadUpload("Filen kom inte fram hel.")
    return sink.upload
