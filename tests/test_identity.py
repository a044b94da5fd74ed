"""Signed in the region's way: SITHS through the IdP (a real ``oidc-provider`` process), rights
from the commissions, refusals that say why, and the tokens checked as the protocol asks."""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest
from conftest import cli, web_env
from fastapi.testclient import TestClient
from oidc_support import (
    LOA3,
    PERSONS,
    SECRET,
    UNIT_A,
    UNIT_B,
    node_ready,
    oidc_env,
    path_of,
    running_idp,
    sign_in_at_idp,
)

BASE = "http://testserver"  # the TestClient's own address: vardfil's redirect URI points here


@pytest.fixture(scope="module")
def idp():
    node_ready()
    from joserfc.jwk import RSAKey

    key = RSAKey.generate_key(2048, parameters={"kid": "vardfil-test"})
    private = key.as_dict(private=True)
    with running_idp(BASE, private_jwk=private) as issuer:
        yield issuer, private


@pytest.fixture
def portal(idp, tmp_path, monkeypatch):
    from vardfil.portal.app import create_app

    issuer, _ = idp
    web_env(monkeypatch, tmp_path, "2026-11-03T10:00:00+01:00")
    monkeypatch.setenv("VARDFIL_BASE_URL", BASE)
    for k, v in oidc_env(issuer).items():
        monkeypatch.setenv(k, v)
    app = create_app()
    yield app, issuer
    app.state.vardfil.close()


def sign_in(app, issuer: str, login: str) -> tuple[TestClient, httpx.Response]:
    """A browser's sign-in: vardfil's start, the IdP's pages, the callback; (client, its answer)."""
    client = TestClient(app)
    start = client.get("/oidc/login", follow_redirects=False)
    assert start.status_code == 303, start.text
    with httpx.Client(base_url=issuer, follow_redirects=False) as browser_at_idp:
        back = sign_in_at_idp(browser_at_idp, start.headers["location"], login)
    return client, client.get(path_of(back), follow_redirects=False)


def test_a_person_signs_in_with_siths_and_reaches_their_unit(portal):
    app, issuer = portal
    client, answer = sign_in(app, issuer, "anna")
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    assert client.get("/", follow_redirects=False).headers["location"] == f"/enhet/{UNIT_A}"
    unit = client.get(f"/enhet/{UNIT_A}")
    assert unit.status_code == 200 and "Vårdcentralen Ekbacken" in unit.text
    assert client.get(f"/enhet/{UNIT_B}").status_code == 403  # no commission there
    ledger = app.state.vardfil.ledger
    entry = next(e for e in ledger.audit_entries() if e.action == "sign_in")
    detail = json.loads(entry.detail)
    assert entry.actor == "person:SE2321000131-P000000000001"
    assert detail["acr"] == LOA3 and detail["amr"] == ["smartcard"] and detail["units"] == [UNIT_A]
    assert detail["commissions"][0]["purpose"] == "Vård och behandling"
    acc = ledger.accounts.by_hsa_id("SE2321000131-P000000000001")
    assert acc.username == acc.hsa_id and acc.display_name == "Anna Andersson"


def test_all_commissions_give_every_registered_unit(portal):
    app, issuer = portal
    client, answer = sign_in(app, issuer, "gustav")
    assert answer.status_code == 303
    assert client.get(f"/enhet/{UNIT_A}").status_code == 200 and client.get(f"/enhet/{UNIT_B}").status_code == 200


@pytest.mark.parametrize(
    ("login", "code", "words"),
    [
        ("bodil", "loa", "tillitsnivå"),
        ("cecilia", "no_commission", "inget medarbetaruppdrag"),
        ("david", "purpose", "Forskning"),
        ("erik", "unit", "enhetsregister"),
    ],
)
def test_refused_with_a_page_that_says_why(portal, login, code, words):
    app, issuer = portal
    client, answer = sign_in(app, issuer, login)
    assert answer.status_code == 403 and words in answer.text and 'lang="sv"' in answer.text
    assert "Till inloggningssidan" in answer.text
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"  # no session
    refused = next(e for e in app.state.vardfil.ledger.audit_entries() if e.action == "sign_in_refused")
    assert json.loads(refused.detail)["reason"] == code


