"""Dispens the region's way (ERSATTNINGSMODELL section 1, precise reading 1): granted for one
period before the close, extended or withdrawn with a reason, never forgotten by a close."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import cli, file_name, make_file
from optional import AIRFLOW, optional_import

from filespec.calendar import parse_instant

EXAMPLE = Path(__file__).parent / "data" / "region_example"
EXPECTED = json.loads((EXAMPLE / "expected.json").read_text(encoding="utf-8"))
REF = str(EXAMPLE / "reference")
LATE_UNIT = "SE2321000131-E000000000103"  # its first 2026-09 file arrived on 14 October (submission 15)
UNTIL = "2026-10-15T15:00:00+02:00"
SAMPLE_UNIT = "SE2321000131-E000000001001"


def _submit(sub: dict) -> None:
    code, _ = cli("submit", str(EXAMPLE / sub["file"]), "--received-at", sub["received_at"], "--reference", REF)
    assert code in (0, 1), sub["index"]


def test_a_dispens_for_a_closed_period_is_refused(app_env):
    for sub in EXPECTED["submissions"][:13]:
        _submit(sub)
    assert cli("close", "2026-09", "--at", "2026-10-05T15:00:00+02:00", "--reference", REF)[0] == 0
    code, _ = cli("dispens", LATE_UNIT, "2026-09", "--until", UNTIL, "--reason", "sent", "--reference", REF)
    assert code == 2


def test_the_message_says_closed_and_correction(app):
    from vardfil.errors import DispensRefused
    from vardfil.month.close import close_period
    from vardfil.month.dispens import grant_dispens

    close_period("2026-10", at=parse_instant("2026-11-04T15:00:00+01:00"), app=app, actor="job:test")
    with pytest.raises(DispensRefused, match=r"redan stängd.*rättelse"):
        grant_dispens(
            app,
            unit_hsaid=SAMPLE_UNIT,
            period="2026-10",
            until=parse_instant("2026-11-06T15:00:00+01:00"),
            reason="x",
            actor="job:test",
        )


def test_extended_and_withdrawn_with_reasons_in_the_audit_log(app_env):
    from sample_data import SAMPLE_REFERENCE

    args = ["--reference", str(SAMPLE_REFERENCE)]
    assert (
        cli("dispens", SAMPLE_UNIT, "2026-10", "--until", "2026-11-06T15:00:00+01:00", "--reason", "nere", *args)[0]
        == 0
    )
    assert (
        cli("dispens", SAMPLE_UNIT, "2026-10", "--until", "2026-11-09T15:00:00+01:00", "--reason", "längre", *args)[0]
        == 0
    )
    listed = json.loads(cli("dispens", "list", "2026-10", "--json", *args)[1])
    assert [(d["until"], d["in_force"]) for d in listed] == [
        ("2026-11-06T14:00:00+00:00", False),
        ("2026-11-09T14:00:00+00:00", True),
    ]
    assert cli("dispens", "withdraw", SAMPLE_UNIT, "2026-10", *args)[0] == 2  # a withdrawal needs its reason
    assert cli("dispens", "withdraw", SAMPLE_UNIT, "2026-10", "--reason", "filen kom", *args)[0] == 0
    listed = json.loads(cli("dispens", "list", "2026-10", "--json", *args)[1])
    assert listed[-1]["withdrawn"] and not any(d["in_force"] for d in listed)
    from vardfil.app import open_app

    with open_app(app_env) as app:
        actions = [
            (e.action, json.loads(e.detail)["reason"])
            for e in app.ledger.audit_entries()
            if e.action.startswith("dispens")
        ]
        assert app.ledger.decisions.dispens_deadline(SAMPLE_UNIT, "2026-10") is None
    assert actions == [("dispens_withdrawn", "filen kom"), ("dispens_extended", "längre"), ("dispens_granted", "nere")]


def test_a_close_inside_an_open_dispens_is_refused_unless_confirmed(app_env):
    from sample_data import SAMPLE_REFERENCE

    ref = ["--reference", str(SAMPLE_REFERENCE)]
    assert (
        cli("dispens", SAMPLE_UNIT, "2026-10", "--until", "2026-11-06T15:00:00+01:00", "--reason", "nere", *ref)[0] == 0
    )
    import contextlib
    import io

    from vardfil.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["close", "2026-10", "--at", "2026-11-04T15:00:00+01:00", *ref])
    assert code == 2 and SAMPLE_UNIT in err.getvalue() and "2026-11-06 15:00" in err.getvalue()
    code, _ = cli("close", "2026-10", "--at", "2026-11-04T15:00:00+01:00", "--despite-dispens", *ref)
    assert code == 0
    from vardfil.app import open_app

    with open_app(app_env) as app:
        snapshot = json.loads(app.ledger.closes.close_of("2026-10").snapshot)
        closed = next(e for e in app.ledger.audit_entries() if e.action == "period_closed")
    assert snapshot["despite_dispens"] == {SAMPLE_UNIT: "2026-11-06T14:00:00+00:00"}
    assert json.loads(closed.detail)["despite_dispens"] == snapshot["despite_dispens"]


def test_a_file_within_its_dispens_is_on_time_and_in_its_own_close(app):
    from vardfil.month.close import close_period
    from vardfil.month.dispens import grant_dispens
    from vardfil.month.intake import submit

    until = parse_instant("2026-11-06T15:00:00+01:00")
    grant_dispens(app, unit_hsaid=SAMPLE_UNIT, period="2026-10", until=until, reason="nere", actor="job:test")
    sub = submit(make_file(), file_name=file_name(), received_at=parse_instant("2026-11-05T10:00:00+01:00"), app=app)
    assert sub.kvittens["on_time"] is True and parse_instant(sub.kvittens["deadline"]) == until
    from vardfil.mail import kvittens_message

    _, text, _ = kvittens_message(app, sub.kvittens, "Vårdcentralen Ekbacken")
    assert "Enhetens tidsgräns för 2026-10 är 2026-11-06 15:00 (dispens)." in text  # the mail says so
    summary = close_period("2026-10", at=until, app=app, actor="job:test")
    assert next(u for u in summary["units"] if u["unit_hsaid"] == SAMPLE_UNIT)["receipt_id"] == sub.receipt_id


def test_the_region_month_with_a_dispens_for_its_late_first_delivery(app_env):
    """The region's example replayed with a dispens for unit 103's late first delivery: that file
    is on time, its lines are in the 2026-09 close, and 2026-10 has no correction for it (the
    other unit's correction stays as the region published it)."""
    subs = EXPECTED["submissions"]
    expected_09, expected_10 = (c["underlag_lines"] for c in EXPECTED["closes"])
    for sub in subs[:14]:
        _submit(sub)
    code, _ = cli(
        "dispens", LATE_UNIT, "2026-09", "--until", UNTIL, "--reason", "journalsystemet nere", "--reference", REF
    )
    assert code == 0
    code, out = cli(
        "submit", str(EXAMPLE / subs[14]["file"]), "--received-at", subs[14]["received_at"], "--reference", REF
    )
    assert json.loads(out)["on_time"] is True
    assert cli("close", "2026-09", "--at", "2026-10-05T15:00:00+02:00", "--reference", REF)[0] == 2  # inside it
    code, out = cli("close", "2026-09", "--at", UNTIL, "--reference", REF)
    assert code == 0
    import pyarrow.parquet as pq

    lines_09 = pq.read_table(json.loads(out)["underlag_parquet"]).to_pylist()
    late_09 = sum(Decimal(str(ln["amount"])) for ln in lines_09 if ln["unit_hsaid"] == LATE_UNIT)
    published_09 = sum(Decimal(ln["amount"]) for ln in expected_09 if ln["unit_hsaid"] == LATE_UNIT)
    correction = next(
        Decimal(ln["amount"]) for ln in expected_10 if ln["unit_hsaid"] == LATE_UNIT and ln["component"] == "RATTELSE"
    )
    assert late_09 == published_09 + correction  # what the correction paid, paid in its own month
    for sub in subs[15:]:
        _submit(sub)
    code, out = cli("close", "2026-10", "--at", EXPECTED["closes"][1]["at"], "--reference", REF)
    lines_10 = pq.read_table(json.loads(out)["underlag_parquet"]).to_pylist()
    rattelser = {(ln["unit_hsaid"], str(ln["amount"])) for ln in lines_10 if ln["component"] == "RATTELSE"}
    assert rattelser == {("SE2321000131-E000000000101", "6108.00")}


def test_the_dag_waits_for_the_dispens_and_closes_as_of_its_end(tmp_path):
    """The close DAG's sensor holds the close until the period's last dispens has ended, then the
    close is as of that instant: the file the dispens allowed for is in it."""
    optional_import("airflow", AIRFLOW)
    from test_dags import _airflow_env, _dag_test

    from vardfil.sample import stage_inbox

    home = tmp_path / "home"
    stage_inbox(home / "inbox")
    env = _airflow_env(tmp_path, home)
    until = "2026-11-06T15:00:00+01:00"  # in the past of the machine's clock: the sensor finds it ended
    done = subprocess.run(
        [sys.executable, "-m", "vardfil.cli", "dispens", SAMPLE_UNIT, "2026-10", "--until", until, "--reason", "nere"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    _dag_test(env, "vardfil_close", "2026-11-04T15:00:00+01:00")
    status = subprocess.run(
        [sys.executable, "-m", "vardfil.cli", "deviations", "2026-10", "--json"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert status.returncode == 0
    from vardfil.app import open_app
    from vardfil.settings import load_settings

    with open_app(load_settings(env)) as app:
        pc = app.ledger.closes.close_of("2026-10")
    assert pc is not None and pc.closed_at == parse_instant(until)


def test_dispens_wait_is_done_only_after_the_last_dispens(app):
    from vardfil.airflow import tasks
    from vardfil.month.dispens import grant_dispens

    grant_dispens(
        app,
        unit_hsaid=SAMPLE_UNIT,
        period="2026-10",
        until=parse_instant("2026-11-06T15:00:00+01:00"),
        reason="x",
        actor="job:test",
    )
    before = tasks.dispens_wait("2026-10", "2026-11-05T12:00:00+01:00")
    after = tasks.dispens_wait("2026-10", "2026-11-06T15:00:00+01:00")
    assert (before["done"], after["done"]) == (False, True) and before["at"] == "2026-11-06T14:00:00+00:00"
    assert tasks.due_periods("2026-11-05T12:00:00+01:00") == []  # the nightly run waits too


def test_the_board_and_the_unit_page_show_the_dispens(tmp_path, monkeypatch):
    import re

    from conftest import web_env
    from fastapi.testclient import TestClient

    from vardfil.accounts import create_account
    from vardfil.portal.app import create_app

    clock = web_env(monkeypatch, tmp_path, "2026-11-04T15:30:00+01:00")
    web = create_app()
    ledger = web.state.vardfil.ledger
    for name, role, units in (("anna", "unit", [SAMPLE_UNIT]), ("analytiker", "analyst", [])):
        create_account(ledger, username=name, password="korrekt-hast-batteri", role=role, units=units, actor="job:test")

    def login(name: str) -> TestClient:
        c = TestClient(web)
        token = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
        c.post("/login", data={"username": name, "password": "korrekt-hast-batteri", "csrf": token})
        return c

    analyst = login("analytiker")
    board = analyst.get("/analys/2026-10").text
    token = re.search(r'name="csrf" value="([^"]+)"', board).group(1)
    form = {"csrf": token, "unit": SAMPLE_UNIT, "reason": "Journalsystemet nere", "until": "2026-11-06T15:00"}
    assert analyst.post("/analys/2026-10/dispens", data=form, follow_redirects=False).status_code == 303
    board = analyst.get("/analys/2026-10").text
    assert 'id="dispenses"' in board and "Journalsystemet nere" in board and "pågår" in board
    assert 'id="open-dispens"' in board and 'id="despite_dispens"' in board
    refused = analyst.post("/analys/2026-10/close", data={"csrf": token}, follow_redirects=False)
    assert refused.status_code == 400 and "dispens" in refused.text
    unit_page = login("anna").get(f"/enhet/{SAMPLE_UNIT}").text
    assert 'id="dispens"' in unit_page and "2026-11-06 15:00" in unit_page
    closed = analyst.post("/analys/2026-10/close", data={"csrf": token, "despite_dispens": "1"}, follow_redirects=False)
    assert closed.status_code == 303 and ledger.closes.period_closed("2026-10")
    clock.write_text("2026-11-04T15:31:00+01:00")
    web.state.vardfil.close()
