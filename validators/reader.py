"""Decoding and splitting a received file into records (FILSPECIFIKATION.md section 2, reading 5).

- UTF-8 (optional BOM) when the bytes are valid UTF-8, else Windows-1252; bytes undefined in
  Windows-1252 give F02.
- RFC 4180 with ``;``: a value is quoted only when its first character is ``"``; a ``"`` inside an
  unquoted value and a bare CR are ordinary characters. F05 when a quoted value is not closed before
  the end of the file, or a closing quote is followed by anything but ``;``, a line break or EOF.
- Line breaks are LF or CRLF. Exactly one trailing empty line is ignored; any other empty line is
  a record with one empty field. A record's row number is the line it starts on (header = 1).
- Values and header names are trimmed of U+0020 only, after unquoting; an empty value is null.

Three paths give the same records. When no value starts with a quote (nearly every real file) and
byte counts prove every record has exactly the header's number of fields, polars' CSV reader does
it; when no value starts with a quote but some record is off, polars string kernels split the lines
(so R01 rows keep their line numbers); otherwise Python's C ``csv`` reader in strict mode does it.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from filespec.errors import VardfilError

BOM = b"\xef\xbb\xbf"
# Stands in for a bare CR while the csv module reads (it would take a CR for a line break).
_CR_SENTINEL = "\ue000"

ROW_COL = "__row"
NFIELDS_COL = "__nfields"


class ContentError(VardfilError):
    """The bytes cannot be read as the spec's text; ``code`` is the file rule (F02 or F05).

    Never leaves the validator: ``validate_file`` turns it into the file finding it names."""

    def __init__(self, code: str, detail: str):
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True, kw_only=True)
class Records:
    """The split text: header names and one frame row per data record.

    ``frame`` has ``__row`` (line number), ``__nfields`` (fields in the record) and ``c0`` … ``cK-1``
    (K = header length; trimmed values, null when empty; only meaningful where __nfields == K).
    """

    encoding: str  # "utf-8" | "utf-8-sig" | "cp1252"
    header: list[str] | None  # None: no header line at all (empty file or only a BOM)
    frame: pl.DataFrame

    @property
    def count(self) -> int:
        """Number of data records."""
        return self.frame.height


def decode(data: bytes) -> tuple[str, str]:
    """Text and encoding name; raises ContentError F02 when neither UTF-8 nor Windows-1252."""
    has_bom = data.startswith(BOM)
    try:
        return data[len(BOM) :].decode("utf-8") if has_bom else data.decode("utf-8"), (
            "utf-8-sig" if has_bom else "utf-8"
        )
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError as e:
        # Where, in the unit's words: the line an editor shows and the offset a hex viewer shows.
        line = data.count(b"\n", 0, e.start) + 1
        raise ContentError("F02", f"byte 0x{data[e.start]:02X} på rad {line} (offset {_grouped(e.start)})") from None


def _grouped(n: int) -> str:
    """A number with the Swedish thousands separator (a no-break space), as every page writes it."""
    return f"{n:,}".replace(",", "\u00a0")


def _columns_frame(rows: list[int], nfields: list[int], columns: list[list[str | None]]) -> pl.DataFrame:
    data = {ROW_COL: pl.Series(rows, dtype=pl.Int64), NFIELDS_COL: pl.Series(nfields, dtype=pl.Int32)}
    for i, col in enumerate(columns):
        data[f"c{i}"] = pl.Series(col, dtype=pl.Utf8)
    return pl.DataFrame(data)


def _clean(expr: pl.Expr) -> pl.Expr:
    trimmed = expr.str.strip_chars(" ")
    return pl.when(trimmed != "").then(trimmed)


def _split_plain(text: str) -> tuple[list[str] | None, pl.DataFrame]:
    """No value starts with a quote: records are lines, fields are split on every ``;``."""
    if text == "":
        return None, _columns_frame([], [], [])  # no header line at all (reading 2)
    lines = pl.Series("line", [text], dtype=pl.Utf8).str.split("\n").explode()
    n = lines.len()
    if text.endswith("\n"):
        lines = lines.slice(0, n - 1)  # the terminator of the last line, not a line
        crlf = lines.str.strip_suffix("\r")
    else:
        # The last line has no LF after it, so a CR at its end is a bare CR: ordinary.
        crlf = pl.concat([lines.slice(0, n - 1).str.strip_suffix("\r"), lines.slice(n - 1)])
    if crlf.len() > 1 and crlf[-1] == "":
        crlf = crlf.slice(0, crlf.len() - 1)  # exactly one trailing empty line is ignored
    if crlf.len() == 0:
        return None, _columns_frame([], [], [])
    header = [h.strip(" ") for h in crlf[0].split(";")]
    k = len(header)
    body = crlf.slice(1).to_frame("line").with_row_index(ROW_COL, offset=2)
    frame = body.select(
        pl.col(ROW_COL).cast(pl.Int64),
        (pl.col("line").str.count_matches(";", literal=True) + 1).cast(pl.Int32).alias(NFIELDS_COL),
        pl.col("line").str.split_exact(";", k - 1).alias("s"),
    ).unnest("s")
    names = [f"field_{i}" for i in range(k)]
    return header, frame.select(
        ROW_COL, NFIELDS_COL, *[_clean(pl.col(nm)).alias(f"c{i}") for i, nm in enumerate(names)]
    )


def _split_quoted(text: str) -> tuple[list[str] | None, pl.DataFrame]:
    """Some value starts with a quote: the csv module in strict mode, lines tracked for row numbers."""
    sentinel_used = "\r" in text and re.search("\r(?!\n)", text) is not None
    if sentinel_used:
        if _CR_SENTINEL in text:  # pragma: no cover - a private-use character in a visit file
            raise ContentError("F05", "tecknet U+E000 och en ensam CR i samma fil")
        text = re.sub("\r(?!\n)", _CR_SENTINEL, text)
    source = io.StringIO(text, newline="")
    reader = csv.reader(source, delimiter=";", quotechar='"', strict=True)
    records: list[list[str]] = []
    starts: list[int] = []
    line = 1
    try:
        for rec in reader:
            starts.append(line)
            records.append(rec if rec else [""])
            line = reader.line_num + 1
    except csv.Error:
        raise ContentError("F05", f"upptäckt på rad {reader.line_num}") from None
    if text.endswith("\n") and records and records[-1] == [""] and len(records) > 1:
        records.pop()  # the one trailing empty line
        starts.pop()
    if not records:
        return None, _columns_frame([], [], [])

    def restore(v: str) -> str:
        return v.replace(_CR_SENTINEL, "\r") if sentinel_used else v

    header = [restore(h).strip(" ") for h in records[0]]
    k = len(header)
    body, rows = records[1:], starts[1:]
    columns: list[list[str | None]] = [[] for _ in range(k)]
    for rec in body:
        for i in range(k):
            v = restore(rec[i]).strip(" ") if i < len(rec) else ""
            columns[i].append(v or None)
    return header, _columns_frame(rows, [len(r) for r in body], columns)


def has_field_start_quote(utf8: bytes) -> bool:
    """True when some value may be quoted: a ``"`` at the start of the text, a line or a field."""
    if utf8.find(b'"') < 0:  # one memchr pass: nearly every file stops here
        return False
    return utf8.startswith(b'"') or b';"' in utf8 or b'\n"' in utf8


