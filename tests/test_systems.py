"""Journal systems by SITHS function certificate: a real nginx with the repository's configuration
(deploy/nginx) terminates TLS and verifies client certificates from a test CA made here; a real
``vardfil serve`` behind it believes the certificate headers only from nginx."""

from __future__ import annotations

import datetime as dt
import json
import ssl
import subprocess
import sys
from urllib.parse import quote

import httpx
import pytest
from nginx_support import TestCA, need_nginx, running_nginx
from server_support import free_port, running_server, server_env

from sample_data import SAMPLE_DIR

UNIT_A, UNIT_B = "SE2321000131-E000000001001", "SE2321000131-E000000001002"
SYSTEM = "SE2321000131-F000000000001"
FILE_A = SAMPLE_DIR / "files" / f"VGP_{UNIT_A}_202610_02.csv"
FILE_B = SAMPLE_DIR / "files" / f"VGP_{UNIT_B}_202610_01.csv"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    need_nginx()
    folder = tmp_path_factory.mktemp("mtls")
    siths = TestCA(folder / "pki", "SITHS-test-funktion-CA")
    other = TestCA(folder / "pki", "Annan-CA")
    server_ca = TestCA(folder / "pki", "Server-CA")
    server = server_ca.issue("server", common_name="vardfil.test", server_ip="127.0.0.1")
    certs = {
        "system": siths.issue("system", common_name="Cosmic", serial_number=SYSTEM),
        "expired": siths.issue(
            "expired", common_name="Cosmic", serial_number=SYSTEM, valid=(dt.timedelta(days=-20), dt.timedelta(days=-1))
        ),
        "other-ca": other.issue("other", common_name="Cosmic", serial_number=SYSTEM),
        "unregistered": siths.issue("unregistered", common_name="Okänd", serial_number="SE2321000131-F000000000099"),
    }
    port = free_port()
    env, _ = server_env(
        folder,
        "2026-11-03T10:00:00+01:00",
        VARDFIL_POOL_WORKERS="1",
        VARDFIL_TRUSTED_PROXIES="127.0.0.2",  # nginx connects from there; the tests' own client from 127.0.0.1
    )
    added = subprocess.run(
        [sys.executable, "-m", "vardfil.cli", "system", "add", SYSTEM, "--unit", UNIT_A, "--name", "Cosmic"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert added.returncode == 0, added.stderr
    with (
        running_server(env, port=port) as direct,
        running_nginx(
            folder, upstream=f"127.0.0.1:{port}", server=server, client_ca=siths.pem, bind="127.0.0.2"
        ) as base,
    ):
        yield base, direct, certs, server_ca.pem, env


def _client(base: str, ca, cert) -> httpx.Client:
    """A TLS client that trusts the test server CA and presents ``cert`` (none: no certificate)."""
    context = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        context.load_cert_chain(str(cert.cert), str(cert.key))
    return httpx.Client(base_url=base, verify=context, timeout=120)


def _send(base: str, ca, cert, path, name=None) -> httpx.Response:
    with _client(base, ca, cert) as c:
        return c.post("/api/v1/filer", files={"file": (name or path.name, path.read_bytes(), "text/csv")})


def test_a_registered_system_sends_for_its_unit_and_no_other(live):
    base, _, certs, ca, env = live
    ok = _send(base, ca, certs["system"], FILE_A)
    assert ok.status_code == 200, ok.text
    kv = ok.json()
    assert kv["status"] == "GODKAND"
    refused = _send(base, ca, certs["system"], FILE_B)
    assert refused.status_code == 403 and "får skicka för" in refused.json()["detail"]
    # Read back by the system itself; recorded and audited as system:<HSA-id>.
    with _client(base, ca, certs["system"]) as c:
        assert c.get(f"/api/v1/kvittenser/{kv['receipt_id']}").json() == kv
    listed = json.loads(
        subprocess.run(
            [sys.executable, "-m", "vardfil.cli", "system", "list", "--json"], env=env, capture_output=True, text=True
        ).stdout
    )
    assert listed[0]["actor"] == f"system:{SYSTEM}" and listed[0]["units"] == [UNIT_A]


@pytest.mark.parametrize("which", ["expired", "other-ca", "unregistered", None])
def test_bad_or_missing_certificates_are_refused(live, which):
    base, _, certs, ca, _ = live
    resp = _send(base, ca, certs[which] if which else None, FILE_A)
    # nginx refuses a certificate it cannot verify (400); vardfil one it does not know, and none (401).
    assert resp.status_code in ((400,) if which in ("expired", "other-ca") else (401,)), resp.text[:200]


def test_certificate_headers_straight_to_vardfil_are_ignored(live):
    """The same headers nginx would send, sent by someone who is not nginx: not a system."""
    _, direct, certs, _, _ = live
    pem = certs["system"].cert.read_text()
    resp = httpx.post(
        f"{direct}/api/v1/filer",
        headers={"X-Client-Verify": "SUCCESS", "X-Client-Cert": quote(pem)},
        files={"file": (FILE_A.name, FILE_A.read_bytes(), "text/csv")},
    )
    assert resp.status_code == 401


def test_a_revoked_system_sends_nothing(live):
    base, _, certs, ca, env = live
    code = subprocess.run(
        [sys.executable, "-m", "vardfil.cli", "system", "revoke", SYSTEM], env=env, capture_output=True
    )
    assert code.returncode == 0
    try:
        assert _send(base, ca, certs["system"], FILE_A).status_code == 401
    finally:
        subprocess.run(
            [sys.executable, "-m", "vardfil.cli", "system", "add", SYSTEM, "--unit", UNIT_A],
            env=env,
            capture_output=True,
        )