def test_an_analyst_is_granted_inside_vardfil_and_needs_a_commission(portal):
    app, issuer = portal
    fia = PERSONS["fia"]["claims"]["employeeHsaId"]
    _, before = sign_in(app, issuer, "fia")  # a commission on the region's office: no unit of the register
    assert before.status_code == 403
    assert cli("grant", fia, "--role", "analyst", "--actor", "job:test")[0] == 0
    client, answer = sign_in(app, issuer, "fia")
    assert answer.status_code == 303
    assert client.get("/", follow_redirects=False).headers["location"].startswith("/analys/")
    listed = json.loads(cli("grant", "list", "--json")[1])
    assert [(g["person_hsaid"], g["role"]) for g in listed] == [(fia, "analyst")]
    # A grant to someone without an accepted commission gives nothing.
    cecilia = PERSONS["cecilia"]["claims"]["employeeHsaId"]
    assert cli("grant", cecilia, "--role", "analyst")[0] == 0
    assert sign_in(app, issuer, "cecilia")[1].status_code == 403
    assert cli("grant", "revoke", fia, "--role", "analyst")[0] == 0
    assert client.get("/analys/2026-10", follow_redirects=False).status_code == 403  # at once


def test_a_unit_admin_is_granted_and_grants_their_own_people(portal):
    app, issuer = portal
    anna = PERSONS["anna"]["claims"]["employeeHsaId"]
    assert cli("grant", anna, "--role", "unit_admin")[0] == 2  # a unit admin of which unit?
    assert cli("grant", anna, "--role", "unit_admin", "--unit", UNIT_A)[0] == 0
    gustav_client, _ = sign_in(app, issuer, "gustav")  # a commission on A too
    admin, _ = sign_in(app, issuer, "anna")
    page = admin.get(f"/enhet/{UNIT_A}/konton")
    assert page.status_code == 200 and "Gustav Gran" in page.text
    gustav = app.state.vardfil.ledger.accounts.by_hsa_id(PERSONS["gustav"]["claims"]["employeeHsaId"])
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    made = admin.post(f"/enhet/{UNIT_A}/konto/{gustav.id}/admin", data={"csrf": csrf}, follow_redirects=False)
    assert made.status_code == 303
    assert gustav_client.get(f"/enhet/{UNIT_A}/konton").status_code == 200  # at once, in his session
    assert gustav_client.get(f"/enhet/{UNIT_B}/konton").status_code == 403  # only where granted


def test_a_replayed_callback_is_refused(portal):
    app, issuer = portal
    client = TestClient(app)
    start = client.get("/oidc/login", follow_redirects=False)
    with httpx.Client(base_url=issuer, follow_redirects=False) as at_idp:
        back = sign_in_at_idp(at_idp, start.headers["location"], "anna")
    assert client.get(path_of(back), follow_redirects=False).status_code == 303
    again = client.get(path_of(back), follow_redirects=False)
    assert again.status_code == 400 and "redan använt" in again.text


def test_a_callback_in_another_browser_is_refused(portal):
    app, issuer = portal
    starter = TestClient(app)
    start = starter.get("/oidc/login", follow_redirects=False)
    with httpx.Client(base_url=issuer, follow_redirects=False) as at_idp:
        back = sign_in_at_idp(at_idp, start.headers["location"], "anna")
    assert TestClient(app).get(path_of(back), follow_redirects=False).status_code == 400  # not bound to it


@pytest.mark.parametrize("mutation", ["tampered", "expired"])
def test_a_bad_id_token_in_the_callback_is_refused(portal, monkeypatch, mutation):
    from vardfil.oidc import RelyingParty

    app, issuer = portal
    real = RelyingParty.verify_id_token

    def verify(self, id_token, *, nonce, now=time.time):
        if mutation == "tampered":
            head, body, sig = id_token.split(".")
            claims = json.loads(_b64d(body))
            claims["employeeHsaId"] = "SE2321000131-P000000000099"  # someone else
            return real(self, ".".join([head, _b64e(json.dumps(claims)), sig]), nonce=nonce)
        return real(self, id_token, nonce=nonce, now=lambda: time.time() + 900)

    monkeypatch.setattr(RelyingParty, "verify_id_token", verify)
    client, answer = sign_in(app, issuer, "anna")
    assert answer.status_code == 401 and "kunde inte verifieras" in answer.text
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"


def _b64d(part: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _b64e(text: str) -> str:
    import base64

    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def _raw_id_token(issuer: str, client_id: str, secret: str, login: str, nonce: str) -> str:
    """An id token the real IdP issued to ``client_id`` (a flow walked without vardfil)."""
    import secrets

    from authlib.integrations.httpx_client import OAuth2Client

    meta = httpx.get(f"{issuer}/.well-known/openid-configuration").json()
    verifier = secrets.token_urlsafe(48)
    with OAuth2Client(
        client_id, secret, redirect_uri=f"{BASE}/oidc/callback", scope="openid profile", code_challenge_method="S256"
    ) as oauth:
        url, _ = oauth.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce)
        with httpx.Client(base_url=issuer, follow_redirects=False) as at_idp:
            back = sign_in_at_idp(at_idp, url, login)
        code = httpx.URL(back).params["code"]
        token = oauth.fetch_token(meta["token_endpoint"], code=code, code_verifier=verifier)
    return str(token["id_token"])


