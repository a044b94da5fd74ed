"""The sample year (issue 15): what ``vardfil sample`` replays before the sample month, and the
analysts' trends on it. 2025-10 … 2026-10 are closed one by one; the datasets cover all 13 periods
to the öre, and the planted stories (a unit that grows, one late twice, one whose rejected share
jumps) are the deviation flags of 2026-10, in the region workbook's "Trender" sheet and on the
analysts' board. Screenshots of the board and a PDF page of the sheet go to ``test-artifacts/``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from optional import BROWSER, LIBREOFFICE, need_chromium, optional_import

from filespec.calendar import Period
from reports.underlag import COMPONENT_LABELS
from sample_data import SAMPLE_DIR
from sample_data.generate import GROWS, LATE, REJECTS, YEAR_PERIODS

PERIODS = [*YEAR_PERIODS, "2026-10"]
STEADY = ("SE2321000131-E000000001001", "SE2321000131-E000000002002")  # Ekbacken, Lönnen
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PASSWORD = "korrekt-hast-batteri"
STORIES = {(GROWS, "besök per listad"), (GROWS, "BESOK_EJ_LISTAD"), (LATE, "leverans"), (REJECTS, "avvisade rader")}


@pytest.fixture(scope="module")
def year(tmp_path_factory):
    """``vardfil sample --direct`` in a fresh home: the year replayed, then the sample month."""
    from vardfil.sample import run_sample_month

    home = tmp_path_factory.mktemp("year")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VARDFIL_HOME", str(home))
        mp.setenv("VARDFIL_REFERENCE", str(SAMPLE_DIR / "reference"))
        mp.setenv("VARDFIL_POOL_WORKERS", "0")
        for var in ("VARDFIL_DATABASE_URL", "VARDFIL_STORE", "VARDFIL_OUTPUT", "VARDFIL_SMTP_URL"):
            mp.delenv(var, raising=False)
        assert run_sample_month(year=True) == 0
        yield home


def _totals(home: Path) -> dict[str, Decimal]:
    from vardfil.app import open_app
    from vardfil.month.close import close_summary
    from vardfil.settings import load_settings

    with open_app(load_settings(), reference=SAMPLE_DIR / "reference") as app:
        summaries = {p: close_summary(app, p) for p in PERIODS}
    assert all(summaries.values()), "every period of the year is closed"
    return {p: Decimal(s["total"]) for p, s in summaries.items() if s}


def test_the_datasets_cover_13_periods_equal_to_the_closes(year):
    from vardfil import datasets

    lines = datasets.underlag()  # from $VARDFIL_HOME, as the one-liner does
    assert sorted(lines["period"].unique()) == PERIODS
    assert lines.groupby("period")["amount"].sum().to_dict() == _totals(year)
    # The late file of 2026-03 was paid as a correction in the close of 2026-04.
    late = lines[(lines["unit_hsaid"] == LATE) & lines["corrected_period"].notna()]
    assert list(late["period"]) == ["2026-04"] and list(late["corrected_period"]) == ["2026-03"]
    deliv = datasets.deliveries()
    assert sorted(deliv[(deliv["unit_hsaid"] == LATE) & (deliv["delivery"] == "sen")]["period"]) == [
        "2026-03",
        "2026-10",
    ]


def test_the_planted_stories_are_the_flags_and_the_steady_units_have_none(year):
    from vardfil.deviations import deviations

    flags = deviations("2026-10")
    got = {(f.unit_hsaid, f.what) for f in flags}
    assert STORIES <= got
    assert not [f for f in flags if f.unit_hsaid in STEADY]
    assert "2026-03 sen, 2026-10 sen" in next(f.reason for f in flags if f.what == "leverans")
    assert "7,0 % av raderna avvisades" in next(f.reason for f in flags if f.what == "avvisade rader")
    # Before the stories begin, the year is quiet.
    assert deviations("2026-06") == []


def test_the_region_workbook_shows_the_year_and_the_stories(year, tmp_path):
    from openpyxl import load_workbook

    region = year / "underlag" / "2026-10" / "region_2026-10.xlsx"
    ws = load_workbook(region)["Trender"]
    rows = [r for r in ws.iter_rows(values_only=True) if any(v is not None for v in r)]
    charted = {r[0]: Decimal(str(r[1])).quantize(Decimal("0.01")) for r in rows if r[0] in PERIODS}
    assert charted == _totals(year)
    names = {GROWS: "Vårdcentralen Åsen", LATE: "Hälsocentralen Kajen", REJECTS: "Rehab Strandvägen"}
    flagged = {(r[0], r[1]) for r in rows if len(r) > 2 and isinstance(r[2], str)}
    assert {(names[u], COMPONENT_LABELS.get(what, what)) for u, what in STORIES} <= flagged
    assert not any(name in ("Vårdcentralen Ekbacken", "Fysioterapin Lönnen") for name, _ in flagged)
    assert len(ws._charts) == 3
    _render_trender(region, tmp_path)


def _render_trender(region: Path, tmp_path: Path) -> None:
    """The sheet as a person sees it, through LibreOffice, for the test artefacts."""
    office = shutil.which("libreoffice") or shutil.which("soffice")
    if office is None:
        if os.environ.get(LIBREOFFICE):
            pytest.fail("LibreOffice required but not installed")
        return  # only the artefact is missing; the checks above ran
    profile = f"-env:UserInstallation=file://{tmp_path / 'profile'}"
    subprocess.run(
        [office, "--headless", profile, "--convert-to", "pdf", "--outdir", str(tmp_path), str(region)],
        capture_output=True,
        timeout=300,
        check=True,
    )
    pdf = tmp_path / region.with_suffix(".pdf").name
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    pages = text.split("\f")
    page = next(i for i, t in enumerate(pages, start=1) if "Trender till och med 2026-10" in t)
    assert "Hälsocentralen Kajen" in pages[page - 1] or "Hälsocentralen Kajen" in pages[page]
    ARTIFACTS.mkdir(exist_ok=True)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "60", "-f", str(page), "-l", str(page), str(pdf), str(ARTIFACTS / "ar-trender")],
        check=True,
        timeout=120,
    )


def _board_client(year: Path):
    from fastapi.testclient import TestClient

    from vardfil.accounts import create_account
    from vardfil.portal.app import create_app

    app = create_app()
    ledger = app.state.vardfil.ledger
    if ledger.accounts.by_name("ana") is None:
        create_account(ledger, username="ana", password=PASSWORD, role="analyst", units=[], actor="job:test")
    client = TestClient(app)
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)
    client.post("/login", data={"username": "ana", "password": PASSWORD, "csrf": token})
    return app, client


def test_the_board_shows_the_year_and_the_stories(year):
    app, client = _board_client(year)
    board = client.get("/analys/2026-10").text
    start = board.index('id="flags"')
    flags = board[start : board.index("</ul>", start)]
    for name in ("Vårdcentralen Åsen", "Hälsocentralen Kajen", "Rehab Strandvägen"):
        assert name in flags
    assert "Sen eller saknad fil 2 gånger" in flags and "7,0 % av raderna avvisades" in flags
    assert "Vårdcentralen Ekbacken" not in flags and "Fysioterapin Lönnen" not in flags
    # The region's total per period is drawn for all 13 periods (each a labelled point).
    assert all(p in board for p in (str(Period.parse(q)) for q in PERIODS))
    app.state.vardfil.close()


def test_the_board_of_the_year_in_a_browser(year, tmp_path):
    """A screenshot of the board as the analyst sees it after the first run, for the artefacts."""
    chromium = need_chromium()
    sync_api = optional_import("playwright.sync_api", BROWSER)
    from server_support import running_server

    app, _ = _board_client(year)  # makes the analyst's account
    app.state.vardfil.close()
    env = {**os.environ}
    ARTIFACTS.mkdir(exist_ok=True)
    with running_server(env) as base, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(base + "/login")
        page.fill("#username", "ana")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.goto(base + "/analys/2026-10")
        assert page.locator("#trender svg[role='img']").count() == 3
        assert "Hälsocentralen Kajen" in page.locator("#flags").text_content()
        page.screenshot(path=str(ARTIFACTS / "ar-manadsoversikt.png"), full_page=True)
        browser.close()
