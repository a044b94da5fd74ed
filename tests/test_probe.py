"""The probe's findings (issue "Hardening: who an actor is, personnummer in every form"), one test
each: the attack as it was made, and what the attacker gets now.

| finding | test |
|---|---|
| an account named like a token's actor read its F01 files | test_an_account_named_api_colon_reads_no_tokens_file |
| an account named ``airflow`` read the DAG's F01 files | test_an_account_named_airflow_reads_no_dag_file |
| names a person could not tell apart, or no name at all | test_odd_names_are_refused |
| two tokens sharing 124 characters read each other's F01 files | test_tokens_with_a_shared_prefix_are_strangers |
| the audit log could not tell these actors from the real ones | test_every_actor_in_the_audit_log_is_typed |
| a personnummer without separator or with a space shown unmasked | test_a_number_in_every_form_is_masked_on_the_page_the_api_and_the_csv |
| a personnummer in a file name in the audit log and on its page | test_a_number_in_a_file_name_never_reaches_the_audit_log |
| 2026.1: another unit's exact bytes answered with its kvittens | test_a_copy_of_another_units_file_discloses_nothing |
| accounts and tokens named with / ? or nothing could not be managed | test_odd_legacy_names_can_be_disabled_and_revoked |
| 20 parallel guesses were all checked | test_parallel_guesses_are_counted_before_they_are_checked |
| five strangers' requests locked the owner out for 15 minutes | test_strangers_slow_a_name_but_the_owner_gets_in |
| X-Forwarded-For trusted from any loopback peer | test_x_forwarded_for_counts_only_from_trusted_proxies |
| a set-password link's token in the access log | test_a_link_token_never_reaches_the_access_log |
| "account 'X' exists" told a unit admin about other accounts | test_a_taken_name_names_no_owner |
| invalid or unpriced periods answered 500 | test_every_invalid_period_is_a_404 |
| a file name with a trailing line break was read as valid | test_a_trailing_line_break_makes_an_invalid_name |
| no HSTS over TLS | test_hsts_is_sent_when_served_over_tls |
| no idle timeout | test_an_idle_session_ends_after_30_minutes |
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
import re
import subprocess
import sys

import httpx
import pytest
from conftest import cli, file_name, make_file, web_env
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_support import free_port, server_env
from test_identifiers import written

from filespec.calendar import parse_instant
from sample_data import SAMPLE_DIR
from sample_data.generate import REH_FIELDS, VGP_FIELDS

UNIT_A, UNIT_B, UNIT_C = "SE2321000131-E000000001001", "SE2321000131-E000000002001", "SE2321000131-E000000001002"
PASSWORD = "korrekt-hast-batteri"
FILE_A = SAMPLE_DIR / "files" / f"VGP_{UNIT_A}_202610_02.csv"


# --- the surroundings ---------------------------------------------------------------------------


@pytest.fixture
def web(tmp_path, monkeypatch):
    """The server on a fresh home (validation in threads), tokens for units A, B and C, a unit
    admin of A and an analyst."""
    from vardfil.accounts import create_account
    from vardfil.portal.app import create_app

    clock = web_env(monkeypatch, tmp_path, "2026-11-03T10:00:00+01:00")
    tokens = {}
    for unit, name in ((UNIT_A, "cosmic-a"), (UNIT_B, "takecare-b"), (UNIT_C, "cosmic-c")):
        code, out = cli("token", "create", unit, "--name", name)
        assert code == 0
        tokens[unit] = out.strip()
    app = create_app()
    ledger = app.state.vardfil.ledger
    create_account(ledger, username="adam", password=PASSWORD, role="unit_admin", units=[UNIT_A], actor="job:test")
    create_account(ledger, username="analytiker", password=PASSWORD, role="analyst", units=[], actor="job:test")
    yield app, tokens, clock
    app.state.vardfil.close()


def _legacy_account(app, name: str, role: str = "unit", units: tuple[str, ...] = (UNIT_A,)) -> int:
    """An account made before the naming rules (written straight into the ledger, as an old
    version did): it must still work, and still be manageable."""
    from vardfil.accounts import hash_password
    from vardfil.ledger.tables import Account, AccountUnit

    ledger = app.state.vardfil.ledger
    with ledger.transaction() as s:
        acc = Account(
            username=name,
            name_key=f"legacy:{name}",
            password_hash=hash_password(PASSWORD),
            role=role,
            created_at=dt.datetime.now(dt.UTC),
        )
        s.add(acc)
        s.flush()
        for u in units:
            s.add(AccountUnit(account_id=acc.id, unit_hsaid=u))
        return acc.id


def _legacy_token(app, name: str, unit: str = UNIT_A) -> int:
    from vardfil.ledger.tables import ApiToken

    with app.state.vardfil.ledger.transaction() as s:
        tok = ApiToken(
            name=name,
            name_key=f"legacy:{name}",
            unit_hsaid=unit,
            token_sha256="0" * 60 + f"{len(name):04d}",
            created_by="job:test",
            created_at=dt.datetime.now(dt.UTC),
        )
        s.add(tok)
        s.flush()
        return tok.id


def _csrf(client: TestClient, path: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get(path).text).group(1)


def _login(app, username: str, password: str = PASSWORD) -> TestClient:
    client = TestClient(app)
    resp = client.post(
        "/login",
        data={"username": username, "password": password, "csrf": _csrf(client, "/login")},
        follow_redirects=False,
    )
    assert resp.status_code == 303, (username, resp.status_code)
    return client


def _send(client: TestClient, token: str, data: bytes, name: str):
    return client.post(
        "/api/v1/filer", headers={"Authorization": f"Bearer {token}"}, files={"file": (name, data, "text/csv")}
    )


def _f01_by_token(app, token: str) -> str:
    """A file with no valid name (F01), sent by a journal system: its receipt id."""
    resp = _send(TestClient(app), token, make_file(), "export.csv")
    assert resp.status_code == 200 and resp.json()["counts_by_rule"] == {"F01": 1}
    return resp.json()["receipt_id"]


def _reads(client: TestClient, receipt: str) -> list[int]:
    return [client.get(f"/kvittens/{receipt}{tail}").status_code for tail in ("", "/kvittens.json", "/findings.csv")]


# --- who an actor is ----------------------------------------------------------------------------


def test_an_account_named_api_colon_reads_no_tokens_file(web):
    """Before: a unit admin made ``api:cosmic-a`` and read the token's F01 kvittens, JSON, CSV."""
    app, tokens, _ = web
    receipt = _f01_by_token(app, tokens[UNIT_A])
    admin = _login(app, "adam")
    form = {"csrf": _csrf(admin, f"/enhet/{UNIT_A}/konton"), "username": "api:cosmic-a", "email": "x@exempel.se"}
    refused = admin.post(f"/enhet/{UNIT_A}/konton", data=form, follow_redirects=False)
    assert refused.status_code == 400 and "får bara innehålla" in refused.text
    _legacy_account(app, "api:cosmic-a", units=(UNIT_B,))  # one made before the rules
    assert _reads(_login(app, "api:cosmic-a"), receipt) == [404, 404, 404]
    assert app.state.vardfil.ledger.files.file_by_receipt(receipt).actor == "token:1"


