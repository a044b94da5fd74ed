"""Every spec file loads and is consistent with the checks the validators register."""

from __future__ import annotations

import re

import pytest

from filespec import Severity, all_fee_tables, all_specs, fee_table_for, spec_for
from validators import CHECKS, FILE_CHECKS

PUBLISHED_ROW_RULES = {
    "VGP": "R01 R02 R10 R11 R12 R20 R21 R22 R23 W24 R25 R30 R31 R32 R40 R41 R42 R43 R50 R52 R54 R60 R61 R80 W81 W90",
    "REH": "R01 R02 R10 R11 R12 R20 R21 R22 R23 W24 R25 R30 R31 R32 R40 R41 R42 R43 R44 R50 R52 R53 R54 R60 R61 R70 R80 W81 W90",
}


@pytest.mark.parametrize("spec", all_specs(), ids=lambda s: s.spec_version)
def test_spec_file_is_complete_and_consistent(spec):
    assert spec.spec_version in (f"{spec.file_type}-2026.1", f"{spec.file_type}-2026.2")
    last = 10 if spec.spec_version.endswith("2026.1") else 11  # F11 from 2026.2 (section 9)
    assert sorted(spec.file_rules) == [f"F{n:02d}" for n in range(1, last + 1)]
    for rule in spec.checked_file_rules:
        assert rule.check in FILE_CHECKS, rule.code
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
    assert spec_for("VGP", "2026-11").spec_version == "VGP-2026.1"  # reading 23, whenever received
    assert spec_for("VGP", "2026-12").spec_version == "VGP-2026.2"
    assert spec_for("REH", "2031-06").spec_version == "REH-2026.2"
    assert spec_for("VGP", "2024-12") is None


def test_2026_2_states_only_what_differs_and_inherits_the_rest():
    from filespec import spec_by_version

    for ft in ("VGP", "REH"):
        old, new = spec_by_version(f"{ft}-2026.1"), spec_by_version(f"{ft}-2026.2")
        assert new.extends == old.spec_version and new.sha256 != old.sha256
        assert new.fields == old.fields and new.row_rules == old.row_rules and new.codes == old.codes
        assert {c: r for c, r in new.file_rules.items() if c != "F11"} == old.file_rules
        assert new.file_rules["F11"].message == "Filen innehåller inga godkända besök"
        assert (old.policy.f09_history, old.policy.copies) == ("all", "any")
        assert (new.policy.f09_history, new.policy.copies) == ("usable", "usable_same_unit")
        text = new.path.read_text()
        assert "[[row_rules]]" not in text and "[[fields]]" not in text  # only the differences


def test_fee_table_covers_every_kontakttyp():
    for spec in all_specs():
        table = fee_table_for(spec.valid_from)
        assert set(table.fees[spec.file_type]) == set(spec.codes["kontakttyp"])
    assert all_fee_tables()[0].valid_from == "2024-04-01"
