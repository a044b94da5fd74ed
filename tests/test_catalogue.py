"""The rule catalogue: generated from the spec data, printed by ``vardfil rules``, served at
/regler; every rule of every version has a page, and the kvittens page links to it."""

from __future__ import annotations

import json
import re

import pytest
from conftest import cli, web_env
from fastapi.testclient import TestClient

from filespec import all_specs
from filespec.catalogue import catalogue, diff, versions

PASSWORD = "korrekt-hast-batteri"


def test_diff_of_2026_1_and_2026_2_says_what_section_9_says():
    listed = diff("VGP-2026.1", "VGP-2026.2")
    changes = {(c.sign, c.what) for c in listed}
    assert ("+", "F11") in changes and ("~", "F09") in changes
    assert ("-", "precisering 19") in changes and ("+", "precisering 22") in changes
    assert sum(1 for c in listed if c.what == "historik") == 2  # F09's history and the copy rule
    # Nothing else changed: the row rules are inherited as they were.
    assert not any(w.startswith(("R", "W")) for _, w in changes)


def test_the_cli_prints_the_catalogue_and_the_diff():
    code, out = cli("rules", "--diff", "VGP-2026.1", "VGP-2026.2")
    assert code == 0 and out.splitlines()[0] == "VGP-2026.1 → VGP-2026.2"
    assert re.search(r"^\+ F11 +AVVISA_FIL: Filen innehåller inga godkända besök", out, re.M)
    code, out = cli("rules", "--version", "REH-2026.2", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["spec_version"] == "REH-2026.2" and doc["extends"] == "REH-2026.1"
    f11 = next(r for r in doc["rules"] if r["code"] == "F11")
    assert f11 == {
        "code": "F11",
        "kind": "fil",
        "severity": "AVVISA_FIL",
        "fields": [],
        "message": "Filen innehåller inga godkända besök",
        "readings": [20],
    }
    assert cli("rules", "--version", "VGP-2030.1")[0] == 2


def test_every_rule_of_every_version_is_in_the_catalogue():
    for spec in all_specs():
        cat = catalogue(spec.spec_version)
        codes = {r.code for r in cat.rules}
        assert codes == set(spec.file_rules) | {r.code for r in spec.row_rules}, spec.spec_version
        assert all(r.message == spec.message(r.code) for r in cat.rules)


@pytest.fixture
def portal(tmp_path, monkeypatch):
    from vardfil.accounts import create_account
    from vardfil.portal.app import create_app

    web_env(monkeypatch, tmp_path, "2027-01-04T10:00:00+01:00")
    app = create_app()
    create_account(
        app.state.vardfil.ledger,
        username="anna",
        password=PASSWORD,
        role="unit",
        units=["SE2321000131-E000000001001"],
        actor="job:test",
    )
    client = TestClient(app)
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)
    client.post("/login", data={"username": "anna", "password": PASSWORD, "csrf": csrf})
    yield app, client
    app.state.vardfil.close()


def _shown(html: str) -> str:
    """What a person reads of a page: no styles, scripts or tags."""
    html = re.sub(r"<(style|script)\b.*?</\1>", "", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


def test_every_rule_of_every_version_has_a_page(portal):
    _, client = portal
    index = client.get("/regler")
    assert not re.search(r"[`*]", _shown(index.text))
    assert index.status_code == 200 and all(v in index.text for v in versions())
    assert "Filen innehåller inga godkända besök" in index.text  # the 2026.1 → 2026.2 changes
    for spec in all_specs():
        page = client.get(f"/regler/{spec.spec_version}")
        assert page.status_code == 200 and not re.search(r"[`*]", _shown(page.text))
        for rule in catalogue(spec.spec_version).rules:
            one = client.get(f"/regler/{spec.spec_version}/{rule.code}")
            assert one.status_code == 200 and rule.message in one.text, (spec.spec_version, rule.code)
            # The region's Swedish: the when, the example and the readings, no markup characters.
            shown = _shown(one.text)
            assert rule.when in shown and rule.example.replace('"', "&#34;") in one.text, rule.code
            assert all(x.text in shown for x in rule.readings) and not re.search(r"[`*]", shown), rule.code
            assert f'href="/regler/{spec.spec_version}/{rule.code}"' in page.text
    assert client.get("/regler/VGP-2026.1/F11").status_code == 404  # F11 is 2026.2's
    assert client.get("/regler/VGP-9999.9").status_code == 404


def test_the_catalogue_needs_a_signed_in_user(portal):
    app, _ = portal
    resp = TestClient(app).get("/regler/VGP-2026.2/F11", follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"] == "/login"


def test_rule_codes_on_a_kvittens_page_link_to_their_version(portal):
    from conftest import REH_UNIT, file_name, make_file

    _app, client = portal
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/enhet/SE2321000131-E000000001001").text).group(1)
    data = make_file(rows=[{"besoksdatum": "2026-12-15", "vardenhet_hsaid": REH_UNIT}])
    resp = client.post(
        "/enhet/SE2321000131-E000000001001/upload",
        data={"csrf": token},
        files={"file": (file_name(period="2026-12"), data, "text/csv")},
    )
    assert resp.status_code == 200
    assert 'href="/regler/VGP-2026.2/F11"' in resp.text and 'href="/regler/VGP-2026.2/R12"' in resp.text
