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


def test_the_board_and_the_unit_page_draw_the_year(two_closes, monkeypatch):
    import re

    from fastapi.testclient import TestClient

    from vardfil.accounts import create_account
    from vardfil.portal.app import create_app

    monkeypatch.setenv("VARDFIL_REFERENCE", str(EXAMPLE / "reference"))
    monkeypatch.setenv("VARDFIL_POOL_WORKERS", "0")
    app = create_app()
    unit = "SE2321000131-E000000000101"
    for name, role, units in (("ana", "analyst", []), ("ulf", "unit", [unit])):
        create_account(
            app.state.vardfil.ledger,
            username=name,
            password="korrekt-hast-batteri",
            role=role,
            units=units,
            actor="job:test",
        )

    def login(name: str) -> TestClient:
        c = TestClient(app)
        token = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
        c.post("/login", data={"username": name, "password": "korrekt-hast-batteri", "csrf": token})
        return c

    board = login("ana").get("/analys/2026-10").text
    svgs = re.findall(r"<svg[^>]*>", board)
    assert len(svgs) == 3 and all('role="img"' in s and "aria-labelledby" in s for s in svgs)
    assert "<desc" in board and "2026-09" in board and 'id="flags"' in board
    assert len(set(re.findall(r'id="(c-[a-z]+-[td])"', board))) == 6  # unique ids: one text alternative each
    page = login("ulf").get(f"/enhet/{unit}").text
    assert 'id="manader"' in page and page.count("<svg") == 1 and "2026-09" in page
    app.state.vardfil.close()


def test_the_charted_changes_are_the_tables_changes(two_closes):
    from vardfil.app import open_app
    from vardfil.month.views import month_board
    from vardfil.publish.workbooks import trends
    from vardfil.settings import load_settings

    with open_app(load_settings(), reference=EXAMPLE / "reference") as app:
        charted = dict(trends(app, "2026-10").changes)
        board = {r.unit.namn: r.change for r in month_board(app, "2026-10")}
    assert charted and all(board[name] == change for name, change in charted.items())