def test_an_account_named_airflow_reads_no_dag_file(web, tmp_path):
    """Before: an account named ``airflow`` read the F01 files the DAG took in."""
    from vardfil.month.intake import submit

    app, _, _ = web
    core = app.state.vardfil
    sub = submit(
        make_file(),
        file_name="export.csv",
        received_at=parse_instant("2026-11-03T09:00:00+01:00"),
        app=core,
        source_kind="dag",
        actor="job:dag:vardfil_nightly",
    )
    assert cli("user", "add", "airflow", "--role", "unit", "--hsaid", UNIT_A)[0] == 2  # reserved now
    _legacy_account(app, "airflow")
    assert _reads(_login(app, "airflow"), sub.receipt_id) == [404, 404, 404]
    assert _reads(_login(app, "analytiker"), sub.receipt_id) == [200, 200, 200]  # the region sees it


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("api:cosmic-vc-asen", "får bara innehålla"),
        ("airflow", "reserverat"),
        ("portal", "reserverat"),
        ("sample", "reserverat"),
        ("аnalytiker", "får bara innehålla"),  # a Cyrillic а
        ("", "tomt"),
        ("x" * 300, "högst 128"),
        ("anna\nanalytiker", "får bara innehålla"),
        ("a/b", "får bara innehålla"),
        ("c?d#e%f", "får bara innehålla"),
        ("Analytiker", "redan taget"),  # the same name in another case
        ("ａｎａｌｙｔｉｋｅｒ", "redan taget"),  # fullwidth: NFKC makes it the same name
    ],
)
def test_odd_names_are_refused(web, name, why):
    app, _, _ = web
    admin = _login(app, "adam")
    form = {"csrf": _csrf(admin, f"/enhet/{UNIT_A}/konton"), "username": name, "email": "x@exempel.se"}
    resp = admin.post(f"/enhet/{UNIT_A}/konton", data=form, follow_redirects=False)
    assert resp.status_code == 400 and why in resp.text, resp.text[-400:]
    if why != "redan taget":  # token names are names of their own (a token may be called Analytiker)
        assert cli("token", "create", UNIT_A, "--name", name)[0] == 2


