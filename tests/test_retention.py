"""Kept as long as the law says: the rules as data, a dry run, and a gallring that removes only
what a recorded decision covers, never under the law's floor, and leaves the record, the hashes,
the kvittens, the close's lines and an audit entry."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from conftest import cli

EXAMPLE = Path(__file__).parent / "data" / "region_example"
EXPECTED = json.loads((EXAMPLE / "expected.json").read_text(encoding="utf-8"))
REF = str(EXAMPLE / "reference")


@pytest.fixture
def closed(app_env, tmp_path, monkeypatch):
    """2026-09 of the region's example, closed; the clock file the test moves through the years."""
    first = next(c for c in EXPECTED["closes"] if c["period"] == "2026-09")
    for sub in EXPECTED["submissions"]:
        if sub["index"] <= first["after_submission"]:
            cli("submit", str(EXAMPLE / sub["file"]), "--received-at", sub["received_at"], "--reference", REF)
    code, out = cli("close", "2026-09", "--at", first["at"], "--reference", REF)
    assert code == 0
    clock = tmp_path / "clock"
    monkeypatch.setenv("VARDFIL_CLOCK_FILE", str(clock))
    return clock, json.loads(out), first


def _decision(ref: str, what: str, before: str) -> int:
    return cli("gallra", "--record-decision", ref, "--what", what, "--before", before, "--text", f"RA-beslut {ref}")[0]


def test_the_law_s_floors_hold(closed, app_env):
    from vardfil.app import open_app
    from vardfil.ledger import AccessEntry

    clock, _, _ = closed
    with open_app(app_env) as app:  # a read of a unit's data in December 2026
        app.ledger.accesses.record(
            AccessEntry(
                at=dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC), actor="person:1", hsa_id=None, role="unit",
                commission=None, purpose="x", action="läsa", kind="kvittens", unit_hsaid=None, period="2026-09",
                file="KV-x", receipts="[]", patients=1, request_id=None, address=None,
            )
        )  # fmt: skip
    # Five years on, the access log is five years old: under its floor (five years after the end
    # of 2026), refused, nothing removed.
    clock.write_text("2031-12-02T10:00:00+01:00")
    assert _decision("RA-2031-1", "atkomstlogg", "2027-01-01T00:00:00+01:00") == 0
    code, _ = cli("gallra", "--decision", "RA-2031-1")
    assert code == 2
    # Six years on, the close is six years old: accounting material, seven years, refused.
    clock.write_text("2032-11-01T10:00:00+01:00")
    assert _decision("RA-2032-1", "stangning", "2027-01-01T00:00:00+01:00") == 0
    assert cli("gallra", "--decision", "RA-2032-1")[0] == 2
    with open_app(app_env) as app:
        assert len(app.ledger.accesses.entries()) == 1 and app.ledger.closes.period_closed("2026-09")
    # An unknown decision is refused too.
    assert cli("gallra", "--decision", "RA-0000")[0] == 2


def test_an_eleven_year_old_raw_file_goes_under_a_decision_and_the_close_keeps_its_figures(closed, app_env):
    from vardfil.app import open_app

    clock, summary, first = closed
    with open_app(app_env) as app:
        files = app.ledger.files.stored_files()
        raws = [app.store.raw_path(f.sha256) for f in files]
        kvittenser = {f.receipt_id: f.kvittens_json for f in files}
    assert all(p.is_file() for p in raws)
    # Nothing is due yet, and without a decision nothing goes.
    clock.write_text("2026-12-07T10:00:00+01:00")
    dry = json.loads(cli("gallra", "--dry-run")[1])
    assert dry["kinds"]["radata"]["due"] == 0 and dry["kinds"]["radata"]["kept"] == len(files)
    # Eleven years on: due by the region's rule (ten years), and removed under the decision.
    clock.write_text("2037-12-07T10:00:00+01:00")
    dry = json.loads(cli("gallra", "--dry-run")[1])
    assert dry["kinds"]["radata"]["due"] == len(files)
    assert _decision("RA-2037-4", "radata", "2027-01-01T00:00:00+01:00") == 0
    code, out = cli("gallra", "--decision", "RA-2037-4")
    report = json.loads(out)
    assert code == 0 and sorted(report["files"]) == sorted(kvittenser)
    assert not any(p.exists() for p in raws)
    with open_app(app_env) as app:
        after = app.ledger.files.stored_files()
        # The record, the hash and the kvittens stay; the audit log says who and under what.
        assert {f.receipt_id: f.kvittens_json for f in after} == kvittenser
        assert all(f.gallrad_by == "RA-2037-4" and f.sha256 for f in after)
        assert any(e.action == "gallrad" and e.subject == "RA-2037-4" for e in app.ledger.audit_entries())
    # The close shows its recorded lines and totals, and says which of its files are gallrade.
    code, out = cli("close", "2026-09", "--at", first["at"], "--reference", REF)
    again = json.loads(out)
    assert code == 0 and again["total"] == summary["total"] and again["units"] == summary["units"]
    taken = {u["receipt_id"] for u in summary["units"] if u["receipt_id"]}
    assert {g["receipt_id"] for g in again["gallrade"]} == taken and summary["gallrade"] == []
    # The unit workbook is still written, from the recorded lines; verify expects the gap.
    assert cli("report", "2026-09", "--reference", REF)[0] == 0
    assert cli("verify")[0] == 0
    # A second run finds nothing left to remove.
    assert json.loads(cli("gallra", "--decision", "RA-2037-4")[1])["files"] == []
