"""Decoding and splitting a received file into records (FILSPECIFIKATION.md section 2, reading 5).

- UTF-8 (optional BOM) when the bytes are valid UTF-8, else Windows-1252; bytes undefined in
  Windows-1252 give F02.
- RFC 4180 with ``;``: a value is quoted only when its first character is ``"``; a ``"`` inside an
  unquoted value and a bare CR are ordinary characters. F05 when a quoted value is not closed before
  the end of the file, or a closing quote is followed by anything but ``;``, a line break or EOF.
- Line breaks are LF or CRLF. Exactly one trailing empty line is ignored; any other empty line is
  a record with one empty field. A record's row number is the line it starts on (header = 1).
- Values and header names are trimmed of U+0020 only, after unquoting; an empty value is null.

Two paths give the same records: when no value starts with a quote (nearly every real file) the
text is split by polars string kernels; otherwise Python's C ``csv`` reader in strict mode does it.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

import polars as pl

BOM = b"\xef\xbb\xbf"
# Stands in for a bare CR while the csv module reads (it would take a CR for a line break).
_CR_SENTINEL = "\ue000"

ROW_COL = "__row"
NFIELDS_COL = "__nfields"


class ContentError(Exception):
    """The bytes cannot be read as the spec's text; ``code`` is the file rule (F02 or F05)."""

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
        return data[len(BOM):].decode("utf-8") if has_bom else data.decode("utf-8"), (
            "utf-8-sig" if has_bom else "utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError as e:
        raise ContentError("F02", f"byte 0x{data[e.start]:02x} at offset {e.start}") from None


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
            raise ContentError("F05", "text holds U+E000 and a bare CR")
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
    except csv.Error as e:
        raise ContentError("F05", f"line {reader.line_num}: {e}") from None
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


def has_field_start_quote(text: str) -> bool:
    """True when some value may be quoted: a ``"`` at the start of the text, a line or a field."""
    return text.startswith('"') or ';"' in text or '\n"' in text


def split_records(data: bytes) -> Records:
    """Decode and split a whole file. Raises ContentError (F02, F05)."""
    text, encoding = decode(data)
    if has_field_start_quote(text):
        header, frame = _split_quoted(text)
    else:
        header, frame = _split_plain(text)
    return Records(encoding=encoding, header=header, frame=frame)