def test_tokens_with_a_shared_prefix_are_strangers(web):
    """Before: two tokens of different units whose names shared their first 124 characters read
    each other's F01 files (the actor was the name, cut at 128)."""
    app, _, _ = web
    stem = "journalsystem-" + "x" * 110
    code_a, tok_a = cli("token", "create", UNIT_A, "--name", stem + "-aaa")
    code_b, tok_b = cli("token", "create", UNIT_B, "--name", stem + "-bbb")
    assert code_a == code_b == 0
    receipt = _f01_by_token(app, tok_a.strip())
    client = TestClient(app)
    auth = {"Authorization": f"Bearer {tok_b.strip()}"}
    assert client.get(f"/api/v1/kvittenser/{receipt}", headers=auth).status_code == 404
    assert client.get(f"/api/v1/kvittenser/{receipt}/findings.csv", headers=auth).status_code == 404
    own = {"Authorization": f"Bearer {tok_a.strip()}"}
    assert client.get(f"/api/v1/kvittenser/{receipt}", headers=own).status_code == 200


def test_every_actor_in_the_audit_log_is_typed(web):
    """Every door that writes: a sign-in, an upload, an API file, an admin's token, a close."""
    from vardfil.actors import is_typed

    app, tokens, clock = web
    _f01_by_token(app, tokens[UNIT_A])
    admin = _login(app, "adam")
    admin.post(f"/enhet/{UNIT_A}/nycklar", data={"csrf": _csrf(admin, f"/enhet/{UNIT_A}/konton"), "name": "ny"})
    clock.write_text("2026-11-04T15:05:00+01:00")
    analyst = _login(app, "analytiker")
    analyst.post("/analys/2026-10/close", data={"csrf": _csrf(analyst, "/analys/2026-10")})
    entries = app.state.vardfil.ledger.audit_entries()
    actors = {e.actor for e in entries}
    assert all(is_typed(a) for a in actors), actors
    assert {"token:1", "person:1", "person:2"} <= actors, actors
    with pytest.raises(ValueError, match="typed actors"):
        app.state.vardfil.ledger.add_audit(actor="anna", action="x")
    # The audit page names the actors for a person to read.
    page = analyst.get("/analys/audit/log").text
    assert "adam (konto 1)" in page and "cosmic-a (API-nyckel 1)" in page


# --- personnummer in every form ---------------------------------------------------------------------

FORMS = ["8112189876", "19811218 9876", "811218 9876", "811218-9876", "19811218-9876", "198112189875"]


