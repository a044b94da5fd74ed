"""The journal systems' API (/api/v1): tokens, the fixed contract, one unit per token, and the
arrival instant taken before the body."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
from conftest import KVITTENS_KEYS, cli, web_env
from fastapi.testclient import TestClient

from sample_data import SAMPLE_DIR

UNIT_A, UNIT_B = "SE2321000131-E000000001001", "SE2321000131-E000000002001"
FILE_A = SAMPLE_DIR / "files" / f"VGP_{UNIT_A}_202610_02.csv"
FILE_B = SAMPLE_DIR / "files" / f"REH_{UNIT_B}_202610_01.csv"


@pytest.fixture
def server(tmp_path, monkeypatch):
    """The web server on a fresh home, in-process validation (threads), the test clock at
    2026-11-03 10:00; tokens for unit A and unit B made through the CLI."""
    from vardfil.portal.app import create_app

    clock = web_env(monkeypatch, tmp_path, "2026-11-03T10:00:00+01:00")
    tokens = {}
    for unit, name in ((UNIT_A, "cosmic-a"), (UNIT_B, "takecare-b")):
        code, out = cli("token", "create", unit, "--name", name)
        assert code == 0
        tokens[unit] = out.strip()
    app = create_app()
    yield app, tokens, clock, tmp_path / "home"
    app.state.vardfil.close()


def send(client: TestClient, token: str | None, path: Path, name: str | None = None, **params: str):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post(
        "/api/v1/filer",
        headers=headers,
        params=params,
        files={"file": (name or path.name, path.read_bytes(), "text/csv")},
    )


def test_a_token_is_shown_once_and_stored_only_as_a_hash(server):
    _, tokens, _, home = server
    assert all(t.startswith("vf_") and len(t) > 40 for t in tokens.values())
    code, out = cli("token", "list", "--json")
    listed = json.loads(out)
    assert code == 0 and {t["name"] for t in listed} == {"cosmic-a", "takecare-b"}
    assert not any(tok in out for tok in tokens.values())
    db = sqlite3.connect(home / "ledger.sqlite3")
    dump = "\n".join(db.iterdump())
    assert not any(tok in dump for tok in tokens.values())
    assert cli("token", "create", UNIT_A, "--name", "cosmic-a")[0] == 2  # names are unique
    assert cli("token", "create", "SE2321000131-E000000009999", "--name", "x")[0] == 2  # unknown unit


def test_a_file_in_its_kvittens_out(server):
    app, tokens, _, _ = server
    client = TestClient(app)
    resp = send(client, tokens[UNIT_A], FILE_A)
    assert resp.status_code == 200, resp.text
    kv = resp.json()
    assert list(kv) == KVITTENS_KEYS and kv["status"] == "GODKAND" and kv["on_time"] is True
    assert kv["received_at"] == "2026-11-03T10:00:00+01:00"
    f = app.state.vardfil.ledger.files.file_by_receipt(kv["receipt_id"])
    assert f is not None and f.source == "api" and f.actor == "token:1"  # the token by its id
    # The same file again is the byte-identical copy: the same kvittens, nothing new recorded.
    assert send(client, tokens[UNIT_A], FILE_A).json() == kv


def test_test_mode_judges_and_records_nothing(server):
    app, tokens, _, _ = server
    client = TestClient(app)
    kv = send(client, tokens[UNIT_A], FILE_A, test="true").json()
    assert list(kv) == KVITTENS_KEYS and kv["status"] == "GODKAND"
    assert app.state.vardfil.ledger.files.file_by_receipt(kv["receipt_id"]) is None
    assert app.state.vardfil.ledger.files.files_for_period("2026-10") == []


@pytest.mark.parametrize("token", [None, "vf_not-a-token", "Basic dXNlcjpwYXNz"])
def test_no_valid_token_is_401_as_json(server, token):
    app, _, _, _ = server
    resp = send(TestClient(app), token, FILE_A)
    assert resp.status_code == 401 and resp.json()["error"] == "unauthorized" and resp.json()["detail"]
    assert resp.headers["www-authenticate"] == "Bearer"


def test_a_revoked_token_stops_at_once(server):
    app, tokens, _, _ = server
    assert cli("token", "revoke", "cosmic-a")[0] == 0
    assert send(TestClient(app), tokens[UNIT_A], FILE_A).status_code == 401
    assert cli("token", "revoke", "cosmic-a")[0] == 2


def test_a_token_acts_for_its_own_unit_only(server):
    app, tokens, _, _ = server
    client = TestClient(app)
    resp = send(client, tokens[UNIT_A], FILE_B)  # named for unit B
    assert resp.status_code == 403 and resp.json()["error"] == "forbidden"
    b = send(client, tokens[UNIT_B], FILE_B).json()["receipt_id"]
    a = send(client, tokens[UNIT_A], FILE_A).json()["receipt_id"]
    auth_a = {"Authorization": f"Bearer {tokens[UNIT_A]}"}
    # Unit A's token on unit B's kvittens: as if it did not exist.
    for path in (f"/api/v1/kvittenser/{b}", f"/api/v1/kvittenser/{b}/findings.csv", "/api/v1/kvittenser/KV-nope"):
        resp = client.get(path, headers=auth_a)
        assert resp.status_code == 404 and resp.json()["error"] == "not_found", path
        assert UNIT_B not in resp.text
    own = client.get(f"/api/v1/kvittenser/{a}", headers=auth_a)
    assert own.status_code == 200 and own.json()["receipt_id"] == a
    csv = client.get(f"/api/v1/kvittenser/{a}/findings.csv", headers=auth_a)
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert client.get(f"/api/v1/kvittenser/{a}").status_code == 401


def test_a_badly_named_file_is_answered_and_readable_by_its_sender_only(server):
    app, tokens, _, _ = server
    client = TestClient(app)
    kv = send(client, tokens[UNIT_A], FILE_A, name="min_fil.csv").json()
    assert kv["status"] == "AVVISAD" and "F01" in kv["counts_by_rule"]
    path = f"/api/v1/kvittenser/{kv['receipt_id']}"
    assert client.get(path, headers={"Authorization": f"Bearer {tokens[UNIT_A]}"}).status_code == 200
    assert client.get(path, headers={"Authorization": f"Bearer {tokens[UNIT_B]}"}).status_code == 404


def test_a_form_without_the_file_is_400_json(server):
    app, tokens, _, _ = server
    client = TestClient(app)
    auth = {"Authorization": f"Bearer {tokens[UNIT_A]}"}
    resp = client.post("/api/v1/filer", headers=auth, data={"other": "x"}, files={"x": ("a.csv", b"1")})
    assert resp.status_code == 400 and resp.json()["error"] == "bad_request"
    resp = client.post("/api/v1/filer", headers={**auth, "content-type": "text/csv"}, content=b"a;b\n")
    assert resp.status_code == 400


def test_openapi_describes_the_contract(server):
    app, _, _, _ = server
    doc = TestClient(app).get("/api/v1/openapi.json").json()
    assert {"/filer", "/kvittenser/{receipt_id}", "/kvittenser/{receipt_id}/findings.csv"} <= set(doc["paths"])
    assert "test" in {p["name"] for p in doc["paths"]["/filer"]["post"].get("parameters", [])}


def _multipart(path: Path) -> tuple[bytes, str]:
    boundary = "vardfil-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
            f"Content-Type: text/csv\r\n\r\n"
        ).encode()
        + path.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def asgi_post(app, path: str, headers: dict[str, str], chunks: list[bytes], on_first_receive=None):
    """Drive the ASGI app directly: the body arrives in ``chunks``; ``on_first_receive`` runs when
    the app first asks for the body (a slow network, a moving clock). Returns (status, body, the
    number of body bytes the app read)."""
    sent: list[dict] = []
    read = {"bytes": 0, "calls": 0}
    queue = list(chunks)

    async def receive():
        read["calls"] += 1
        if read["calls"] == 1 and on_first_receive:
            on_first_receive()
        if queue:
            chunk = queue.pop(0)
            read["bytes"] += len(chunk)
            return {"type": "http.request", "body": chunk, "more_body": bool(queue)}
        return {"type": "http.disconnect"}

    async def send_(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    asyncio.run(app(scope, receive, send_))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], body, read["bytes"]


def test_received_at_is_the_arrival_not_when_the_body_was_read(server):
    """Sent at 14:59:58; the body takes until 15:00:04 to arrive. On time."""
    app, tokens, clock, _ = server
    clock.write_text("2026-11-04T14:59:58+01:00")
    body, ctype = _multipart(FILE_A)
    status, out, _ = asgi_post(
        app,
        "/api/v1/filer",
        {"authorization": f"Bearer {tokens[UNIT_A]}", "content-type": ctype},
        [body[: len(body) // 2], body[len(body) // 2 :]],
        on_first_receive=lambda: clock.write_text("2026-11-04T15:00:04+01:00"),
    )
    kv = json.loads(out)
    assert status == 200 and kv["received_at"] == "2026-11-04T14:59:58+01:00" and kv["on_time"] is True


def test_an_unauthenticated_upload_is_refused_before_its_body(server):
    app, _, _, _ = server
    body, ctype = _multipart(FILE_A)
    status, _out, read = asgi_post(app, "/api/v1/filer", {"content-type": ctype}, [body])
    assert status == 401 and read == 0


def test_a_declared_oversize_body_is_413_unread(server):
    app, tokens, _, _ = server
    headers = {
        "authorization": f"Bearer {tokens[UNIT_A]}",
        "content-type": "multipart/form-data; boundary=x",
        "content-length": str(260 * 1024 * 1024),
    }
    status, out, read = asgi_post(app, "/api/v1/filer", headers, [b"x" * 1024])
    assert status == 413 and read == 0 and json.loads(out)["error"] == "too_large"
