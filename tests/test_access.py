"""Who saw what (patientdatalagen 4 kap. 3 §): one access-log entry per read of patient-level data
through every front door, every field filled; no entry, no data; a patient's extract lists
exactly the reads of files that hold them; the follow-up flags what it should; the auditor's pages."""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3

import pytest
from conftest import cli, web_env
from fastapi.testclient import TestClient
from test_portal import FILE_A1, PASSWORD, UNIT_A, UNIT_B, csrf_of, login, upload

FIELDS = (
    "at",
    "actor",
    "role",
    "purpose",
    "action",
    "kind",
    "unit_hsaid",
    "period",
    "file",
    "patients",
    "request_id",
    "address",
)


@pytest.fixture
def portal(tmp_path, monkeypatch):
    from vardfil.accounts import create_account, create_token
    from vardfil.portal.app import create_app

    clock = web_env(monkeypatch, tmp_path, "2026-11-02T10:00:00+01:00", pool_workers="0")
    app = create_app()
    core = app.state.vardfil
    for name, role, units in (("anna", "unit", [UNIT_A]), ("analytiker", "analyst", []), ("granskare", "auditor", [])):
        create_account(core.ledger, username=name, password=PASSWORD, role=role, units=units, actor="job:test")
    token = create_token(core.ledger, core.reference, unit_hsaid=UNIT_A, name="cosmic", actor="job:test")
    yield app, clock, token
    app.state.pool.shutdown()
    core.ledger.dispose()


def _entries(app) -> list[dict]:
    from vardfil.access import entry_dict

    return [entry_dict(e) for e in app.state.vardfil.ledger.accesses.entries()]


def _patient_only_in(path, other) -> str:
    """A patient of ``path`` who is not in ``other``."""
    theirs = {line.split(";")[2] for line in other.read_text().splitlines()[1:]}
    return next(p for line in path.read_text().splitlines()[1:] if (p := line.split(";")[2]) not in theirs)


def test_every_read_through_every_door_is_logged_once(portal):
    app, clock, token = portal
    anna = login(app, "anna")
    receipt = upload(anna, UNIT_A, FILE_A1).headers["location"].rsplit("/", 1)[-1]
    api = TestClient(app)
    auth = {"Authorization": f"Bearer {token}"}
    reads = [
        (anna, f"/kvittens/{receipt}", "kvittens", "läsa"),
        (anna, f"/kvittens/{receipt}/findings.csv", "fellista", "ladda_ner"),
        (anna, f"/kvittens/{receipt}/kvittens.json", "kvittens", "ladda_ner"),
        (api, f"/api/v1/kvittenser/{receipt}", "kvittens", "läsa"),
        (api, f"/api/v1/kvittenser/{receipt}/findings.csv", "fellista", "ladda_ner"),
    ]
    for client, path, _, _ in reads:
        assert client.get(path, headers=auth if client is api else {}).status_code == 200
    clock.write_text("2026-11-04T15:05:00+01:00")
    analyst = login(app, "analytiker")
    analyst.post("/analys/2026-10/close", data={"csrf": csrf_of(analyst, "/analys/2026-10")})
    later = [
        (anna, f"/enhet/{UNIT_A}/underlag/2026-10.xlsx", "arbetsbok", "ladda_ner"),
        (analyst, "/analys/2026-10/download/besok.parquet", "besok", "ladda_ner"),
        (analyst, "/analys/2026-10/download/acg.parquet", "acg", "ladda_ner"),
    ]
    for client, path, _, _ in later:
        assert client.get(path).status_code == 200, path
    # Sums, not patients: no entry.
    assert analyst.get("/analys/2026-10/download/underlag.parquet").status_code == 200
    entries = _entries(app)
    assert [(e["kind"], e["action"]) for e in entries] == [(k, a) for _, _, k, a in reads + later]
    for e in entries:
        assert all(
            e[f] not in (None, "") for f in FIELDS if not (f == "unit_hsaid" and e["kind"] in ("besok", "acg"))
        ), e
        assert e["patients"] > 0 and receipt in e["receipts"]
    assert {e["role"] for e in entries} == {"unit", "token", "analyst"}
    assert entries[3]["actor"].startswith("token:") and entries[3]["purpose"] == "Filöverföring från journalsystem"
    assert entries[5]["unit_hsaid"] == UNIT_A and entries[5]["period"] == "2026-10"
    # The CLI lists them, narrowed.
    code, out = cli("access-log", "list", "--unit", UNIT_A, "--json")
    assert code == 0 and [e["id"] for e in json.loads(out)] == [e["id"] for e in entries if e["unit_hsaid"] == UNIT_A]


def test_no_entry_no_data(portal, tmp_path):
    app, _, token = portal
    anna = login(app, "anna")
    receipt = upload(anna, UNIT_A, FILE_A1).headers["location"].rsplit("/", 1)[-1]
    # The database refuses every new entry (a full disk, a broken table: here a trigger).
    db = sqlite3.connect(tmp_path / "home" / "ledger.sqlite3")
    db.execute("CREATE TRIGGER access_log_down BEFORE INSERT ON access_log BEGIN SELECT RAISE(ABORT, 'down'); END")
    db.commit()
    db.close()
    refused = anna.get(f"/kvittens/{receipt}/findings.csv")
    assert refused.status_code == 503 and "åtkomstloggen går inte att skriva" in refused.text
    assert "rule;severity" not in refused.text  # nothing of the file
    api = TestClient(app).get(
        f"/api/v1/kvittenser/{receipt}/findings.csv", headers={"Authorization": f"Bearer {token}"}
    )
    assert api.status_code == 503 and api.json()["error"] == "unavailable"
    assert _entries(app) == []