def test_a_number_in_every_form_is_masked_on_the_page_the_api_and_the_csv(web):
    app, tokens, _ = web
    rows = [{"diagnos_2": form, "besok_id": f"B{i}"} for i, form in enumerate(FORMS)]
    data = make_file(rows=rows)
    resp = _send(TestClient(app), tokens[UNIT_A], data, file_name())
    assert resp.status_code == 200
    receipt = resp.json()["receipt_id"]
    analyst = _login(app, "analytiker")
    shown = [
        resp.text,
        analyst.get(f"/kvittens/{receipt}").text,
        analyst.get(f"/kvittens/{receipt}/kvittens.json").text,
        analyst.get(f"/kvittens/{receipt}/findings.csv").text,
        TestClient(app)
        .get(f"/api/v1/kvittenser/{receipt}", headers={"Authorization": f"Bearer {tokens[UNIT_A]}"})
        .text,
    ]
    for text in shown:
        for form in FORMS:
            assert form not in text, form
        assert "811218****" in text or "19811218****" in text


def test_a_number_in_a_file_name_never_reaches_the_audit_log(web):
    app, tokens, _ = web
    name = "VGP_19811218-9876_oktober.csv"
    resp = _send(TestClient(app), tokens[UNIT_A], make_file(), name)
    assert resp.json()["file_name"] == "VGP_19811218-****_oktober.csv"
    entries = app.state.vardfil.ledger.audit_entries()
    assert not any("9876" in (e.detail or "") + (e.subject or "") for e in entries)
    assert "9876" not in _login(app, "analytiker").get("/analys/audit/log").text


FIELDS = sorted({("VGP", f) for f in VGP_FIELDS} | {("REH", f) for f in REH_FIELDS})


@pytest.mark.parametrize(("file_type", "field"), FIELDS)
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(form=written())
def test_every_form_in_every_field_is_masked_in_the_kvittens_and_findings(reference, file_type, field, form):
    """The property: a person number in any form the region writes, in any field of either file
    type, is in neither the kvittens nor the findings list (where a shown value goes)."""
    from validators import findings_to_csv, validate_file

    data = make_file(file_type, rows=[{field: form}])
    result = validate_file(
        data,
        file_name=file_name(file_type),
        received_at=parse_instant("2026-11-02T10:00:00+01:00"),
        reference=reference,
    )
    shown = json.dumps(result.kvittens.to_dict(), ensure_ascii=False) + findings_to_csv(result.findings).decode(
        "utf-8-sig"
    )
    assert form not in shown


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(form=written(), where=st.sampled_from(["{}.csv", "VGP_{}.csv", "kopia {} oktober.csv", "{}"]))
def test_every_form_in_a_file_name_is_masked_in_the_kvittens_and_the_audit_log(app, form, where):
    from vardfil.month.intake import submit

    name = where.format(form)
    sub = submit(make_file(), file_name=name, received_at=parse_instant("2026-11-02T10:00:00+01:00"), app=app)
    assert form not in json.dumps(sub.kvittens, ensure_ascii=False) and form not in sub.file.file_name
    assert not any(form in (e.detail or "") + (e.subject or "") for e in app.ledger.audit_entries(limit=5))


# --- no cross-unit disclosure ---------------------------------------------------------------------


def test_a_copy_of_another_units_file_discloses_nothing(web):
    """2026.1 (reading 8): a copy of any earlier file is no submission. Before: unit C's journal
    system sent unit A's exact bytes under C's own name and got A's kvittens."""
    app, tokens, _ = web
    client = TestClient(app)
    data = FILE_A.read_bytes()
    first = _send(client, tokens[UNIT_A], data, FILE_A.name).json()
    copy = _send(client, tokens[UNIT_C], data, f"VGP_{UNIT_C}_202610_01.csv")
    assert copy.status_code == 409 and copy.json()["error"] == "conflict"
    assert first["receipt_id"] not in copy.text and UNIT_A not in copy.text and "GODKAND" not in copy.text
    ledger = app.state.vardfil.ledger
    assert len(ledger.files.files_for_period("2026-10")) == 1  # still no submission
    arrival = next(e for e in ledger.audit_entries() if e.action == "copy_received")
    assert arrival.actor == "token:3"
    # The unit's own copy is still answered with its own kvittens, as the spec says.
    assert _send(client, tokens[UNIT_A], data, FILE_A.name).json() == first


