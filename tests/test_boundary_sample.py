"""The sample months across the version boundary (sample_data/boundary): 2026-11 under 2026.1,
2026-12 under 2026.2, received in December 2026 and January 2027, through the CLI and both closes.
"""

from __future__ import annotations

import csv
import json

from conftest import cli

from filespec.calendar import Period
from sample_data import BOUNDARY_DIR

REF = str(BOUNDARY_DIR / "reference")


def _arrivals() -> list[dict[str, str]]:
    with open(BOUNDARY_DIR / "arrivals.csv", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter=";"))


def test_the_boundary_months_through_the_cli(app_env):
    assert Period.parse("2026-12").deadline.isoformat() == "2027-01-07T15:00:00+01:00"  # third vardag
    kv = []
    for a in _arrivals():
        code, out = cli(
            "submit", str(BOUNDARY_DIR / "files" / a["file"]), "--received-at", a["received_at"], "--reference", REF
        )
        kv.append(json.loads(out))
        if a["received_at"] == "2026-12-03T14:59:00+01:00":  # the last file before 2026-11's deadline
            code, out = cli("close", "2026-11", "--at", "2026-12-03T15:00:00+01:00", "--reference", REF)
            assert code == 0, out
    by_period = {k["period"]: {k2["spec_version"] for k2 in kv if k2["period"] == k["period"]} for k in kv}
    assert by_period == {"2026-11": {"VGP-2026.1", "REH-2026.1"}, "2026-12": {"VGP-2026.2", "REH-2026.2"}}
    early, anew = kv[3], kv[4]
    assert early["status"] == "AVVISAD" and early["counts_by_rule"] == {"F08": 1}
    assert anew["status"] != "AVVISAD" and anew["receipt_id"] != early["receipt_id"]  # judged anew, same bytes
    assert anew["sha256"] == early["sha256"]
    f11 = kv[5]
    assert f11["status"] == "AVVISAD" and f11["counts_by_rule"]["F11"] == 1 and f11["rows"]["accepted"] == 0
    fix = kv[6]
    assert fix["sequence"] == 1 and "F09" not in fix["counts_by_rule"] and fix["status"] == "GODKAND"
    late = kv[7]
    assert (late["period"], late["spec_version"], late["on_time"]) == ("2026-11", "VGP-2026.1", False)

    code, out = cli("close", "2026-12", "--at", "2027-01-07T15:00:00+01:00", "--reference", REF)
    summary = json.loads(out)
    assert code == 0
    # The late 2026-11 file is paid as a correction of 2026-11 in the close of 2026-12.
    assert [(r["unit_hsaid"], r["corrected_period"]) for r in summary["rattelse"]] == [
        ("SE2321000131-E000000001003", "2026-11")
    ]
    receipts = {u["unit_hsaid"]: u["receipt_id"] for u in summary["units"]}
    assert receipts["SE2321000131-E000000001001"] == anew["receipt_id"]
    assert receipts["SE2321000131-E000000001002"] == fix["receipt_id"]  # never the F11 file
