"""The region's published test month (FILSPECIFIKATION.md: "an implementation that disagrees with
it is wrong"), run through the public CLI: every file's kvittens and findings.

Until the ledger exists, ``vardfil validate`` keeps no history, so the two cases that need it are
driven here: F09 gets the earlier sequence numbers through the library, and a byte-identical copy
is answered with the earlier kvittens by the caller.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
from pathlib import Path

import pytest
from conftest import KVITTENS_KEYS

from filespec import load_reference
from filespec.calendar import parse_instant
from validators import parse_file_name, validate_file
from vardfil.cli import main

EXAMPLE = Path(__file__).parent / "data" / "region_example"
EXPECTED = json.loads((EXAMPLE / "expected.json").read_text(encoding="utf-8"))
SUBMISSIONS = EXPECTED["submissions"]
NEEDS_HISTORY = {s["index"] for s in SUBMISSIONS if "F09" in s["kvittens"]["counts_by_rule"]}


def _cli_validate(path: Path, received_at: str, findings_csv: Path) -> tuple[int, dict]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(
            [
                "validate",
                str(path),
                "--received-at",
                received_at,
                "--reference",
                str(EXAMPLE / "reference"),
                "--findings-csv",
                str(findings_csv),
            ]
        )
    return code, json.loads(out.getvalue())


def _check(kvittens: dict, findings: list, sub: dict) -> None:
    for key, value in sub["kvittens"].items():
        assert kvittens[key] == value, (sub["index"], key)
    assert findings == sub["findings_row_rule_field"], sub["index"]


@pytest.mark.parametrize(
    "sub",
    [s for s in SUBMISSIONS if s["index"] not in NEEDS_HISTORY and s["byte_identical_copy_of"] is None],
    ids=lambda s: f"{s['index']:02d}",
)
def test_kvittens_through_cli(sub, tmp_path):
    path = EXAMPLE / sub["file"]
    code, kv = _cli_validate(path, sub["received_at"], tmp_path / "f.csv")
    assert code == (1 if sub["kvittens"]["status"] == "AVVISAD" else 0)
    assert list(kv) == KVITTENS_KEYS
    # The full findings list is the CSV; the JSON list is capped.
    text = (tmp_path / "f.csv").read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))[1:]
    findings = [[int(r[2]) if r[2] else None, r[0], r[4] or None] for r in rows]
    _check(kv, findings, sub)
    for f in kv["findings"]:
        if f["field"] == "patient_id":
            assert f["value"] is None or f["value"].endswith("****")


def test_whole_month_in_order_with_history():
    """Every submission in order, with the history a ledger would give (F09, byte-identical copies)."""
    reference = load_reference(EXAMPLE / "reference")
    history: dict[tuple, list[int]] = {}
    by_sha: dict[str, dict] = {}
    for sub in SUBMISSIONS:
        data = (EXAMPLE / sub["file"]).read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        if sha in by_sha:
            assert sub["byte_identical_copy_of"] is not None
            _check(by_sha[sha]["kv"], by_sha[sha]["findings"], sub)
            continue
        name = parse_file_name(Path(sub["file"]).name)
        key = (name.unit_hsaid, name.file_type, name.period) if name else None
        result = validate_file(
            data,
            file_name=Path(sub["file"]).name,
            received_at=parse_instant(sub["received_at"]),
            reference=reference,
            earlier_sequences=history.get(key, ()),
        )
        if key:
            history.setdefault(key, []).append(name.sequence)
        kv = result.kvittens.to_dict()
        findings = [[f["row"], f["rule"], f["field"]] for f in result.findings.iter_rows(named=True)]
        by_sha[sha] = {"kv": kv, "findings": findings}
        _check(kv, findings, sub)