# --- odd names that exist ---------------------------------------------------------------------------


def test_odd_legacy_names_can_be_disabled_and_revoked(web):
    app, _, _ = web
    ledger = app.state.vardfil.ledger
    ids = [_legacy_account(app, name) for name in ("a/b", "c?d", "")]
    tokens = [_legacy_token(app, name) for name in ("x/y", "")]
    admin = _login(app, "adam")
    page = admin.get(f"/enhet/{UNIT_A}/konton").text
    csrf = _csrf(admin, f"/enhet/{UNIT_A}/konton")
    for account_id in ids:
        assert f"/enhet/{UNIT_A}/konto/{account_id}/inaktivera" in page
        resp = admin.post(f"/enhet/{UNIT_A}/konto/{account_id}/inaktivera", data={"csrf": csrf}, follow_redirects=False)
        assert resp.status_code == 303
        assert ledger.accounts.by_id(account_id).disabled_at is not None
    for token_id in tokens:
        resp = admin.post(f"/enhet/{UNIT_A}/nyckel/{token_id}/aterkalla", data={"csrf": csrf}, follow_redirects=False)
        assert resp.status_code == 303
    assert all(t.revoked_at for t in ledger.accounts.tokens() if t.id in tokens)
    # And from the command line, by name, with a list to find them in.
    other = _legacy_account(app, "e#f")
    assert cli("user", "disable", "e#f")[0] == 0 and ledger.accounts.by_id(other).disabled_at is not None
    listed = json.loads(cli("user", "list", "--json")[1])
    assert {r["username"] for r in listed} >= {"a/b", "c?d", "", "e#f", "adam"}
    assert next(r for r in listed if r["username"] == "e#f")["disabled_at"] is not None


# --- throttling ---------------------------------------------------------------------------------------


def test_parallel_guesses_are_counted_before_they_are_checked(web, monkeypatch):
    """Before: 20 parallel wrong passwords for one name were all checked (the limit was 5)."""
    import vardfil.accounts as accounts

    app, _, _ = web
    checked = []
    real = accounts.verify_password
    monkeypatch.setattr(accounts, "verify_password", lambda p, h: checked.append(1) or real(p, h))
    ledger = app.state.vardfil.ledger
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        results = list(
            pool.map(lambda i: accounts.sign_in(ledger, "adam", f"gissning-{i}", address=f"10.0.0.{i}"), range(20))
        )
    assert (
        len(checked) <= accounts.NAME_FREE
        and sum(r.locked_until is not None for r in results) >= 20 - accounts.NAME_FREE
    )


def test_strangers_slow_a_name_but_the_owner_gets_in(web, monkeypatch):
    """Before: five unauthenticated requests locked the owner out for 15 minutes, even against the
    right password."""
    import vardfil.accounts as accounts

    app, _, _ = web
    now = [dt.datetime(2026, 11, 3, 9, 0, tzinfo=dt.UTC)]
    monkeypatch.setattr(accounts, "utcnow", lambda: now[0])
    ledger = app.state.vardfil.ledger
    for i in range(5):
        accounts.sign_in(ledger, "adam", "fel", address=f"10.0.0.{i}")
        now[0] += dt.timedelta(milliseconds=10)
    blocked = accounts.sign_in(ledger, "adam", PASSWORD, address="10.9.9.9")
    assert blocked.token is None and blocked.locked_until - now[0] <= dt.timedelta(seconds=8)
    now[0] = blocked.locked_until
    assert accounts.sign_in(ledger, "adam", PASSWORD, address="10.9.9.9").token is not None


def _attempts(base: str, n: int, forwarded: bool) -> list[int]:
    statuses = []
    with httpx.Client(base_url=base, timeout=60) as client:
        for i in range(n):
            page = client.get("/login")
            token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
            headers = {"X-Forwarded-For": f"198.51.100.{i}"} if forwarded else {}
            resp = client.post(
                "/login", data={"username": f"namn-{i}", "password": "fel", "csrf": token}, headers=headers
            )
            statuses.append(resp.status_code)
    return statuses


