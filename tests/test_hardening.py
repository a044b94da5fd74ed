"""The findings of the burst review, each with the request that showed it: body limits, sign-in
throttling, sessions, headers, error pages, masking, CSV formulas, file modes, CLI errors."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import stat
from pathlib import Path

import pytest
from conftest import ADULT_MAN, cli, file_name, make_file, web_env
from fastapi.testclient import TestClient
from test_api import asgi_post

from sample_data import SAMPLE_DIR

UNIT_A = "SE2321000131-E000000001001"
PASSWORD = "korrekt-hast-batteri"


@pytest.fixture
def portal(tmp_path, monkeypatch):
    from vardfil.accounts import create_account
    from vardfil.portal.app import create_app

    clock = web_env(monkeypatch, tmp_path, "2026-11-02T10:00:00+01:00")
    app = create_app()
    ledger = app.state.vardfil.ledger
    create_account(ledger, username="anna", password=PASSWORD, role="unit", units=[UNIT_A], actor="job:test")
    create_account(ledger, username="analytiker", password=PASSWORD, role="analyst", units=[], actor="job:test")
    yield app, clock, tmp_path / "home"
    app.state.vardfil.close()


def _csrf(client: TestClient, path: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get(path).text).group(1)


def _login(client: TestClient, username: str, password: str = PASSWORD):
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf": _csrf(client, "/login")},
        follow_redirects=False,
    )


def test_an_unauthenticated_300_mb_login_is_refused_unread(portal):
    app, _, _ = portal
    headers = {"content-type": "multipart/form-data; boundary=x", "content-length": str(300 * 1024 * 1024)}
    status, _, read = asgi_post(app, "/login", headers, [b"x" * 65536])
    assert status == 413 and read == 0


def test_a_chunked_body_is_cut_at_the_limit_while_it_is_read(portal):
    app, _, _ = portal
    chunks = [b"x" * 65536] * 40  # 2.5 MB to a form that takes 64 KB, no Content-Length
    status, _, read = asgi_post(app, "/login", {"content-type": "application/x-www-form-urlencoded"}, chunks)
    assert status == 413 and read <= 2 * 65536


def test_an_upload_past_200_mb_is_cut_off_and_leaves_nothing(tmp_path):
    """The upload limit applies while the body streams: the handler never sees more, and the
    partial file is removed (middleware and reader together, on a small limit)."""
    app = _upload_app(tmp_path / "staging")
    head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="f.csv"\r\n\r\n'
    status, _, read = asgi_post(
        app, "/up", {"content-type": "multipart/form-data; boundary=b"}, [head] + [b"x" * 32768] * 10
    )
    assert status == 413 and read <= 100_000 + 32768
    assert list((tmp_path / "staging").iterdir()) == []


def _upload_app(staging: Path):
    from fastapi import FastAPI, Request

    from vardfil.web.body import read_upload
    from vardfil.web.middleware import BodyLimit

    inner = FastAPI()

    async def up(request: Request) -> dict:
        got = await read_upload(request, staging=staging)
        return {"size": got.size}

    up.__annotations__ = {"request": Request, "return": dict}  # resolved here, not by name
    inner.post("/up")(up)
    # As in the server: inside Starlette's error middleware, so the limit answers, not a 500.
    inner.add_middleware(BodyLimit, upload_limit=100_000, is_upload=lambda p: p == "/up")
    return inner


def test_pages_and_downloads_carry_the_security_headers(portal):
    app, _, _ = portal
    client = TestClient(app)
    _login(client, "anna")
    for path in ("/login", f"/enhet/{UNIT_A}", "/healthz", "/no-such-page"):
        resp = client.get(path)
        h = resp.headers
        assert (
            "frame-ancestors 'none'" in h["content-security-policy"]
            and "script-src 'self'" in h["content-security-policy"]
        )
        assert h["x-content-type-options"] == "nosniff" and h["referrer-policy"] == "no-referrer", path
        assert h["cache-control"] == "no-store", path
    page = client.get(f"/enhet/{UNIT_A}").text
    assert "<style>" not in page and "<script>" not in page  # nothing inline: the CSP forbids it
    assert client.get("/static/vardfil.css").status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/analys/2026-13"),
        ("POST", "/analys/garbage/close"),
        ("GET", "/analys/2026-10/download/..%2f..%2fledger.sqlite3"),
        ("GET", "/enhet/x/underlag/2026-99.xlsx"),
    ],
)
def test_bad_periods_and_names_are_404_pages_never_a_traceback(portal, method, path):
    app, _, _ = portal
    client = TestClient(app, raise_server_exceptions=False)
    _login(client, "analytiker")
    resp = client.request(method, path, data={"csrf": "x"})
    assert resp.status_code in (403, 404) and "Traceback" not in resp.text
    assert resp.headers["content-type"].startswith("text/html")


def test_a_5000_character_file_name_gets_a_kvittens_page(portal):
    app, _, _ = portal
    client = TestClient(app)
    _login(client, "anna")
    token = _csrf(client, f"/enhet/{UNIT_A}")
    resp = client.post(
        f"/enhet/{UNIT_A}/upload", data={"csrf": token}, files={"file": ("A" * 5000 + ".csv", make_file(), "text/csv")}
    )
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    assert "F01" in resp.text


@pytest.fixture
def frozen(monkeypatch):
    """The accounts' clock, held still and moved by hand (the throttle's waits are seconds)."""
    import vardfil.accounts as accounts

    now = [dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)]
    monkeypatch.setattr(accounts, "utcnow", lambda: now[0])
    return now


def test_sign_in_is_slowed_per_name_and_the_owner_gets_in_after_the_wait(portal, frozen):
    app, _, _ = portal
    client = TestClient(app)
    for _ in range(3):
        assert _login(client, "anna", "fel-lösenord").status_code == 401
    waiting = _login(client, "anna")  # at once: the fourth attempt waits a second
    assert waiting.status_code == 429 and "Försök igen om" in waiting.text and waiting.headers["retry-after"]
    frozen[0] += dt.timedelta(seconds=2)
    assert _login(client, "anna").status_code == 303  # the owner, after the wait: in
    actions = [e.action for e in app.state.vardfil.ledger.audit_entries()]
    assert actions.count("sign_in_failed") == 3 and "sign_in_throttled" in actions


def test_unknown_names_cost_a_scrypt_and_fill_no_audit_log(portal, monkeypatch):
    import vardfil.accounts as accounts

    app, _, _ = portal
    checked = []
    real = accounts.verify_password
    monkeypatch.setattr(accounts, "verify_password", lambda p, h: checked.append(h) or real(p, h))
    client = TestClient(app)
    before = len(app.state.vardfil.ledger.audit_entries())
    for i in range(3):
        assert _login(client, f"finns-inte-{i}", "x" * 12).status_code == 401
    assert len(checked) == 3 and all(h.startswith("scrypt$131072$8$1$") for h in checked)
    assert len(app.state.vardfil.ledger.audit_entries()) == before


def test_sign_in_is_throttled_per_address(portal, frozen):
    app, _, _ = portal
    client = TestClient(app)
    for i in range(20):
        _login(client, f"namn-{i}", "fel")
    assert _login(client, "anna").status_code == 429


def test_a_new_sign_in_ends_the_old_session(portal):
    app, _, _ = portal
    first, second = TestClient(app), TestClient(app)
    _login(first, "anna")
    assert first.get(f"/enhet/{UNIT_A}", follow_redirects=False).status_code == 200
    _login(second, "anna")
    assert second.get(f"/enhet/{UNIT_A}", follow_redirects=False).status_code == 200
    assert first.get(f"/enhet/{UNIT_A}", follow_redirects=False).headers["location"] == "/login"


def test_expired_sessions_are_purged(portal):
    from sqlalchemy import func, select, update

    from vardfil.ledger.tables import WebSession

    app, _, _ = portal
    ledger = app.state.vardfil.ledger
    _login(TestClient(app), "analytiker")
    with ledger.transaction() as s:
        s.execute(update(WebSession).values(expires_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)))
    _login(TestClient(app), "anna")
    with ledger.reading() as s:
        assert s.scalar(select(func.count()).select_from(WebSession)) == 1


def test_passwords_at_owasp_cost_and_old_hashes_upgraded_at_sign_in(portal):
    import base64
    import hashlib
    import secrets

    app, _, _ = portal
    ledger = app.state.vardfil.ledger
    assert ledger.accounts.by_name("anna").password_hash.startswith("scrypt$131072$8$1$")
    salt = secrets.token_bytes(16)
    old = hashlib.scrypt(PASSWORD.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    acc = ledger.accounts.by_name("analytiker")
    ledger.accounts.set_password_hash(
        acc.id, f"scrypt$16384$8$1${base64.b64encode(salt).decode()}${base64.b64encode(old).decode()}"
    )
    assert _login(TestClient(app), "analytiker").status_code == 303
    assert ledger.accounts.by_name("analytiker").password_hash.startswith("scrypt$131072$")


def test_the_ledger_and_the_store_are_private_to_the_service(portal):
    app, _, home = portal
    client = TestClient(app)
    _login(client, "anna")
    token = _csrf(client, f"/enhet/{UNIT_A}")
    client.post(f"/enhet/{UNIT_A}/upload", data={"csrf": token}, files={"file": (file_name(), make_file())})
    assert stat.S_IMODE((home / "ledger.sqlite3").stat().st_mode) == 0o600
    stored = [p for p in (home / "store").rglob("*") if p.is_file()]
    assert stored and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in stored)


def test_a_dispens_for_an_unknown_unit_is_refused_in_the_portal(portal):
    app, _, _ = portal
    client = TestClient(app)
    _login(client, "analytiker")
    resp = client.post(
        "/analys/2026-10/dispens",
        data={
            "csrf": _csrf(client, "/analys/2026-10"),
            "unit": "SE2321000131-E000000009999",
            "until": "2026-11-06T15:00:00+01:00",
            "reason": "systembyte",
        },
    )
    assert resp.status_code == 400 and "finns inte" in resp.text


def test_a_person_number_in_any_field_is_masked_everywhere_it_is_shown(app):
    """A personnummer typed into diagnos_2 and as a besok_id: masked in the kvittens, the findings
    CSV and the ledger; the raw store keeps the bytes as received."""
    from filespec.calendar import parse_instant
    from vardfil.month.intake import submit

    data = make_file(rows=[{"diagnos_2": ADULT_MAN}, {"besok_id": ADULT_MAN, "kontakttyp": "Q"}])
    sub = submit(data, file_name=file_name(), received_at=parse_instant("2026-11-02T10:00:00+01:00"), app=app)
    text = json.dumps(sub.kvittens)
    assert ADULT_MAN not in text and ADULT_MAN[:8] + "****" in text
    csv_text = app.store.resolve(sub.file.findings_path).read_text(encoding="utf-8-sig")
    assert ADULT_MAN not in csv_text and ADULT_MAN[:8] + "****" in csv_text
    assert ADULT_MAN not in sub.file.kvittens_json
    assert ADULT_MAN.encode() in app.store.raw_path(sub.file.sha256).read_bytes()


@pytest.mark.parametrize("value", ["=1+1", "\t=cmd|' /C calc'!A0", "\r@SUM(A1)", "\t-2+3", "+A1"])
def test_formulas_are_neutralised_in_the_findings_csv_even_behind_a_tab(value):
    import polars as pl

    from validators.kvittens import empty_findings, findings_to_csv

    findings = pl.concat(
        [
            empty_findings(),
            pl.DataFrame(
                {
                    "rule": ["R30"],
                    "severity": ["FEL"],
                    "row": [2],
                    "besok_id": ["A1"],
                    "field": ["kon"],
                    "value": [value],
                    "message": ["x"],
                },
                schema=empty_findings().schema,
            ),
        ]
    )
    rows = list(csv.reader(io.StringIO(findings_to_csv(findings).decode("utf-8-sig")), delimiter=";"))
    assert rows[1][5] == "'" + value


def test_a_negative_number_stays_a_number():
    from validators.kvittens import _csv_safe

    assert _csv_safe("-200") == "-200"


def test_findings_csv_into_a_missing_folder_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.setenv("VARDFIL_REFERENCE", str(SAMPLE_DIR / "reference"))
    target = tmp_path / "saknas" / "fel.csv"
    code, _ = cli("validate", str(SAMPLE_DIR / "files" / f"VGP_{UNIT_A}_202610_01.csv"), "--findings-csv", str(target))
    assert code == 2 and not (tmp_path / "saknas").exists()
    assert not list(tmp_path.rglob("*.tmp"))


def test_the_web_dependencies_have_upper_bounds():
    import tomllib

    deps = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]["dependencies"]
    web = [d for d in deps if re.match(r"(fastapi|starlette|uvicorn|jinja2|python-multipart)\b", d)]
    assert len(web) == 5 and all("<" in d for d in web), web