def _rp(issuer: str, client_id: str):
    from vardfil.oidc import OidcSettings, RelyingParty

    return RelyingParty(OidcSettings(issuer=issuer, client_id=client_id, client_secret="x"))


def test_the_id_token_is_checked_for_audience_signature_expiry_and_nonce(idp):
    from vardfil.oidc import OidcError

    issuer, _ = idp
    token = _raw_id_token(issuer, "annan-tjanst", SECRET + "-annan", "anna", nonce="n-123")
    assert _rp(issuer, "annan-tjanst").verify_id_token(token, nonce="n-123")["employeeHsaId"]  # the token is good
    cases = {
        "wrong aud": lambda rp: rp.verify_id_token(token, nonce="n-123"),
        "wrong nonce": lambda rp: _rp(issuer, "annan-tjanst").verify_id_token(token, nonce="n-other"),
        "expired": lambda rp: _rp(issuer, "annan-tjanst").verify_id_token(
            token, nonce="n-123", now=lambda: time.time() + 900
        ),
        "tampered": lambda rp: _rp(issuer, "annan-tjanst").verify_id_token(token[:-8] + "AAAAAAAA", nonce="n-123"),
    }
    reasons = {}
    for name, check in cases.items():
        with pytest.raises(OidcError) as refused:
            check(_rp(issuer, "vardfil"))
        reasons[name] = refused.value.reason
    assert reasons == {
        "wrong aud": "claim:aud",
        "wrong nonce": "claim:nonce",
        "expired": "expired",
        "tampered": "signature",
    }


def test_private_key_jwt_authenticates_the_client(idp, tmp_path, monkeypatch):
    from vardfil.portal.app import create_app

    issuer, private = idp
    web_env(monkeypatch, tmp_path, "2026-11-03T10:00:00+01:00")
    monkeypatch.setenv("VARDFIL_BASE_URL", BASE)
    key_file = tmp_path / "vardfil.jwk"
    key_file.write_text(json.dumps(private))
    for k, v in {
        "VARDFIL_OIDC_ISSUER": issuer,
        "VARDFIL_OIDC_CLIENT_ID": "vardfil-jwt",
        "VARDFIL_OIDC_PRIVATE_KEY": str(key_file),
    }.items():
        monkeypatch.setenv(k, v)
    app = create_app()
    try:
        client, answer = sign_in(app, issuer, "anna")
        assert answer.status_code == 303 and client.get(f"/enhet/{UNIT_A}").status_code == 200
    finally:
        app.state.vardfil.close()


def test_the_issuer_must_be_https_except_on_loopback():
    from vardfil.oidc import is_allowed_issuer

    assert is_allowed_issuer("https://idp.inera.se/oidc")
    assert is_allowed_issuer("http://127.0.0.1:4000") and is_allowed_issuer("http://localhost:4000")
    assert not is_allowed_issuer("http://idp.example.se") and not is_allowed_issuer("ftp://127.0.0.1")


def test_passwords_can_be_admins_only_or_off(portal, monkeypatch, tmp_path):
    from vardfil.accounts import create_account
    from vardfil.portal.app import create_app

    app, _ = portal
    ledger = app.state.vardfil.ledger
    create_account(
        ledger, username="nodadmin", password="korrekt-hast-batteri", role="admin", units=[], actor="job:test"
    )
    create_account(
        ledger, username="vanlig", password="korrekt-hast-batteri", role="analyst", units=[], actor="job:test"
    )
    app.state.vardfil.close()

    def attempt(mode: str, name: str) -> int:
        monkeypatch.setenv("VARDFIL_PASSWORD_SIGNIN", mode)
        web = create_app()
        client = TestClient(web)
        page = client.get("/login").text
        assert page.index("Logga in med SITHS eID") < page.find("Lösenord") or mode == "off"
        found = re.search(r'name="csrf" value="([^"]+)"', page)
        assert (found is None) == (mode == "off")  # no password form at all when off
        csrf = found.group(1) if found else "x"
        status = client.post(
            "/login", data={"username": name, "password": "korrekt-hast-batteri", "csrf": csrf}, follow_redirects=False
        ).status_code
        web.state.vardfil.close()
        return status

    assert attempt("on", "vanlig") == 303
    assert attempt("admin-only", "vanlig") == 401 and attempt("admin-only", "nodadmin") == 303
    assert attempt("off", "nodadmin") == 403