@pytest.mark.parametrize("trusted", [False, True])
def test_x_forwarded_for_counts_only_from_trusted_proxies(tmp_path, trusted):
    """Before: the per-address limit took any X-Forwarded-For from loopback, so one client could
    spread its guesses over made-up addresses. Against a real ``vardfil serve``."""
    from server_support import running_server

    extra = {"VARDFIL_TRUSTED_PROXIES": "127.0.0.1"} if trusted else {}
    env, _ = server_env(tmp_path, "2026-11-03T10:00:00+01:00", VARDFIL_POOL_WORKERS="0", **extra)
    with running_server(env) as base:
        statuses = _attempts(base, 25, forwarded=True)
    if trusted:
        assert set(statuses) == {401}  # a proxy the operator named: each address its own
    else:
        assert 429 in statuses[20:] and set(statuses[:20]) == {401}  # one peer: one address


def test_a_link_token_never_reaches_the_access_log(tmp_path):
    env, _ = server_env(tmp_path, "2026-11-03T10:00:00+01:00", VARDFIL_POOL_WORKERS="0")
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vardfil.cli", "serve", "--port", str(port)], env=env, stdout=out, stderr=out
        )
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(240):
                try:
                    httpx.get(base + "/healthz", timeout=1)
                    break
                except httpx.HTTPError:
                    import time

                    time.sleep(0.25)
            assert httpx.get(base + "/konto/losenord/hemlig-lanktoken-123").status_code == 410
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    text = log.read_text()
    assert "/konto/losenord/…" in text and "hemlig-lanktoken-123" not in text


# --- the rest -------------------------------------------------------------------------------------


def test_a_taken_name_names_no_owner(web):
    """Before: "account 'X' exists" for any unit's user or an analyst. Now one answer for every taken
    name: it says the name is taken, never whose it is, where or in what role."""
    app, _, _ = web
    _legacy_account(app, "bertil", units=(UNIT_B,))
    admin = _login(app, "adam")
    answers = []
    for name in ("analytiker", "bertil", "adam"):
        form = {"csrf": _csrf(admin, f"/enhet/{UNIT_A}/konton"), "username": name, "email": "x@exempel.se"}
        resp = admin.post(f"/enhet/{UNIT_A}/konton", data=form, follow_redirects=False)
        assert resp.status_code == 400
        message = re.search(r"<p[^>]*>([^<]*redan taget[^<]*)</p>", resp.text).group(1)
        answers.append(message.replace(name, "NAMN"))
    assert len(set(answers)) == 1 and not any(w in answers[0] for w in ("analytiker", UNIT_B, "roll", "enhet"))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/analys/9999-12"),
        ("POST", "/analys/2000-01/close"),
        ("POST", "/analys/9999-12/finalise"),
        ("GET", "/analys/2000-01/download/underlag.parquet"),
        ("GET", f"/enhet/{UNIT_A}/underlag/9999-12.xlsx"),
        ("GET", f"/enhet/{UNIT_A}/underlag/2000-01.xlsx"),
    ],
)
def test_every_invalid_period_is_a_404(web, method, path):
    app, _, _ = web
    client = _login(app, "analytiker")
    resp = client.request(method, path, data={"csrf": _csrf(client, "/analys/2026-10")}, follow_redirects=False)
    assert resp.status_code == 404 and "finns inte" in resp.text


def test_a_trailing_line_break_makes_an_invalid_name():
    from validators import parse_file_name

    assert parse_file_name(file_name()) is not None
    for tail in ("\n", "\r\n", " ", "\x00"):
        assert parse_file_name(file_name() + tail) is None


def test_hsts_is_sent_when_served_over_tls(tmp_path, monkeypatch):
    from vardfil.portal.app import create_app

    web_env(monkeypatch, tmp_path, "2026-11-03T10:00:00+01:00")
    plain = create_app()
    assert "strict-transport-security" not in TestClient(plain).get("/login").headers
    plain.state.vardfil.close()
    monkeypatch.setenv("VARDFIL_SECURE_COOKIES", "1")
    tls = create_app()
    assert TestClient(tls).get("/login").headers["strict-transport-security"].startswith("max-age=31536000")
    tls.state.vardfil.close()