def _body_end(data: bytes, start: int) -> int:
    """End of the records from ``start``: before the last line's terminator and the one trailing
    empty line, if there is one (offsets, so a 200 MB file is not copied to trim two bytes)."""
    end = len(data)
    for _ in range(2):
        if data.endswith(b"\r\n", start, end):
            end -= 2
        elif data.endswith(b"\n", start, end):
            end -= 1
        else:
            return end
        if end == start or data[end - 1] != 0x0A:
            return end
    return end


def _has_bare_cr(data: bytes, start: int) -> bool:
    """Whether some CR from ``start`` is not the first half of a CRLF (polars would misread it)."""
    if data.find(b"\r", start) < 0:
        return False
    buf = np.frombuffer(data, dtype=np.uint8)[start:]
    at = np.flatnonzero(buf == 0x0D)
    return bool(at[-1] == buf.size - 1 or (buf[at + 1] != 0x0A).any())


def _has_padding(data: bytes, start: int, end: int) -> bool:
    """Whether a value in ``data[start:end]`` may start or end with a space (a space next to
    ``;``, a line break or either end)."""
    # The usual case: few spaces, each found by memchr and its neighbours looked at. Counting them
    # first cost a byte-by-byte pass (~60 ms at 1 M rows); many spaces go to numpy.
    at = data.find(b" ", start, end)
    for _ in range(10_000):
        if at < 0:
            return False
        if at in (start, end - 1) or data[at - 1] in b";\n" or data[at + 1] in b";\n\r":
            return True
        at = data.find(b" ", at + 1, end)
    buf = np.frombuffer(data, dtype=np.uint8)[start:end]
    where = np.flatnonzero(buf == 0x20)
    before = buf[np.maximum(where - 1, 0)]
    after = buf[np.minimum(where + 1, buf.size - 1)]
    edge = (where == 0) | (where == buf.size - 1)
    return bool((edge | np.isin(before, (0x3B, 0x0A)) | np.isin(after, (0x3B, 0x0A, 0x0D))).any())


