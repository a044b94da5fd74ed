"""The analysts' datasets across periods, and every example of docs/analys.md run as written."""

from __future__ import annotations

import contextlib
import io
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import cli

EXAMPLE = Path(__file__).parent / "data" / "region_example"
EXPECTED = json.loads((EXAMPLE / "expected.json").read_text(encoding="utf-8"))
DOC = Path(__file__).parent.parent / "docs" / "analys.md"


@pytest.fixture
def two_closes(app_env):
    """The region's test months submitted and closed as the example says (2026-09, 2026-10)."""
    closes = {c["after_submission"]: c for c in EXPECTED["closes"]}
    totals = {}
    for sub in EXPECTED["submissions"]:
        cli(
            "submit",
            str(EXAMPLE / sub["file"]),
            "--received-at",
            sub["received_at"],
            "--reference",
            str(EXAMPLE / "reference"),
        )
        close = closes.get(sub["index"])
        if close:
            _code, out = cli("close", close["period"], "--at", close["at"], "--reference", str(EXAMPLE / "reference"))
            totals[close["period"]] = Decimal(json.loads(out)["total"])
    return totals


def test_the_datasets_cover_every_close_to_the_ore(two_closes):
    from vardfil import datasets

    lines = datasets.underlag()
    assert sorted(lines["period"].unique()) == sorted(two_closes)
    assert all(isinstance(a, Decimal) for a in lines["amount"])
    assert lines.groupby("period")["amount"].sum().to_dict() == two_closes
    deliv = datasets.deliveries()
    assert set(deliv["delivery"]) <= {"i tid", "sen", "saknas"} and "sen" in set(deliv["delivery"])
    assert set(datasets.visits()["period"]) == set(two_closes)
    assert "patient_id" not in datasets.visits().columns
    assert list(datasets.underlag(periods=["2026-10"])["period"].unique()) == ["2026-10"]


def test_every_example_in_docs_analys_runs(two_closes):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) >= 6
    namespace: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for block in blocks:
            exec(compile(block, str(DOC), "exec"), namespace)
    assert "2026-10" in out.getvalue()