def test_an_idle_session_ends_after_30_minutes(web, monkeypatch):
    import vardfil.accounts as accounts

    app, _, _ = web
    now = [dt.datetime.now(dt.UTC)]
    monkeypatch.setattr(accounts, "utcnow", lambda: now[0])
    client = _login(app, "adam")
    for _ in range(3):  # each request within 29 minutes of the last keeps the session
        now[0] += dt.timedelta(minutes=29)
        assert client.get(f"/enhet/{UNIT_A}", follow_redirects=False).status_code == 200
    now[0] += dt.timedelta(minutes=31)
    assert client.get(f"/enhet/{UNIT_A}", follow_redirects=False).headers["location"] == "/login"


def test_the_table_names_every_test():
    listed = re.findall(r"\| (test_\w+) \|", __doc__)
    here = {name for name in globals() if name.startswith("test_")}
    assert len(listed) == 18 and set(listed) <= here, set(listed) - here


def test_a_legacy_ledger_is_migrated_to_typed_actors(tmp_path):
    """The ledger of the version before (revision 0007) with the attack's accounts and files in it:
    after the upgrade every file's actor is typed, and the attack's account reads nothing."""
    import sqlalchemy as sa

    from vardfil.ledger import Ledger

    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    Ledger(url, migrate=False).migrate("0007")
    eng = sa.create_engine(url)
    now = "2026-11-03 09:00:00"
    with eng.begin() as c:
        c.execute(
            sa.text(
                "INSERT INTO account (id, username, password_hash, role, created_at) VALUES "
                "(1, 'anna', 'x', 'unit', :n), (2, 'api:cosmic-a', 'x', 'unit', :n), (3, 'Anna', 'x', 'unit', :n)"
            ),
            {"n": now},
        )
        c.execute(
            sa.text(
                "INSERT INTO api_token (id, name, unit_hsaid, token_sha256, created_by, created_at) VALUES "
                "(1, 'cosmic-a', :u, 'h1', 'root', :n)"
            ),
            {"u": UNIT_A, "n": now},
        )
        for i, (source, actor, name) in enumerate(
            [
                ("api", "api:cosmic-a", "export.csv"),
                ("portal", "anna", "x.csv"),
                ("dag", "airflow", "y.csv"),
                ("cli", "root", "8112189876.csv"),
                ("portal", "borttagen", "z.csv"),
            ]
        ):
            c.execute(
                sa.text(
                    "INSERT INTO received_file (receipt_id, sha256, file_name, size_bytes, received_at, recorded_at, source,"
                    " actor, status, rows_total, rows_accepted, rows_rejected, rows_with_warnings, kvittens_json,"
                    " findings_path) VALUES (:r, :s, :f, 1, :n, :n, :src, :a, 'AVVISAD', 0, 0, 0, 0, :kv, 'x.csv')"
                ),
                {
                    "r": f"KV-{i}",
                    "s": f"{i:064d}",
                    "f": name,
                    "n": now,
                    "src": source,
                    "a": actor,
                    "kv": json.dumps({"file_name": name, "findings": []}),
                },
            )
    Ledger(url).dispose()  # opening migrates to head
    with eng.connect() as c:
        actors = dict(c.execute(sa.text("SELECT receipt_id, actor FROM received_file")).all())
        keys = dict(c.execute(sa.text("SELECT username, name_key FROM account")).all())
        shown = dict(c.execute(sa.text("SELECT receipt_id, file_name FROM received_file")).all())
    assert actors == {"KV-0": "token:1", "KV-1": "person:1", "KV-2": "job:dag", "KV-3": "job:cli", "KV-4": "job:legacy"}
    assert keys == {"anna": "anna", "api:cosmic-a": "api:cosmic-a", "Anna": "anna#3"}
    assert shown["KV-3"] == "811218****.csv"
