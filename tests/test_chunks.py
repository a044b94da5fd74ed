"""Rows judged in chunks give what one pass over the whole file gives, finding for finding and row
for row: the kvittens, every finding (the cross-row rules R11 and W90 across chunk boundaries
too) and the accepted rows, whether the file is read whole and judged in slices or streamed a
piece of bytes at a time with the accepted rows written to Parquet as they are judged."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

import validators.engine as engine
import validators.reader as reader
from filespec import load_reference
from sample_data import SAMPLE_DIR
from sample_data.generate import add_defects, generate_visits, kva_list, to_csv
from validators import validate_file

EXAMPLE = Path(__file__).parent / "data" / "region_example"
AT = dt.datetime(2026, 11, 2, 10, 0, tzinfo=dt.UTC)
UNIT = "SE2321000131-E000000001001"


def _planted(tmp_path: Path, *, r01: bool = True) -> Path:
    """3,000 rows with the typical defects, a repeated besok_id and a double registration whose
    twins stand thousands of rows apart (different chunks), and (``r01``) a row with a field too
    many, which makes the file be read whole."""
    cols = generate_visits(file_type="VGP", hsaid=UNIT, period="2026-10", rows=3000, seed=5, kva_codes=kva_list(2026))
    add_defects(cols, count=60, seed=5)
    for c in cols:
        cols[c] = cols[c].astype(object)
    cols["besok_id"][2950] = cols["besok_id"][3]  # R11 across chunks
    for f in ("patient_id", "besoksdatum", "yrkeskategori"):  # W90 across chunks
        cols[f][2990] = cols[f][10]
    data = to_csv({k: np.asarray(v) for k, v in cols.items()}, crlf=True)
    lines = data.split(b"\r\n")
    if r01:
        lines[1500] += b";extra"  # R01
    folder = tmp_path / ("r01" if r01 else "plain")
    folder.mkdir(exist_ok=True)
    path = folder / f"VGP_{UNIT}_202610_01.csv"
    path.write_bytes(b"\r\n".join(lines))
    return path


def _judge(path: Path, reference, chunk: int, monkeypatch, *, mode: str = "whole") -> tuple[dict, list, list]:
    """``mode``: "whole" reads the file whole and judges slices of ``chunk`` rows; "stream" reads
    pieces of ``chunk`` × 100 bytes and writes the accepted rows to Parquet as it goes."""
    monkeypatch.setattr(engine, "CHUNK_ROWS", chunk)
    monkeypatch.setattr(reader, "CHUNK_BYTES", min(chunk * 100, 1 << 24))
    accepted_to = None
    if mode == "whole":
        monkeypatch.setattr(engine, "scan", lambda s: dataclasses.replace(reader.scan(s), streamable=False))
    else:
        monkeypatch.setattr(engine, "scan", reader.scan)
        accepted_to = path.parent / "accepted.parquet"
    result = validate_file(path, file_name=path.name, received_at=AT, reference=reference, accepted_to=accepted_to)
    kv = result.kvittens.to_dict()
    accepted = result.accepted_rows.collect().rows()
    if accepted_to is not None:
        assert accepted_to.exists() == bool(accepted)
    return kv, result.findings.rows(), accepted


@pytest.mark.parametrize("chunk", [64, 997])
def test_chunks_judge_as_the_whole_file(tmp_path, monkeypatch, chunk):
    sample = load_reference(SAMPLE_DIR / "reference")
    example = load_reference(EXAMPLE / "reference")
    files = [(_planted(tmp_path), sample)]
    files += [(p, sample) for p in sorted((SAMPLE_DIR / "files").glob("*.csv"))]
    expected = json.loads((EXAMPLE / "expected.json").read_text(encoding="utf-8"))
    files += [(EXAMPLE / s["file"], example) for s in expected["submissions"][:8]]
    checked = 0
    for path, reference in files:
        whole = _judge(path, reference, 10**9, monkeypatch)
        chunked = _judge(path, reference, chunk, monkeypatch)
        assert chunked == whole, path.name
        checked += bool(whole[1])
    assert checked >= 5  # files with findings were among them
    _, findings, _ = _judge(files[0][0], sample, chunk, monkeypatch)
    rows = {(f[0], f[2]) for f in findings}  # (rule, row); data row i is file line i + 2
    assert {("R11", 5), ("R11", 2952), ("W90", 12), ("W90", 2992), ("R01", 1501)} <= rows


@pytest.mark.parametrize("chunk", [64, 997])
def test_streamed_pieces_judge_as_the_whole_file(tmp_path, monkeypatch, chunk):
    """A file without R01 rows is streamed a piece at a time (and its R11 twin, already written
    as accepted, is taken out again); one with an R01 row falls back to being read whole."""
    sample = load_reference(SAMPLE_DIR / "reference")
    plain = _planted(tmp_path, r01=False)
    files = [plain, _planted(tmp_path), *sorted((SAMPLE_DIR / "files").glob("*.csv"))]
    pieces = []
    monkeypatch.setattr(reader, "_parse_exact", _counting(reader._parse_exact, pieces))
    for path in files:
        whole = _judge(path, sample, 10**9, monkeypatch)
        pieces.clear()
        streamed = _judge(path, sample, chunk, monkeypatch, mode="stream")
        assert streamed == whole, path.name
        if path == plain:
            assert len(pieces) > 3 and all(p is not None for p in pieces)  # streamed, in pieces
    _, findings, accepted = _judge(plain, sample, chunk, monkeypatch, mode="stream")
    rows = {(f[0], f[2]) for f in findings}
    assert {("R11", 5), ("R11", 2952), ("W90", 12), ("W90", 2992)} <= rows
    assert not {5, 2952} & {r[0] for r in accepted}  # the repeated besok_id is not accepted


def _counting(fn, seen: list):
    def wrapper(*args, **kwargs):
        out = fn(*args, **kwargs)
        seen.append(out)
        return out

    return wrapper


def test_rows_only_counted_give_the_same_kvittens(tmp_path, monkeypatch):
    """``keep_accepted=False`` (vardfil validate, the API's test mode) judges every row the same
    and keeps none of them."""
    sample = load_reference(SAMPLE_DIR / "reference")
    monkeypatch.setattr(reader, "CHUNK_BYTES", 64 * 100)
    for path in (_planted(tmp_path, r01=False), _planted(tmp_path)):
        kept = validate_file(path, file_name=path.name, received_at=AT, reference=sample)
        counted = validate_file(path, file_name=path.name, received_at=AT, reference=sample, keep_accepted=False)
        assert counted.kvittens == kept.kvittens and counted.findings.equals(kept.findings)
        assert kept.accepted.height == kept.kvittens.rows.accepted > 0 and counted.accepted.height == 0


@pytest.mark.parametrize(
    ("values", "repeated"),
    [([], False), ([7], False), ([7, 8, 9], False), ([9, 8, 9], True), ([2**64 - 1, 0, 2**64 - 1], True)],
)
def test_a_file_whose_keys_never_repeat_skips_the_cross_row_query(values, repeated):
    import polars as pl

    assert engine._repeats(pl.Series(values, dtype=pl.UInt64)) is repeated


def _report(schema, frame):
    import pandera.polars as pa

    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as e:
        return e
    raise AssertionError("the frame passed")


def test_the_rule_schema_reports_each_failing_check_and_row():
    """pandera's own failure-case report (no backend of ours) names each failing check by its rule
    code and each failing row by its position: what the findings are built from."""
    import polars as pl

    from validators.rules import _schema

    checks = (("v21", "R21", "patient_id"), ("v22", "R22", "patient_id"), ("v30", "R30", "kon"), ("w90", "W90", None))
    schema = _schema("2026.1", ("patient_id", "kon", "besok_id"), checks)
    frame = pl.DataFrame(
        {
            "patient_id": ["a", "b", None, "d", "e"],
            "kon": ["M", "Q", "K", None, "Q"],
            "besok_id": ["1", "2", "3", "4", "5"],
            "v21": [True, False, True, False, True],
            "v22": [True, True, True, False, True],
            "v30": [True, False, True, True, False],
            "w90": [False, True, True, True, False],
        }
    )
    cases = _report(schema, frame).failure_cases.sort(["check", "index"])
    assert cases["check"].to_list() == ["R21", "R21", "R22", "R30", "R30", "W90", "W90"]
    assert cases["index"].to_list() == [1, 3, 3, 1, 4, 0, 4]
