"""The region's IdP for the tests: node ``oidc-provider`` (tests/oidc/provider.mjs) as a real
process, with test persons carrying the SITHS and commission claims; and a client that walks a
sign-in through it the way a browser would.

``scripts/ensure-node.sh`` installs Node.js and npm (Debian) and the pinned provider
(``npm ci``); without them the tests that need the IdP are skipped, except when
``VARDFIL_REQUIRE_OIDC`` is set (CI).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlparse

import httpx
from optional import OIDC, missing
from server_support import free_port

HERE = Path(__file__).resolve().parent / "oidc"
LOA3, LOA2 = "http://id.sambi.se/loa/loa3", "http://id.sambi.se/loa/loa2"
UNIT_A, UNIT_B = "SE2321000131-E000000001001", "SE2321000131-E000000002001"
SECRET = "vardfil-test-secret-0123456789abcdef"


def commission(unit: str, purpose: str = "Vård och behandling", name: str = "Sjuksköterska") -> dict[str, str]:
    return {
        "commissionHsaId": f"{unit}-U1",
        "commissionName": name,
        "commissionPurpose": purpose,
        "commissionRight": "Läsa;Skriva",
        "healthCareUnitHsaId": unit,
        "healthCareProviderHsaId": "SE2321000131-E000000000001",
    }


def siths(hsa: str, given: str, family: str, *, acr: str = LOA3, **claims: object) -> dict[str, object]:
    return {
        "acr": acr,
        "amr": ["smartcard"] if acr == LOA3 else ["pwd"],
        "claims": {
            "employeeHsaId": hsa,
            "given_name": given,
            "family_name": family,
            "email": f"{given.lower()}@exempel.se",
            **claims,
        },
    }


PERSONS: dict[str, dict[str, object]] = {
    "anna": siths("SE2321000131-P000000000001", "Anna", "Andersson", **commission(UNIT_A)),
    "bodil": siths("SE2321000131-P000000000002", "Bodil", "Berg", acr=LOA2, **commission(UNIT_A)),
    "cecilia": siths("SE2321000131-P000000000003", "Cecilia", "Carlsson"),
    "david": siths("SE2321000131-P000000000004", "David", "Dahl", **commission(UNIT_A, purpose="Forskning")),
    "erik": siths("SE2321000131-P000000000005", "Erik", "Ek", **commission("SE2321000131-E000000009999")),
    "fia": siths(
        "SE2321000131-P000000000006",
        "Fia",
        "Falk",
        **commission("SE2321000131-E000000000050", "Administration", "Analytiker"),
    ),
    "gustav": siths(
        "SE2321000131-P000000000007", "Gustav", "Gran", allCommissions=[commission(UNIT_A), commission(UNIT_B)]
    ),
}


def node_ready() -> None:
    """Skip (or fail, when required) unless Node.js and the pinned provider are installed."""
    if shutil.which("node") is None:
        missing(OIDC, "Node.js is not installed (scripts/ensure-node.sh installs it)")
    if not (HERE / "node_modules" / "oidc-provider").is_dir():
        missing(OIDC, "the test IdP's packages are not installed (scripts/ensure-node.sh runs npm ci)")


@contextmanager
def running_idp(vardfil_base: str, *, private_jwk: dict | None = None, persons: dict | None = None) -> Iterator[str]:
    """The IdP as its own process until the block ends; its issuer URL once it answers."""
    node_ready()
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    clients = [
        {
            "client_id": "vardfil",
            "client_secret": SECRET,
            "redirect_uris": [f"{vardfil_base}/oidc/callback"],
            "post_logout_redirect_uris": [f"{vardfil_base}/login?utloggad=1"],
            "backchannel_logout_uri": f"{vardfil_base}/oidc/backchannel-logout",
            "backchannel_logout_session_required": True,
            "token_endpoint_auth_method": "client_secret_basic",
        },
        {
            "client_id": "annan-tjanst",
            "client_secret": SECRET + "-annan",
            "redirect_uris": [f"{vardfil_base}/oidc/callback"],
            "token_endpoint_auth_method": "client_secret_basic",
        },
    ]
    if private_jwk is not None:
        public = {k: v for k, v in private_jwk.items() if k in ("kty", "n", "e", "kid", "alg", "use")}
        clients.append(
            {
                "client_id": "vardfil-jwt",
                "redirect_uris": [f"{vardfil_base}/oidc/callback"],
                "post_logout_redirect_uris": [f"{vardfil_base}/login?utloggad=1"],
                "token_endpoint_auth_method": "private_key_jwt",
                "token_endpoint_auth_signing_alg": "RS256",
                "jwks": {"keys": [public]},
            }
        )
    config = {"port": port, "issuer": issuer, "clients": clients, "persons": persons or PERSONS}
    log = open(os.devnull, "w")
    proc = subprocess.Popen(
        ["node", str(HERE / "provider.mjs")],
        env={**os.environ, "OP_CONFIG": json.dumps(config)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(120):
            try:
                if httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise RuntimeError("the test IdP did not start (node tests/oidc/provider.mjs)")
            time.sleep(0.25)
        yield issuer
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def oidc_env(issuer: str, **extra: str) -> dict[str, str]:
    """vardfil's settings for the test IdP (client ``vardfil``, its secret)."""
    return {
        "VARDFIL_OIDC_ISSUER": issuer,
        "VARDFIL_OIDC_CLIENT_ID": "vardfil",
        "VARDFIL_OIDC_CLIENT_SECRET": SECRET,
        **extra,
    }


def sign_in_at_idp(idp: httpx.Client, authorize_url: str, login: str) -> str:
    """Walk the IdP's pages as a browser would, choosing ``login``; the URL the IdP sends the
    browser back to (vardfil's callback, with code and state)."""
    url = authorize_url
    for _ in range(10):
        resp = idp.get(url)
        if resp.status_code in (302, 303):
            url = urljoin(url, resp.headers["location"])
            if not url.startswith(str(idp.base_url)):
                return url
            continue
        if "/interaction/" in url and resp.status_code == 200:
            action = urljoin(url, _form_action(resp.text))
            done = idp.post(action, data={"login": login})
            url = urljoin(action, done.headers["location"])
            continue
        raise AssertionError(f"unexpected answer from the IdP at {url}: {resp.status_code} {resp.text[:300]}")
    raise AssertionError("the IdP never sent the browser back")


def _form_action(html: str) -> str:
    import re

    return re.search(r'<form method="post" action="([^"]+)"', html).group(1)


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}


def path_of(url: str) -> str:
    u = urlparse(url)
    return u.path + (f"?{u.query}" if u.query else "")
