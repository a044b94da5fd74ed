"""Signing in and out the region's way against real processes: ``vardfil serve`` and the IdP
(``oidc-provider``), talking to each other over HTTP as in production. The IdP's back-channel
logout reaches vardfil by itself; the browser test drives Debian's chromium through it all."""

from __future__ import annotations

import re
from urllib.parse import urljoin

import httpx
import pytest
from oidc_support import UNIT_A, node_ready, oidc_env, running_idp, sign_in_at_idp
from optional import BROWSER, need_chromium, optional_import
from server_support import free_port, running_server, server_env

from sample_data import SAMPLE_DIR


@pytest.fixture
def live(tmp_path):
    """vardfil and the IdP, each its own process, each told where the other is."""
    node_ready()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running_idp(base) as issuer:
        env, _ = server_env(
            tmp_path, "2026-11-04T14:40:00+01:00", VARDFIL_BASE_URL=base, VARDFIL_POOL_WORKERS="1", **oidc_env(issuer)
        )
        with running_server(env, port=port) as served:
            yield served, issuer


def _sign_in(base: str, issuer: str, login: str) -> tuple[httpx.Client, httpx.Client]:
    """A browser's two cookie jars, vardfil's and the IdP's, after signing in as ``login``."""
    portal = httpx.Client(base_url=base, follow_redirects=False, timeout=60)
    at_idp = httpx.Client(base_url=issuer, follow_redirects=False, timeout=60)
    start = portal.get("/oidc/login")
    back = sign_in_at_idp(at_idp, start.headers["location"], login)
    answer = portal.get(back)
    assert answer.status_code == 303, answer.text
    return portal, at_idp


def _sign_out_at_idp(at_idp: httpx.Client, url: str) -> httpx.Response:
    """The IdP's sign-out page, confirmed as a person would (its form, posted)."""
    page = at_idp.get(url)
    form = re.search(r'<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>', page.text, re.S)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form.group(2)))
    return at_idp.post(urljoin(url, form.group(1)), data={**fields, "logout": "yes"})


def test_back_channel_logout_ends_the_session_at_once(live):
    """The person signs out of the IdP from somewhere else (another e-service): the IdP tells
    vardfil, and the portal session ends before the person's next click."""
    base, issuer = live
    portal, at_idp = _sign_in(base, issuer, "anna")
    assert portal.get(f"/enhet/{UNIT_A}").status_code == 200
    done = _sign_out_at_idp(at_idp, f"{issuer}/session/end")
    assert done.status_code in (200, 302, 303)
    assert portal.get(f"/enhet/{UNIT_A}").headers["location"] == "/login"
    # A forged or replayed logout token ends nothing and is answered 400.
    assert httpx.post(f"{base}/oidc/backchannel-logout", data={"logout_token": "a.b.c"}).status_code == 400


def test_signing_out_in_vardfil_signs_out_at_the_idp(live):
    base, issuer = live
    portal, at_idp = _sign_in(base, issuer, "anna")
    page = portal.get(f"/enhet/{UNIT_A}").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    out = portal.post("/logout", data={"csrf": csrf})
    assert out.status_code == 303 and out.headers["location"].startswith(f"{issuer}/session/end")
    assert "id_token_hint=" in out.headers["location"]
    back = _sign_out_at_idp(at_idp, out.headers["location"])
    assert back.headers["location"].startswith(f"{base}/login?utloggad=1")
    assert portal.get(f"/enhet/{UNIT_A}").headers["location"] == "/login"
    # The IdP's session is gone too: a new sign-in asks for the person again.
    assert "/interaction/" in at_idp.get(portal.get("/oidc/login").headers["location"]).headers["location"]


sync_api = None


def test_a_person_signs_in_uploads_and_signs_out_in_a_browser(live):
    chromium = need_chromium()
    playwright = optional_import("playwright.sync_api", BROWSER)
    base, issuer = live
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(chromium),
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
        axe = optional_import("axe_playwright_python.sync_playwright", BROWSER).Axe()
        violations = {}

        def check(name: str) -> None:  # axe, WCAG 2.0/2.1 A and AA, as every other page
            from test_accessibility import WCAG21AA

            violations[name] = [v["id"] for v in axe.run(page, options=WCAG21AA).response["violations"]]

        # Refused (a reserve card, LoA 2): a Swedish page that says why and what to do.
        page = browser.new_context().new_page()
        page.goto(base + "/oidc/login")
        page.click("#login-bodil")
        page.wait_for_selector("text=för låg tillitsnivå")
        check("nekad")
        page = browser.new_context().new_page()
        page.goto(base + "/login")
        check("inloggning med SITHS")
        page.click("#siths")  # SITHS first
        page.click("#login-anna")  # at the IdP: the test stands in for the card
        page.wait_for_selector("#countdown")
        assert "Vårdcentralen Ekbacken" in page.content()
        page.set_input_files("#file", str(SAMPLE_DIR / "files" / f"VGP_{UNIT_A}_202610_02.csv"))
        page.click("text=Skicka fil")
        page.wait_for_selector("#status")
        assert page.text_content("#status") == "Godkänd"
        page.goto(f"{base}/enhet/{UNIT_A}")
        page.click("text=Logga ut")
        # The IdP's own page asks to confirm, and sends the browser back to vardfil.
        page.wait_for_url(re.compile(r".*/session/end.*|.*/login\?utloggad=1.*"))
        if "/session/end" in page.url:
            page.locator("button").first.click()
        page.wait_for_url(re.compile(r".*/login\?utloggad=1.*"))
        assert "Du är utloggad" in page.content()
        check("utloggad")

        # A second session, in another browser: ended by a back-channel logout from the IdP.
        other = browser.new_context().new_page()
        other.goto(base + "/oidc/login")
        other.click("#login-gustav")
        other.wait_for_selector("#countdown")
        other.goto(f"{issuer}/session/end")
        other.locator("button").first.click()
        other.goto(f"{base}/enhet/{UNIT_A}")
        assert other.url.endswith("/login")
        browser.close()
    assert violations == {name: [] for name in violations}, violations
