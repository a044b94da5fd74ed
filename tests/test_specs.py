"""Every spec file loads and is consistent with the checks the validators register."""

from __future__ import annotations

import re

import pytest

from filespec import Severity, all_fee_tables, all_specs, fee_table_for, spec_for
from validators import CHECKS

PUBLISHED_ROW_RULES = {
    "VGP": "R01 R02 R10 R11 R12 R20 R21 R22 R23 W24 R25 R30 R31 R32 R40 R41 R42 R43 R50 R52 R54 R60 R61 R80 W81 W90",
    "REH": "R01 R02 R10 R11 R12 R20 R21 R22 R23 W24 R25 R30 R31 R32 R40 R41 R42 R43 R44 R50 R52 R53 R54 R60 R61 R70 R80 W81 W90",
}


@pytest.mark.parametrize("spec", all_specs(), ids=lambda s: s.spec_version)
def test_spec_file_is_complete_and_consistent(spec):
    assert spec.spec_version == f"{spec.file_type}-2026.1"
    assert sorted(spec.file_rules) == [f"F{n:02d}" for n in range(1, 11)]
    assert [r.code for r in spec.row_rules] == PUBLISHED_ROW_RULES[spec.file_type].split()
    names = spec.field_names
    assert len(set(names)) == len(names)
    for rule in spec.row_rules:
        assert rule.check in CHECKS or rule.check == "field_count", rule.code
        assert set(rule.fields) <= set(names), rule.code
        assert rule.message and rule.severity in (Severity.FEL, Severity.VARNING)
        assert (rule.severity is Severity.VARNING) == rule.code.startswith("W")
        if "pattern" in rule.params:
            re.compile(rule.params["pattern"])
        if "codes" in rule.params:
            assert rule.params["codes"] in spec.codes
    for f in spec.fields:
        if f.required_when:
            assert f.required_when["field"] in names


def test_spec_is_chosen_by_period():
    assert spec_for("VGP", "2025-01").spec_version == "VGP-2026.1"
    assert spec_for("REH", "2026-10").spec_version == "REH-2026.1"
    assert spec_for("VGP", "2024-12") is None


def test_fee_table_covers_every_kontakttyp():
    for spec in all_specs():
        table = fee_table_for(spec.valid_from)
        assert set(table.fees[spec.file_type]) == set(spec.codes["kontakttyp"])
    assert all_fee_tables()[0].valid_from == "2024-04-01"
