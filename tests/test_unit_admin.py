"""Units run their own accounts and API tokens: a unit admin adds, resets and disables its people
(one-time links by mail, never a typed password) and its journal systems' tokens; nothing of
another unit, and plain unit users nothing at all."""

from __future__ import annotations

import email
import re
from email import policy

import pytest
from conftest import web_env
from fastapi.testclient import TestClient

from sample_data import SAMPLE_DIR

UNIT_A, UNIT_B = "SE2321000131-E000000001001", "SE2321000131-E000000001002"
PASSWORD = "korrekt-hast-batteri"


@pytest.fixture
def portal(tmp_path, monkeypatch):
    from vardfil.accounts import create_account
    from vardfil.portal.app import create_app

    web_env(monkeypatch, tmp_path, "2026-11-02T10:00:00+01:00")
    app = create_app()
    ledger = app.state.vardfil.ledger
    for name, role, unit in (
        ("adam", "unit_admin", UNIT_A),
        ("bertil", "unit", UNIT_A),
        ("cecilia", "unit_admin", UNIT_B),
    ):
        create_account(
            ledger,
            username=name,
            password=PASSWORD,
            role=role,
            units=[unit],
            actor="job:test",
            email=f"{name}@exempel.se",
        )
    yield app, tmp_path / "home"
    app.state.vardfil.close()


def _csrf(client: TestClient, path: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get(path).text).group(1)


def _login(app, username: str, password: str = PASSWORD) -> TestClient:
    client = TestClient(app)
    client.post("/login", data={"username": username, "password": password, "csrf": _csrf(client, "/login")})
    return client


def _signs_in(app, username: str, password: str) -> bool:
    client = TestClient(app)
    resp = client.post(
        "/login",
        data={"username": username, "password": password, "csrf": _csrf(client, "/login")},
        follow_redirects=False,
    )
    return resp.status_code == 303


def _last_link(home, to: str) -> str:
    mails = [
        email.message_from_bytes(p.read_bytes(), policy=policy.default) for p in sorted((home / "outbox").glob("*.eml"))
    ]
    mine = [m for m in mails if m["To"] == to]
    return re.search(r"/konto/losenord/(\S+)", mine[-1].get_body(preferencelist=("plain",)).get_content()).group(1)


def test_an_admin_adds_a_person_who_chooses_their_own_password(portal):
    app, home = portal
    adam = _login(app, "adam")
    resp = adam.post(
        f"/enhet/{UNIT_A}/konton",
        data={"csrf": _csrf(adam, f"/enhet/{UNIT_A}/konton"), "username": "nils", "email": "nils@exempel.se"},
    )
    assert resp.status_code == 200 and "nils@exempel.se" in resp.text
    token = _last_link(home, "nils@exempel.se")
    client = TestClient(app)
    assert client.get(f"/konto/losenord/{token}").status_code == 200
    done = client.post(f"/konto/losenord/{token}", data={"password": "nils-eget-lösen", "password2": "nils-eget-lösen"})
    assert done.status_code == 200 and "är sparat" in done.text
    assert _signs_in(app, "nils", "nils-eget-lösen")
    # The link works once.
    assert client.get(f"/konto/losenord/{token}").status_code == 410
    again = client.post(
        f"/konto/losenord/{token}", data={"password": "annat-lösenord-1", "password2": "annat-lösenord-1"}
    )
    assert again.status_code == 400 and _signs_in(app, "nils", "nils-eget-lösen")
    actions = [e.action for e in app.state.vardfil.ledger.audit_entries()]
    assert {"account_created", "password_link_sent", "password_set_by_link"} <= set(actions)


def test_a_reset_stops_the_old_password_and_sessions_at_once(portal):
    app, home = portal
    bertil = _login(app, "bertil")
    assert bertil.get(f"/enhet/{UNIT_A}", follow_redirects=False).status_code == 200
    adam = _login(app, "adam")
    adam.post(f"/enhet/{UNIT_A}/konton/bertil/aterstall", data={"csrf": _csrf(adam, f"/enhet/{UNIT_A}/konton")})
    assert bertil.get(f"/enhet/{UNIT_A}", follow_redirects=False).headers["location"] == "/login"
    assert not _signs_in(app, "bertil", PASSWORD)
    token = _last_link(home, "bertil@exempel.se")
    TestClient(app).post(
        f"/konto/losenord/{token}", data={"password": "bertils-nya-lösen", "password2": "bertils-nya-lösen"}
    )
    assert _signs_in(app, "bertil", "bertils-nya-lösen")


def test_a_disabled_account_signs_nobody_in(portal):
    app, _ = portal
    bertil = _login(app, "bertil")
    adam = _login(app, "adam")
    adam.post(f"/enhet/{UNIT_A}/konton/bertil/inaktivera", data={"csrf": _csrf(adam, f"/enhet/{UNIT_A}/konton")})
    assert not _signs_in(app, "bertil", PASSWORD)
    assert bertil.get(f"/enhet/{UNIT_A}", follow_redirects=False).headers["location"] == "/login"
    # Not one's own account, and not another unit's people (checked before anyone signs in again:
    # a new sign-in of adam would end the session this client holds).
    own = adam.post(f"/enhet/{UNIT_A}/konton/adam/inaktivera", data={"csrf": _csrf(adam, f"/enhet/{UNIT_A}/konton")})
    other = adam.post(
        f"/enhet/{UNIT_A}/konton/cecilia/inaktivera", data={"csrf": _csrf(adam, f"/enhet/{UNIT_A}/konton")}
    )
    assert own.status_code == 400 and other.status_code == 400
    assert _signs_in(app, "adam", PASSWORD) and _signs_in(app, "cecilia", PASSWORD)


def test_an_admin_runs_the_units_api_tokens(portal):
    app, _ = portal
    adam = _login(app, "adam")
    page = adam.post(
        f"/enhet/{UNIT_A}/nycklar", data={"csrf": _csrf(adam, f"/enhet/{UNIT_A}/konton"), "name": "cosmic"}
    )
    token = re.search(r"<code>(vf_[^<]+)</code>", page.text).group(1)
    file = SAMPLE_DIR / "files" / f"VGP_{UNIT_A}_202610_02.csv"
    api = TestClient(app)

    def send():
        return api.post(
            "/api/v1/filer",
            headers={"Authorization": f"Bearer {token}"},
            files={"file": (file.name, file.read_bytes())},
        )

    assert send().status_code == 200
    assert token not in adam.get(f"/enhet/{UNIT_A}/konton").text  # shown once
    cecilia = _login(app, "cecilia")
    assert (
        cecilia.post(
            f"/enhet/{UNIT_A}/nycklar/cosmic/aterkalla", data={"csrf": _csrf(cecilia, f"/enhet/{UNIT_B}/konton")}
        ).status_code
        == 403
    )
    adam.post(f"/enhet/{UNIT_A}/nycklar/cosmic/aterkalla", data={"csrf": _csrf(adam, f"/enhet/{UNIT_A}/konton")})
    assert send().status_code == 401


@pytest.mark.parametrize("who", ["bertil", "cecilia"])
def test_only_the_units_own_admins_reach_its_administration(portal, who):
    app, _ = portal
    client = _login(app, who)
    assert client.get(f"/enhet/{UNIT_A}/konton").status_code == 403
    assert (
        client.post(f"/enhet/{UNIT_A}/konton", data={"csrf": "x", "username": "eve", "email": "e@x.se"}).status_code
        == 403
    )
    assert app.state.vardfil.ledger.accounts.by_name("eve") is None
