"""The region's published test of version 2026.2 across the year boundary (examples-2026.2),
through the public CLI on both ledger backends: periods 2026-11 (judged by 2026.1) and 2026-12
(2026.2), every kvittens as listed, copies only where section 9 says, and both closes to the öre.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
from conftest import cli, underlag_key

EXAMPLE = Path(__file__).parent / "data" / "region_example_2026_2"
EXPECTED = json.loads((EXAMPLE / "expected.json").read_text(encoding="utf-8"))
REF = str(EXAMPLE / "reference")


def test_the_2026_2_example_through_the_cli(app_env):
    closes = {c["after_submission"]: c for c in EXPECTED["closes"]}
    answered: dict[int, dict] = {}
    for sub in EXPECTED["submissions"]:
        code, out = cli("submit", str(EXAMPLE / sub["file"]), "--received-at", sub["received_at"], "--reference", REF)
        kv = json.loads(out)
        assert code == (1 if sub["kvittens"]["status"] == "AVVISAD" else 0), sub["index"]
        for key, value in sub["kvittens"].items():
            assert kv[key] == value, (sub["index"], sub["what_it_shows"], key, kv[key])
        assert [[f["row"], f["rule"], f["field"]] for f in kv["findings"]] == sub["findings_row_rule_field"][:1000], (
            sub["index"]
        )
        copy_of = sub["byte_identical_copy_of"]
        if copy_of is not None:
            assert kv == answered[copy_of], sub["index"]  # the earlier kvittens, receipt and all
        else:
            assert all(kv["receipt_id"] != k["receipt_id"] for k in answered.values()), sub["index"]
        answered[sub["index"]] = kv
        close = closes.get(sub["index"])
        if close is None:
            continue
        code, out = cli("close", close["period"], "--at", close["at"], "--reference", REF)
        assert code == 0, out
        table = pq.read_table(json.loads(out)["underlag_parquet"])
        assert [underlag_key(r) for r in table.to_pylist()] == [underlag_key(r) for r in close["underlag_lines"]], (
            close["period"]
        )
    # Every close that the example lists was made.
    assert set(closes) <= set(answered)


def test_the_close_records_the_versions_it_used(app_env):
    for sub in EXPECTED["submissions"]:
        cli("submit", str(EXAMPLE / sub["file"]), "--received-at", sub["received_at"], "--reference", REF)
    for close in EXPECTED["closes"]:
        cli("close", close["period"], "--at", close["at"], "--reference", REF)
    from vardfil.app import open_app

    with open_app(app_env) as app:
        versions = {
            p: json.loads(app.ledger.closes.close_of(p).snapshot)["spec_versions"] for p in ("2026-11", "2026-12")
        }
    assert versions == {"2026-11": ["REH-2026.1", "VGP-2026.1"], "2026-12": ["REH-2026.2", "VGP-2026.2"]}
