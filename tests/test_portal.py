"""The portal through HTTP: sign-in, CSRF, the unit's upload → kvittens → fix flow, the analyst's
month, and unit isolation on every route."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import web_env
from fastapi.testclient import TestClient

from sample_data import SAMPLE_DIR

UNIT_A, UNIT_B = "SE2321000131-E000000001001", "SE2321000131-E000000002001"
PASSWORD = "korrekt-hast-batteri"
FILE_A1 = SAMPLE_DIR / "files" / f"VGP_{UNIT_A}_202610_01.csv"
FILE_A2 = SAMPLE_DIR / "files" / f"VGP_{UNIT_A}_202610_02.csv"
FILE_B = SAMPLE_DIR / "files" / f"REH_{UNIT_B}_202610_01.csv"


@pytest.fixture
def portal(tmp_path, monkeypatch):
    from vardfil.accounts import create_account
    from vardfil.ledger import Ledger
    from vardfil.portal.app import create_app

    # The real worker processes (pool_workers=None): the path production takes.
    clock = web_env(monkeypatch, tmp_path, "2026-11-02T10:00:00+01:00", pool_workers=None)
    app = create_app()
    ledger: Ledger = app.state.vardfil.ledger
    create_account(ledger, username="anna", password=PASSWORD, role="unit", units=[UNIT_A], actor="job:test")
    create_account(ledger, username="bertil", password=PASSWORD, role="unit", units=[UNIT_B], actor="job:test")
    create_account(ledger, username="analytiker", password=PASSWORD, role="analyst", units=[], actor="job:test")
    yield app, clock
    app.state.pool.shutdown()  # the worker processes of this app: not kept until the session ends
    ledger.dispose()


def login(app, username: str) -> TestClient:
    client = TestClient(app, base_url="http://testserver")
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    resp = client.post(
        "/login", data={"username": username, "password": PASSWORD, "csrf": csrf}, follow_redirects=False
    )
    assert resp.status_code == 303, resp.text
    cookie = resp.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    return client


def csrf_of(client: TestClient, path: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get(path).text).group(1)


def upload(client: TestClient, hsaid: str, path: Path, name: str | None = None):
    token = csrf_of(client, f"/enhet/{hsaid}")
    return client.post(
        f"/enhet/{hsaid}/upload",
        data={"csrf": token},
        files={"file": (name or path.name, path.read_bytes(), "text/csv")},
        follow_redirects=False,
    )


def test_sign_in_rejects_bad_passwords_and_missing_csrf(portal):
    app, _ = portal
    client = TestClient(app)
    csrf = csrf_of(client, "/login")
    assert client.post("/login", data={"username": "anna", "password": "fel", "csrf": csrf}).status_code == 401
    assert client.post("/login", data={"username": "anna", "password": PASSWORD}).status_code == 403
    assert client.get("/enhet/" + UNIT_A, follow_redirects=False).headers["location"] == "/login"


def test_unit_uploads_reads_kvittens_and_fixes_the_file(portal):
    app, _ = portal
    anna = login(app, "anna")
    resp = upload(anna, UNIT_A, FILE_A1)
    assert resp.status_code == 303
    page = anna.get(resp.headers["location"])
    assert "DELVIS_GODKAND" in page.text and "R21" in page.text and "Kontrollsiffran i patient_id är fel" in page.text
    assert "Förhandsvisning av ersättningsunderlaget" in page.text
    receipt = resp.headers["location"].rsplit("/", 1)[-1]
    csv_text = anna.get(f"/kvittens/{receipt}/findings.csv").content.decode("utf-8-sig")
    assert csv_text.startswith("rule;severity;row") and "****" in csv_text
    assert anna.get(f"/kvittens/{receipt}/kvittens.json").json()["status"] == "DELVIS_GODKAND"
    # Without the CSRF token an upload is refused.
    assert anna.post(f"/enhet/{UNIT_A}/upload", files={"file": (FILE_A2.name, FILE_A2.read_bytes())}).status_code == 403
    fixed = anna.get(upload(anna, UNIT_A, FILE_A2).headers["location"])
    assert "GODKAND" in fixed.text and "Skillnad mot" in fixed.text and "ändrade" in fixed.text
    _reads_swedish(page.text, "Delvis godkänd")
    _reads_swedish(fixed.text, "Godkänd")
    home = anna.get(f"/enhet/{UNIT_A}")
    assert FILE_A1.name in home.text and FILE_A2.name in home.text and "kvar" in home.text


def _reads_swedish(html: str, status: str) -> None:
    """A kvittens page as a Swede reads it: the status by its name, amounts as 1 004 878,50 kr (the
    separator is CLDR's no-break space), counts grouped, the time in Swedish local form."""
    import re

    text = html.replace("\u00a0", " ")
    assert re.search(r'id="status" data-code="[A-Z_]+">' + status + "<", text)
    amounts = re.findall(r">(-?[\d ]+,\d{2}) kr<", text)
    assert len(amounts) >= 5 and any(re.fullmatch(r"-?\d{1,3}( \d{3})+,\d{2}", a) for a in amounts), amounts
    assert re.search(r'id="rows-total">1 800<', text)
    assert not re.search(r"\d\.\d{2} kr", text)  # no 1004878.50 kr
    assert re.search(r"mottagen 2026-11-0\d \d\d:\d\d:\d\d", text) and "+01:00" not in text


def test_hostile_upload_names_are_only_text(portal, tmp_path):
    app, _ = portal
    anna = login(app, "anna")
    resp = upload(anna, UNIT_A, FILE_A1, name="../../../etc/VGP_x.csv")
    page = anna.get(resp.headers["location"])
    assert "F01" in page.text
    assert not Path("/etc/VGP_x.csv").exists()
    assert upload(anna, UNIT_A, FILE_B).status_code == 403  # a file named for another unit


def test_analyst_sees_the_month_closes_and_unit_approves(portal):
    app, clock = portal
    anna = login(app, "anna")
    upload(anna, UNIT_A, FILE_A2)
    analyst = login(app, "analytiker")
    board = analyst.get("/analys/2026-10")
    assert "i tid" in board.text and "saknas" in board.text and "kan stängas efter tidsgränsen" in board.text
    clock.write_text("2026-11-04T15:05:00+01:00")
    token = csrf_of(analyst, "/analys/2026-10")
    assert analyst.post("/analys/2026-10/close", data={"csrf": token}, follow_redirects=False).status_code == 303
    board = analyst.get("/analys/2026-10")
    assert "Fastställ perioden" in board.text and " kr" in board.text
    assert analyst.get("/analys/2026-10/download/region_2026-10.xlsx").status_code == 200
    assert analyst.get("/analys/2026-10/download/..%2F..%2Fledger.sqlite3").status_code == 404
    home = anna.get(f"/enhet/{UNIT_A}")
    assert "Ersättningsunderlag 2026-10" in home.text
    token = csrf_of(anna, f"/enhet/{UNIT_A}")
    anna.post(f"/enhet/{UNIT_A}/underlag/2026-10/svar", data={"csrf": token, "action": "GODKANN"})
    assert "Godkänt" in anna.get(f"/enhet/{UNIT_A}").text
    # The close published the region workbook; the unit's is written when it is first downloaded,
    # from what the close recorded, and is the same file the next time.
    book = app.state.vardfil.output / "2026-10" / "enheter" / f"{UNIT_A}_VGP_2026-10.xlsx"
    assert not book.exists()
    first = anna.get(f"/enhet/{UNIT_A}/underlag/2026-10.xlsx")
    assert first.status_code == 200 and first.content[:2] == b"PK" and book.is_file()
    assert anna.get(f"/enhet/{UNIT_A}/underlag/2026-10.xlsx").content == first.content
    assert anna.get(f"/enhet/{UNIT_A}/underlag/2026-11.xlsx").status_code == 404  # not closed
    assert "underlag_godkann" in analyst.get("/analys/audit/log").text


# Every route, with what another unit's user may do there. A new route without a row fails.
PUBLIC = {
    ("GET", "/login"),
    ("POST", "/login"),
    ("GET", "/healthz"),
    # The probes and Prometheus' scrape: counts, states and instants, never a unit's data or a
    # person (tests/test_watched.py); the region's proxy keeps them off the outside address.
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/"),
    ("POST", "/logout"),
    ("GET", "/tillganglighet"),  # the accessibility statement: the law wants it reachable by anyone
    # A one-time link is its own proof (its token is the secret); tested in test_unit_admin.
    ("GET", "/konto/losenord/{token}"),
    ("POST", "/konto/losenord/{token}"),
    # Signing in through the IdP: no session yet (the state and the IdP's signatures are the
    # proof; tested in test_identity).
    ("GET", "/oidc/login"),
    ("GET", "/oidc/callback"),
    ("POST", "/oidc/backchannel-logout"),
}
# Readable by anyone signed in (the rule catalogue): nothing in them belongs to a unit.
SHARED = {("GET", "/regler"), ("GET", "/regler/{version}"), ("GET", "/regler/{version}/{code}")}
ISOLATION = {
    ("GET", "/enhet/{hsaid}"): f"/enhet/{UNIT_B}",
    ("POST", "/enhet/{hsaid}/upload"): f"/enhet/{UNIT_B}/upload",
    ("GET", "/kvittens/{receipt_id}"): "/kvittens/{b}",
    ("GET", "/kvittens/{receipt_id}/findings.csv"): "/kvittens/{b}/findings.csv",
    ("GET", "/kvittens/{receipt_id}/kvittens.json"): "/kvittens/{b}/kvittens.json",
    ("GET", "/enhet/{hsaid}/underlag/{period}.xlsx"): f"/enhet/{UNIT_B}/underlag/2026-10.xlsx",
    ("POST", "/enhet/{hsaid}/underlag/{period}/svar"): f"/enhet/{UNIT_B}/underlag/2026-10/svar",
    ("GET", "/analys"): "/analys",
    ("GET", "/analys/{period}"): "/analys/2026-10",
    ("POST", "/analys/{period}/dispens"): "/analys/2026-10/dispens",
    ("POST", "/analys/{period}/close"): "/analys/2026-10/close",
    ("POST", "/analys/{period}/finalise"): "/analys/2026-10/finalise",
    ("GET", "/analys/{period}/download/{name}"): "/analys/2026-10/download/underlag.parquet",
    ("GET", "/analys/audit/log"): "/analys/audit/log",
    ("GET", "/enhet/{hsaid}/konton"): f"/enhet/{UNIT_B}/konton",
    ("POST", "/enhet/{hsaid}/konton"): f"/enhet/{UNIT_B}/konton",
    ("POST", "/enhet/{hsaid}/konton/{username}/inaktivera"): f"/enhet/{UNIT_B}/konton/bertil/inaktivera",
    ("POST", "/enhet/{hsaid}/konton/{username}/aterstall"): f"/enhet/{UNIT_B}/konton/bertil/aterstall",
    ("POST", "/enhet/{hsaid}/nycklar"): f"/enhet/{UNIT_B}/nycklar",
    ("POST", "/enhet/{hsaid}/nycklar/{name}/aterkalla"): f"/enhet/{UNIT_B}/nycklar/x/aterkalla",
    ("POST", "/enhet/{hsaid}/konto/{account_id}/inaktivera"): f"/enhet/{UNIT_B}/konto/2/inaktivera",
    ("POST", "/enhet/{hsaid}/konto/{account_id}/aterstall"): f"/enhet/{UNIT_B}/konto/2/aterstall",
    ("POST", "/enhet/{hsaid}/nyckel/{token_id}/aterkalla"): f"/enhet/{UNIT_B}/nyckel/1/aterkalla",
    ("POST", "/enhet/{hsaid}/konto/{account_id}/admin"): f"/enhet/{UNIT_B}/konto/2/admin",
    # The payment basis: the analysts' (make it, its files), a unit's own document.
    ("POST", "/analys/{period}/utbetalning"): "/analys/2026-10/utbetalning",
    ("GET", "/analys/{period}/utbetalning/{name}"): "/analys/2026-10/utbetalning/utbetalning_202610.csv",
    ("GET", "/enhet/{hsaid}/utbetalning/{period}"): f"/enhet/{UNIT_B}/utbetalning/2026-10",
    (
        "GET",
        "/enhet/{hsaid}/utbetalning/{period}/avrakningsnota.xml",
    ): f"/enhet/{UNIT_B}/utbetalning/2026-10/avrakningsnota.xml",
    # The auditor's pages (the access log's follow-up and a patient's extract): not a unit's.
    ("GET", "/logg"): "/logg",
    ("GET", "/logg/uppfoljning/{period}"): "/logg/uppfoljning/2026-10",
    ("POST", "/logg/uppfoljning/{period}"): "/logg/uppfoljning/2026-10",
    ("POST", "/logg/patient"): "/logg/patient",
}


def test_a_unit_user_can_never_read_or_act_on_another_units_data(portal):
    app, clock = portal
    routes = {(m, r.path) for r in app.routes if hasattr(r, "methods") for m in r.methods if m != "HEAD"}
    assert routes == set(ISOLATION) | PUBLIC | SHARED, routes ^ (set(ISOLATION) | PUBLIC | SHARED)
    bertil = login(app, "bertil")
    b_receipt = upload(bertil, UNIT_B, FILE_B).headers["location"].rsplit("/", 1)[-1]
    clock.write_text("2026-11-04T15:05:00+01:00")
    analyst = login(app, "analytiker")
    analyst.post("/analys/2026-10/close", data={"csrf": csrf_of(analyst, "/analys/2026-10")})
    anna = login(app, "anna")
    token = csrf_of(anna, f"/enhet/{UNIT_A}")
    for (method, _), path in ISOLATION.items():
        path = path.replace("{b}", b_receipt)
        resp = anna.request(
            method,
            path,
            data={
                "csrf": token,
                "action": "GODKANN",
                "unit": UNIT_B,
                "until": "2026-12-01T15:00:00+01:00",
                "reason": "x",
            },
            follow_redirects=False,
        )
        assert resp.status_code in (403, 404), (method, path, resp.status_code)
        assert UNIT_B not in resp.text.replace(f"/enhet/{UNIT_B}", "") or resp.status_code == 403
        assert "Rehab Strandvägen" not in resp.text


def test_dispens_is_typed_in_swedish_time(portal):
    app, _ = portal
    analyst = login(app, "analytiker")
    board = analyst.get("/analys/2026-10").text
    assert 'id="until" name="until" type="datetime-local"' in board
    token = csrf_of(analyst, "/analys/2026-10")
    form = {"csrf": token, "unit": UNIT_A, "reason": "Journalsystemet nere"}
    resp = analyst.post("/analys/2026-10/dispens", data={**form, "until": "2026-11-06T15:00"}, follow_redirects=False)
    assert resp.status_code == 303
    row = analyst.get("/analys/2026-10").text.split(f'data-unit="{UNIT_A}"')[1].split("</tr>")[0]
    assert "2026-11-06 15:00" in row
    twice = analyst.post("/analys/2026-10/dispens", data={**form, "until": "2026-10-25T02:30"}, follow_redirects=False)
    assert twice.status_code == 400 and "svensk tid" in twice.text