def test_a_patients_extract_lists_exactly_the_reads_of_files_that_hold_them(portal):
    from test_portal import FILE_B

    app, _, _ = portal
    anna = login(app, "anna")
    a_receipt = upload(anna, UNIT_A, FILE_A1).headers["location"].rsplit("/", 1)[-1]
    anna.get(f"/kvittens/{a_receipt}/findings.csv")
    # Another unit's file, read by an analyst: not this patient's.
    from vardfil.month.intake import submit

    core = app.state.vardfil
    other = submit(FILE_B, file_name=FILE_B.name, received_at=dt.datetime.now(dt.UTC), app=core, actor="job:test")
    analyst = login(app, "analytiker")
    analyst.get(f"/kvittens/{other.receipt_id}/findings.csv")
    patient = _patient_only_in(FILE_A1, FILE_B)
    code, out = cli("access-log", "patient", patient, "--json", "--actor", "person:1")
    extract = json.loads(out)
    assert code == 0 and extract["files"] == [a_receipt]
    assert [(a["actor"], a["kind"]) for a in extract["accesses"]] == [("person:1", "fellista")]
    # The other form of the same number finds the same; a number in no file finds nothing.
    assert json.loads(cli("access-log", "patient", f"{patient[2:8]}-{patient[8:]}", "--json")[1]) == extract
    assert json.loads(cli("access-log", "patient", "191212121212", "--json")[1])["accesses"] == []
    # The auditor's page gives the same, posted (a personnummer never in an address).
    auditor = login(app, "granskare")
    page = auditor.post("/logg/patient", data={"csrf": csrf_of(auditor, "/logg"), "personnummer": patient})
    assert page.status_code == 200 and "finns i 1 mottagna filer" in page.text
    assert analyst.get("/logg").status_code == 403  # the analysts are among those followed up


def test_the_follow_up_flags_off_hours_volume_and_outside_units(portal):
    from vardfil.access import review
    from vardfil.ledger import AccessEntry

    app, _, _ = portal
    core = app.state.vardfil

    def entry(at: str, actor: str, patients: int, unit: str = UNIT_A, role: str = "unit") -> None:
        core.ledger.accesses.record(
            AccessEntry(
                at=dt.datetime.fromisoformat(at),
                actor=actor,
                hsa_id=None,
                role=role,
                commission=None,
                purpose="Redovisning till regionen",
                action="ladda_ner",
                kind="arbetsbok",
                unit_hsaid=unit,
                period="2026-09",
                file="x.xlsx",
                receipts="[]",
                patients=patients,
                request_id="r",
                address="10.0.0.1",
            )
        )

    anna = f"person:{core.ledger.accounts.by_name('anna').id}"
    # Anna's usual months: a few dozen patients.
    for month in ("2026-07", "2026-08", "2026-09"):
        entry(f"{month}-10T10:00:00+02:00", anna, 40)
    entry("2026-10-06T10:00:00+02:00", anna, 40)  # a Tuesday morning: nothing to see
    entry("2026-10-10T03:12:00+02:00", anna, 10)  # a Saturday night
    entry("2026-10-07T11:00:00+02:00", anna, 900)  # twenty times her month
    entry("2026-10-08T11:00:00+02:00", anna, 5, unit=UNIT_B)  # a unit she has no right to
    report = review(core, "2026-10")
    assert [r["at"][:16] for r in report["off_hours"]] == ["2026-10-10T03:12"]
    assert [(v["actor"], v["patients"]) for v in report["volume"]] == [(anna, 955)]
    assert [r["unit_hsaid"] for r in report["outside_units"]] == [UNIT_B]
    assert len(report["sample"]) == 4 and report["flags"] == 3
    assert review(core, "2026-10")["sha256"] == report["sha256"]  # the same report every time
    # Signed by the auditor: the sign-off is recorded with the report's hash.
    code, out = cli(
        "access-log", "review", "2026-10", "--sign", "--comment", "Granskat", "--actor", "person:3", "--json"
    )
    signed = json.loads(out)
    assert code == 0 and signed["signed"][0]["report_sha256"] == report["sha256"]
    code, text = cli("access-log", "review", "2026-10")
    assert "Utanför kontorstid: 1" in text and "Signerad av person:3" in text
    code, csv_text = cli("access-log", "export", "--format", "csv")
    assert csv_text.splitlines()[0].startswith("id;at;actor") and len(csv_text.splitlines()) == 8
    code, lines = cli("access-log", "export", "--what", "reviews")
    assert json.loads(lines.splitlines()[0])["report_sha256"] == report["sha256"]
    auditor = login(app, "granskare")
    page = auditor.get("/logg/uppfoljning/2026-10").text
    assert "Åtkomst utanför kontorstid (vardagar 07–18) (1)" in page and re.search(r"Signerad av person:3", page)
