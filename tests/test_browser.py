"""The portal as a person uses it: Playwright driving Debian's chromium (headless).

A unit signs in, uploads a file with errors, reads its kvittens, downloads the findings, uploads the
fix; an analyst sees the unit on time, closes the period after 15:00; the unit approves its
underlag. Screenshots of the main pages go to ``test-artifacts/``. Needs /usr/bin/chromium
(``scripts/ensure-tools.sh`` installs it); skipped without it except when VARDFIL_REQUIRE_BROWSER.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from optional import BROWSER, need_chromium, optional_import

CHROMIUM = need_chromium()
sync_api = optional_import("playwright.sync_api", BROWSER)

from server_support import running_server, server_env  # noqa: E402

from sample_data import SAMPLE_DIR  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
UNIT = "SE2321000131-E000000001001"
PASSWORD = "korrekt-hast-batteri"


@pytest.fixture
def server(tmp_path):
    env, clock = server_env(tmp_path, "2026-11-04T14:40:00+01:00", VARDFIL_PASSWORD=PASSWORD)
    for args in (["anna", "--role", "unit", "--hsaid", UNIT], ["analytiker", "--role", "analyst"]):
        subprocess.run(
            [sys.executable, "-m", "vardfil.cli", "user", "add", *args],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
    with running_server(env) as base:
        yield base, clock


def _login(page, base: str, username: str) -> None:
    page.goto(base + "/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")


def test_unit_and_analyst_run_the_month_in_a_browser(server, tmp_path):
    base, clock = server
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_context(accept_downloads=True).new_page()

        _login(page, base, "anna")
        page.wait_for_selector("#countdown")
        assert "min kvar" in page.text_content("#countdown")
        page.set_input_files("#file", str(SAMPLE_DIR / "files" / f"VGP_{UNIT}_202610_01.csv"))
        page.click("text=Skicka fil")
        page.wait_for_selector("#status")
        assert page.text_content("#status") == "Delvis godkänd"  # the code stays in data-code
        assert page.get_attribute("#status", "data-code") == "DELVIS_GODKAND"
        assert "Kontrollsiffran i patient_id är fel" in page.content()
        page.screenshot(path=str(ARTIFACTS / "kvittens-med-fel.png"), full_page=True)
        with page.expect_download() as dl:
            page.click("#download-csv")
        findings = Path(dl.value.path()).read_bytes().decode("utf-8-sig")
        assert findings.startswith("rule;severity;row") and findings.count("\n") > 20

        page.goto(f"{base}/enhet/{UNIT}")
        page.set_input_files("#file", str(SAMPLE_DIR / "files" / f"VGP_{UNIT}_202610_02.csv"))
        page.click("text=Skicka fil")
        page.wait_for_selector("#diff")
        assert page.text_content("#status") == "Godkänd"
        page.screenshot(path=str(ARTIFACTS / "kvittens-rattad.png"), full_page=True)
        page.goto(f"{base}/enhet/{UNIT}")
        page.screenshot(path=str(ARTIFACTS / "enhet.png"), full_page=True)
        page.click("text=Logga ut")

        _login(page, base, "analytiker")
        row = page.locator(f"tr[data-unit='{UNIT}']")
        assert "i tid" in row.text_content()
        clock.write_text("2026-11-04T15:10:00+01:00")  # after the deadline
        page.reload()
        page.click("#close")
        page.wait_for_selector("#finalise")
        assert " kr" in page.locator(f"tr[data-unit='{UNIT}']").text_content()
        # The year's pictures, drawn in the browser under the strict CSP (plain SVG, no script).
        assert page.locator("#trender svg[role='img']").count() >= 1
        assert page.locator("#flags").is_visible()
        page.screenshot(path=str(ARTIFACTS / "manadsoversikt.png"), full_page=True)
        page.click("text=Logga ut")

        _login(page, base, "anna")
        page.wait_for_selector("#underlag-2026-10")
        page.click("text=Godkänn underlaget")
        page.wait_for_selector("text=Ert svar")
        assert "Godkänt" in page.content()
        page.screenshot(path=str(ARTIFACTS / "underlag-godkant.png"), full_page=True)
        browser.close()
