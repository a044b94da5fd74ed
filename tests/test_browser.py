"""The portal as a person uses it: Playwright driving Debian's chromium (headless).

A unit signs in, uploads a file with errors, reads its kvittens, downloads the findings, uploads the
fix; an analyst sees the unit on time, closes the period after 15:00; the unit approves its
underlag. Screenshots of the main pages go to ``test-artifacts/``. Needs /usr/bin/chromium
(``scripts/ensure-tools.sh`` installs it); skipped without it except when VARDFIL_REQUIRE_BROWSER.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists() and not os.environ.get("VARDFIL_REQUIRE_BROWSER"):
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")

from sample_data import SAMPLE_DIR  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
UNIT = "SE2321000131-E000000001001"
PASSWORD = "korrekt-hast-batteri"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    clock = tmp_path / "clock"
    clock.write_text("2026-11-04T14:40:00+01:00")
    env = {
        **os.environ,
        "VARDFIL_HOME": str(tmp_path / "home"),
        "VARDFIL_CLOCK_FILE": str(clock),
        "VARDFIL_PASSWORD": PASSWORD,
    }
    for var in ("VARDFIL_DATABASE_URL", "VARDFIL_STORE", "VARDFIL_OUTPUT"):
        env.pop(var, None)
    env["VARDFIL_REFERENCE"] = str(SAMPLE_DIR / "reference")  # the sample register, named (never a default)
    for args in (["anna", "--role", "unit", "--hsaid", UNIT], ["analytiker", "--role", "analyst"]):
        subprocess.run(
            [sys.executable, "-m", "vardfil.cli", "user", "add", *args],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vardfil.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1)
            break
        except OSError:
            time.sleep(0.25)
    yield base, clock
    proc.terminate()
    proc.wait(timeout=20)


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
        assert page.text_content("#status") == "DELVIS_GODKAND"
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
        assert page.text_content("#status") == "GODKAND"
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
        page.screenshot(path=str(ARTIFACTS / "manadsoversikt.png"), full_page=True)
        page.click("text=Logga ut")

        _login(page, base, "anna")
        page.wait_for_selector("#underlag-2026-10")
        page.click("text=Godkänn underlaget")
        page.wait_for_selector("text=Ert svar")
        assert "Godkänt" in page.content()
        page.screenshot(path=str(ARTIFACTS / "underlag-godkant.png"), full_page=True)
        browser.close()