# Bytes compared at a time when counting: numpy's comparison is 3-4× CPython's ``bytes.count``
# (a byte-by-byte loop; the separators and line breaks of a 100 MB file were ~120 ms), and a
# window bounds the temporary mask.
_COUNT_WINDOW = 4 << 20


def count_byte(data: bytes, byte: int, start: int = 0, end: int | None = None) -> int:
    """How many times ``byte`` occurs in ``data[start:end]``."""
    end = len(data) if end is None else end
    buf = np.frombuffer(data, dtype=np.uint8)
    return sum(
        int(np.count_nonzero(buf[at : min(at + _COUNT_WINDOW, end)] == byte)) for at in range(start, end, _COUNT_WINDOW)
    )


def _parse_exact(buf: bytes, start: int, end: int, k: int, first_row: int) -> pl.DataFrame | None:
    """The records of ``buf[start:end]`` (whole lines without the last one's terminator) by polars'
    CSV reader, or None when byte counts cannot prove it exact.

    polars pads short records and drops line numbers, so it is trusted only when every record has
    exactly K-1 separators: a longer record makes it fail, so a separator total of (K-1) × records
    proves none is shorter. The caller makes sure no CR would be misread. Row numbers start at
    ``first_row``; ``start`` is 0 or just after the header line.
    """
    if end == start or buf[start] == 0x0A:
        return None
    records = count_byte(buf, 0x0A, start, end) + 1
    if count_byte(buf, 0x3B, start, end) != (k - 1) * records:
        return None
    names = [f"c{i}" for i in range(k)]
    # polars rejects a record with too many fields only when a line break ends it, so one is
    # always there; with none longer, the separator total proves none is shorter either. In the
    # usual file (one terminator after the last record) polars reads the bytes as they are.
    whole = buf[end:] in (b"\n", b"\r\n")
    try:
        frame = pl.read_csv(
            buf if whole else buf[start:end] + b"\n",
            has_header=False,
            skip_rows=1 if whole and start else 0,
            new_columns=names,
            separator=";",
            quote_char=None,
            infer_schema=False,
            truncate_ragged_lines=False,
        )
    except pl.exceptions.PolarsError:
        return None
    if frame.height != records:
        return None
    if _has_padding(buf, start, end):
        padded = frame.select((pl.all().str.starts_with(" ") | pl.all().str.ends_with(" ")).any()).row(0)
        frame = frame.with_columns(_clean(pl.col(n)).alias(n) for n, p in zip(names, padded, strict=True) if p)
    # Inserted in place, not added with ``with_columns`` and reordered with ``select``: that pair
    # copied every text column of the parsed frame (4× the file again, measured at 1 M rows).
    frame.insert_column(0, pl.int_range(first_row, first_row + records, dtype=pl.Int64, eager=True).alias(ROW_COL))
    frame.insert_column(1, pl.repeat(k, records, dtype=pl.Int32, eager=True).alias(NFIELDS_COL))
    return frame


def _header_of(line: bytes) -> list[str]:
    if line.endswith(b"\r"):
        line = line[:-1]
    return [h.strip(" ") for h in line.decode("utf-8").split(";")]


def _split_counted(utf8: bytes) -> tuple[list[str], pl.DataFrame] | None:
    """The fast path over the whole text: ``_parse_exact`` after the header line, or None (use
    ``_split_plain``)."""
    nl = utf8.find(b"\n")
    if nl < 0:
        return None
    header = _header_of(utf8[:nl])
    start = nl + 1
    if _has_bare_cr(utf8, start):
        return None
    frame = _parse_exact(utf8, start, _body_end(utf8, start), len(header), 2)
    return None if frame is None else (header, frame)


def split_records(data: bytes) -> Records:
    """Decode and split a whole file. Raises ContentError (F02, F05)."""
    text, encoding = decode(data)
    utf8 = data[len(BOM) :] if encoding == "utf-8-sig" else data if encoding == "utf-8" else text.encode("utf-8")
    if has_field_start_quote(utf8):
        header, frame = _split_quoted(text)
    else:
        if encoding != "cp1252":
            del text  # the fast path reads the bytes; the text (as large as the file) is decoded again if needed
        counted = _split_counted(utf8)
        header, frame = (
            counted if counted is not None else _split_plain(utf8.decode("utf-8") if encoding != "cp1252" else text)
        )
    return Records(encoding=encoding, header=header, frame=frame)


# --- reading a large file a piece at a time -------------------------------------------------------

# Bytes read and split at a time when a file is streamed (~160,000 records of a VGP file): the
# record frame of a whole 100 MB file is ~430 MB of 16-byte string views on its own.
CHUNK_BYTES = 4 << 20


class NotExact(VardfilError):
    """A piece of a streamed file the fast path cannot prove exact (a record with the wrong number
    of fields, an empty line): the file is read whole instead, by the paths that handle them."""


@dataclass(frozen=True, kw_only=True)
class Scan:
    """What one pass over the bytes tells before any record is split.

    ``streamable``: valid UTF-8, no value that may start with a quote, no bare CR and a header line
    in the first piece, so the records can be split a piece at a time (``stream_frames``) and give
    what ``split_records`` gives. Otherwise the file is read whole.
    """

    sha256: str
    size: int
    streamable: bool
    encoding: str | None = None  # "utf-8" | "utf-8-sig" when streamable
    header: list[str] | None = None
    body_start: int = 0  # offset of the first record in the received bytes


def _pieces(source: bytes | Path, start: int, size: int) -> Iterator[bytes]:
    if isinstance(source, bytes):
        view = memoryview(source)
        for at in range(start, len(source), size):
            yield bytes(view[at : at + size])
        return
    with open(source, "rb") as fh:
        fh.seek(start)
        while piece := fh.read(size):
            yield piece


def _bare_cr(piece: bytes, before: bytes) -> bool:
    """Whether a CR in ``piece`` is not the first half of a CRLF (a CR at its end is judged with
    the next piece; ``before`` is the byte before it)."""
    if before == b"\r" and not piece.startswith(b"\n"):
        return True
    if piece.find(b"\r") < 0:  # memchr: a file with LF line breaks stops here
        return False
    # Each CR's next byte, by numpy: counting CRs and CRLFs with ``bytes.count`` was two
    # byte-by-byte passes (~150 ms over a 100 MB file with CRLF line breaks).
    buf = np.frombuffer(piece, dtype=np.uint8)
    at = np.flatnonzero(buf == 0x0D)
    if at[-1] == buf.size - 1:
        at = at[:-1]
    return bool((buf[at + 1] != 0x0A).any())


def _quote_starts(piece: bytes, before: bytes) -> bool:
    """Whether a value in ``piece`` may start with a quote (``before``: the byte before it, a line
    break at the start of the text)."""
    if piece.find(b'"') < 0:
        return False
    return (piece.startswith(b'"') and before in (b";", b"\n")) or b';"' in piece or b'\n"' in piece


def scan(source: bytes | Path, piece_bytes: int | None = None) -> Scan:
    """SHA-256, size and whether the file can be streamed, in one pass that holds one piece at a time."""
    piece_bytes = piece_bytes or CHUNK_BYTES
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    size = 0
    utf8 = plain = True  # plain: no quote may start a value, no bare CR
    first: bytes | None = None
    last_byte = b"\n"  # the byte before the piece: a quote after ";" or a line break starts a value
    for piece in _pieces(source, 0, piece_bytes):
        digest.update(piece)
        size += len(piece)
        if first is None:
            first = piece
            if piece.startswith(BOM):
                piece = piece[len(BOM) :]
        if utf8 and not (piece.isascii() and not decoder.getstate()[0]):
            try:
                decoder.decode(piece)
            except UnicodeDecodeError:
                utf8 = False
        if plain and piece:
            plain = not (_bare_cr(piece, last_byte) or _quote_starts(piece, last_byte))
            last_byte = piece[-1:]
    if utf8:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8 = False
    sha = digest.hexdigest()
    nl = first.find(b"\n") if first else -1
    # A header alone (F03) or a header line longer than a piece is read whole.
    if not (utf8 and plain and last_byte != b"\r") or first is None or nl < 0 or size == nl + 1:
        return Scan(sha256=sha, size=size, streamable=False)
    bom = first.startswith(BOM)
    return Scan(
        sha256=sha,
        size=size,
        streamable=True,
        encoding="utf-8-sig" if bom else "utf-8",
        header=_header_of(first[len(BOM) if bom else 0 : nl]),
        body_start=nl + 1,
    )


def _line_chunks(source: bytes | Path, start: int, size: int) -> Iterator[tuple[bytes, bool]]:
    """The bytes from ``start`` in pieces of about ``size`` cut after a line break; True with the last."""
    held: bytes | None = None
    carry = b""
    for piece in _pieces(source, start, size):
        buf = carry + piece if carry else piece
        cut = buf.rfind(b"\n") + 1
        if cut == 0:
            carry = buf
            continue
        chunk, carry = (buf, b"") if cut == len(buf) else (buf[:cut], buf[cut:])
        if held is not None:
            yield held, False
        held = chunk
    if carry:
        if held is not None:
            yield held, False
        held = carry
    if held is not None:
        yield held, True


def stream_frames(source: bytes | Path, scanned: Scan, chunk_bytes: int | None = None) -> Iterator[pl.DataFrame]:
    """The records of a streamable file, a piece at a time, as ``split_records`` gives them (the
    same columns and row numbers). Raises NotExact when a piece cannot be proved exact."""
    assert scanned.streamable and scanned.header is not None
    k = len(scanned.header)
    row = 2
    for chunk, last in _line_chunks(source, scanned.body_start, chunk_bytes or CHUNK_BYTES):
        if last:
            end = _body_end(chunk, 0)
        else:
            end = len(chunk) - (2 if chunk.endswith(b"\r\n") else 1)
        frame = _parse_exact(chunk, 0, end, k, row)
        if frame is None:
            raise NotExact(f"the piece from line {row}")
        row += frame.height
        yield frame
