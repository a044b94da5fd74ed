"""One table row per rule code: the smallest input that breaks it, and its near miss that does not.

Each breaking case asserts the exact (row, field, rule) finding; each near miss asserts the rule is
absent. Removing or loosening any rule makes its row fail.
"""

from __future__ import annotations

import datetime as dt

import pytest
from conftest import ADULT_MAN, ON_TIME, REH_UNIT, VGP_UNIT, file_name, make_file, triples

from sample_data.generate import VGP_FIELDS
from validators import make_personnummer, make_reservnummer
from validators.identifiers import luhn_check_digit

WRONG_CHECK = ADULT_MAN[:-1] + str((int(ADULT_MAN[-1]) + 1) % 10)
FEB30 = "198002301230"[:11]
FEB30 = FEB30 + luhn_check_digit(FEB30[2:11])
SAMORDNING = make_personnummer(dt.date(1980, 5, 17), 123, samordning=True)
RESERV_X = make_reservnummer(dt.date(1990, 1, 2), "X", 42)
BORN_20 = make_personnummer(dt.date(2026, 10, 20), 124)
BORN_15 = make_personnummer(dt.date(2026, 10, 15), 124)
UNKNOWN_UNIT = "SE2321000131-E000000009999"


def case(rule, field, broken, near, row=2):
    """A table row: rule code, expected field, the breaking input, its near miss."""
    return pytest.param(rule, field, row, broken, near, id=f"{rule}-{field or 'row'}")


# An input is a dict: ft (filtyp), rows (changes of the base row), data (raw bytes), name,
# received_at, earlier (sequence numbers of earlier files).
CASES = [
    # File rules: row and field are null.
    case("F01", None, {"name": f"VGP_{VGP_UNIT}_202610_1.csv"}, {"name": f"VGP_{VGP_UNIT}_202610_10.csv"}, row=None),
    case(
        "F02",
        None,
        {"data": make_file().replace(b"J06.9", b"J06.9\x81")},
        {"data": make_file().replace(b"J06.9", b"J06.9\xe5")},
        row=None,
    ),
    case("F03", None, {"rows": []}, {"rows": [{}]}, row=None),
    case(
        "F04",
        None,
        {"data": make_file(header=[f for f in VGP_FIELDS if f != "kva_6"])},
        {"data": make_file(header=list(reversed(VGP_FIELDS)))},
        row=None,
    ),
    case("F05", None, {"rows": [{"diagnos_2": '"J06.8'}]}, {"rows": [{"diagnos_2": '"J06.8"'}]}, row=None),
    case("F07", None, {"name": file_name(unit=UNKNOWN_UNIT)}, {"name": file_name(seq="02")}, row=None),
    case("F07", None, {"name": file_name("REH", unit=VGP_UNIT), "ft": "REH"}, {"ft": "REH"}, row=None),
    case(
        "F08",
        None,
        {"received_at": "2026-10-31T23:59:59+01:00"},
        {"received_at": "2026-11-01T00:00:00+01:00"},
        row=None,
    ),
    case("F09", None, {"earlier": (1,)}, {"earlier": (1,), "name": file_name(seq="02")}, row=None),
    case(
        "F10",
        None,
        {
            "name": file_name(period="2025-08"),
            "rows": [{"besoksdatum": "2025-08-15"}],
            "received_at": "2026-09-03T15:00:01+02:00",
        },
        {
            "name": file_name(period="2025-08"),
            "rows": [{"besoksdatum": "2025-08-15"}],
            "received_at": "2026-09-03T15:00:00+02:00",
        },
        row=None,
    ),
    # F11 (2026.2, reading 20): every row has a FEL; the near miss keeps one good row. The same
    # all-rejected file for 2026-11 is DELVIS_GODKAND (reading 19, 2026.1): see test_f11_is_2026_2s.
    case(
        "F11",
        None,
        {
            "name": file_name(period="2026-12"),
            "received_at": "2027-01-04T10:00:00+01:00",
            "rows": [{"besoksdatum": "2026-12-15", "vardenhet_hsaid": REH_UNIT}] * 2,
        },
        {
            "name": file_name(period="2026-12"),
            "received_at": "2027-01-04T10:00:00+01:00",
            "rows": [{"besoksdatum": "2026-12-15", "vardenhet_hsaid": REH_UNIT}, {"besoksdatum": "2026-12-16"}],
        },
        row=None,
    ),
    # Row rules, VGP.
    case(
        "R01",
        None,
        {"data": make_file(extra_lines=[";".join(["x"] * 25)])},
        {"data": make_file(extra_lines=[";".join(["x"] * 24)])},
        row=3,
    ),
    case("R02", "patientavgift", {"rows": [{"patientavgift": ""}]}, {"rows": [{"kva_1": ""}]}),
    case(
        "R02",
        "diagnos_1",
        {"rows": [{"diagnos_1": ""}]},
        {"rows": [{"diagnos_1": "", "yrkeskategori": "SSK", "patientavgift": "50"}]},
    ),
    case("R10", "besok_id", {"rows": [{"besok_id": "A 1"}]}, {"rows": [{"besok_id": "A_1-b"}]}),
    case(
        "R11",
        "besok_id",
        {"rows": [{}, {"besok_id": "A1", "besoksdatum": "2026-10-16"}]},
        {"rows": [{}, {"besoksdatum": "2026-10-16"}]},
        row=3,
    ),
    case("R12", "vardenhet_hsaid", {"rows": [{"vardenhet_hsaid": REH_UNIT}]}, {"rows": [{}]}),
    case(
        "R20",
        "patient_id",
        {"rows": [{"patient_id": ADULT_MAN[:8] + "-" + ADULT_MAN[8:11]}]},
        {"rows": [{"patient_id": ADULT_MAN}]},
    ),
    case("R20", "patient_id", {"rows": [{"patient_id": "17" + ADULT_MAN[2:]}]}, {"rows": [{}]}),
    case("R21", "patient_id", {"rows": [{"patient_id": WRONG_CHECK}]}, {"rows": [{"patient_id": ADULT_MAN}]}),
    case("R22", "patient_id", {"rows": [{"patient_id": FEB30}]}, {"rows": [{"patient_id": SAMORDNING}]}),
    case("R23", "kon", {"rows": [{"kon": "Q"}]}, {"rows": [{"kon": "K"}]}),
    case("R23", "kon", {"rows": [{"kon": "X"}]}, {"rows": [{"kon": "X", "patient_id": RESERV_X}]}),
    case("W24", "kon", {"rows": [{"kon": "K"}]}, {"rows": [{"kon": "M"}]}),
    case("R25", "folkbokforing_lan", {"rows": [{"folkbokforing_lan": "02"}]}, {"rows": [{"folkbokforing_lan": "25"}]}),
    case("R30", "besoksdatum", {"rows": [{"besoksdatum": "2026-10-32"}]}, {"rows": [{"besoksdatum": "2026-10-31"}]}),
    case("R31", "besoksdatum", {"rows": [{"besoksdatum": "2026-09-30"}]}, {"rows": [{"besoksdatum": "2026-10-01"}]}),
    case(
        "R32",
        "besoksdatum",
        {"rows": [{"patient_id": BORN_20, "kon": "K", "patientavgift": "0"}]},
        {"rows": [{"patient_id": BORN_15, "kon": "K", "patientavgift": "0"}]},
    ),
    case(
        "R40",
        "yrkeskategori",
        {"rows": [{"yrkeskategori": "XYZ"}]},
        {"rows": [{"yrkeskategori": "OVR", "patientavgift": "50"}]},
    ),
    case(
        "R41", "kontakttyp", {"rows": [{"kontakttyp": "MOTT"}]}, {"rows": [{"kontakttyp": "G", "patientavgift": "50"}]}
    ),
    case("R42", "besokstyp", {"rows": [{"besokstyp": "X"}]}, {"rows": [{"besokstyp": "A"}]}),
    case("R43", "akut", {"rows": [{"akut": "j"}]}, {"rows": [{"akut": "J"}]}),
    case(
        "R43",
        "frikort",
        {"rows": [{"frikort": "Y", "patientavgift": "0"}]},
        {"rows": [{"frikort": "J", "patientavgift": "0"}]},
    ),
    case("R50", "diagnos_2", {"rows": [{"diagnos_2": "J06."}]}, {"rows": [{"diagnos_2": "F32.1A"}]}),
    case("R52", "diagnos_1", {"rows": [{"diagnos_1": "W01.1"}]}, {"rows": [{"diagnos_1": "Y99"}]}),
    case("R54", "diagnos_2", {"rows": [{"diagnos_2": "J069"}]}, {"rows": [{"diagnos_2": "J06.8"}]}),
    case("R60", "kva_1", {"rows": [{"kva_1": "QV01"}]}, {"rows": [{"kva_1": "QV001"}]}),
    case("R61", "kva_1", {"rows": [{"kva_1": "QQ999"}]}, {"rows": [{"kva_1": "AW030"}]}),
    case("R80", "patientavgift", {"rows": [{"patientavgift": "1001"}]}, {"rows": [{"patientavgift": "0200"}]}),
    case("W81", "patientavgift", {"rows": [{"patientavgift": "150"}]}, {"rows": [{"patientavgift": "200"}]}),
    case("W90", None, {"rows": [{}, {}]}, {"rows": [{}, {"yrkeskategori": "SSK", "patientavgift": "50"}]}),
    # Row rules only REH has.
    case(
        "R44",
        "kontakttyp",
        {"ft": "REH", "rows": [{"kontakttyp": "MKORT"}]},
        {"ft": "REH", "rows": [{"kontakttyp": "MKORT", "yrkeskategori": "AT"}]},
    ),
    case(
        "R53",
        "diagnos_1",
        {"ft": "REH", "rows": [{"diagnos_1": "M54"}]},
        {"ft": "REH", "rows": [{"diagnos_1": "M54.5"}]},
    ),
    case(
        "R70",
        "antal_deltagare",
        {"ft": "REH", "rows": [{"antal_deltagare": "3"}]},
        {"ft": "REH", "rows": [{"kontakttyp": "GBEH", "antal_deltagare": "030", "patientavgift": "50"}]},
    ),
    case(
        "R70",
        "antal_deltagare",
        {"ft": "REH", "rows": [{"kontakttyp": "GBEH", "antal_deltagare": "31", "patientavgift": "50"}]},
        {"ft": "REH", "rows": [{"kontakttyp": "GBEH", "antal_deltagare": "2", "patientavgift": "50"}]},
    ),
    case("R02", "kva_1", {"ft": "REH", "rows": [{"kva_1": ""}]}, {"ft": "REH", "rows": [{"kva_2": ""}]}),
    case(
        "R02",
        "antal_deltagare",
        {"ft": "REH", "rows": [{"kontakttyp": "GUTB", "patientavgift": "50"}]},
        {"ft": "REH", "rows": [{"kontakttyp": "GUTB", "antal_deltagare": "8", "patientavgift": "50"}]},
    ),
    case(
        "R02",
        "diagnos_1",
        {"ft": "REH", "rows": [{"diagnos_1": ""}]},
        {"ft": "REH", "rows": [{"diagnos_1": "", "kontakttyp": "TEL", "patientavgift": "160"}]},
    ),
]


def _validate(run, spec: dict):
    ft = spec.get("ft", "VGP")
    data = spec.get("data") or make_file(ft, spec.get("rows", [{}]))
    return run(
        data,
        name=spec.get("name") or file_name(ft),
        received_at=spec.get("received_at", "2026-11-02T10:00:00+01:00"),
        earlier=spec.get("earlier", ()),
        file_type=ft,
    )


@pytest.mark.parametrize(("rule", "field", "row", "broken", "near"), CASES)
def test_rule_breaks_and_near_miss_passes(run, rule, field, row, broken, near):
    result = _validate(run, broken)
    assert (row, field, rule) in triples(result), result.kvittens.counts_by_rule
    missed = _validate(run, near)
    assert rule not in missed.kvittens.counts_by_rule, missed.kvittens.counts_by_rule


def test_every_rule_code_of_the_spec_has_a_table_row():
    from filespec import all_specs

    covered = {p.values[0] for p in CASES} | {"F06"}  # F06 has its own test (a sparse 200 MiB file)
    codes = {c for s in all_specs() for c in [*s.file_rules, *(r.code for r in s.row_rules)]}
    assert codes <= covered, sorted(codes - covered)


def test_f11_is_2026_2s_and_keeps_the_row_findings(run):
    rows = [
        {"besoksdatum": "2026-12-15", "vardenhet_hsaid": REH_UNIT},
        {"besoksdatum": "2026-12-16", "kon": "Q", "vardenhet_hsaid": REH_UNIT},
    ]
    new = _validate(
        run, {"name": file_name(period="2026-12"), "received_at": "2027-01-04T10:00:00+01:00", "rows": rows}
    ).kvittens
    assert new.status.value == "AVVISAD" and new.spec_version == "VGP-2026.2"
    assert new.counts_by_rule == {"F11": 1, "R12": 2, "R23": 1}
    assert (new.rows.total, new.rows.accepted, new.rows.rejected) == (2, 0, 2)
    assert new.findings[0]["rule"] == "F11" and new.findings[0]["row"] is None
    # The same rows for 2026-11 (reading 23: judged by 2026.1 whenever received): reading 19.
    old_rows = [dict(r, besoksdatum=r["besoksdatum"].replace("2026-12", "2026-11")) for r in rows]
    old = _validate(
        run, {"name": file_name(period="2026-11"), "received_at": "2027-01-04T10:00:00+01:00", "rows": old_rows}
    ).kvittens
    assert old.status.value == "DELVIS_GODKAND" and "F11" not in old.counts_by_rule
    assert old.spec_version == "VGP-2026.1"


# --- the history rules (F09, copies): they need the ledger, so the table drives the intake ------

OTHER_VGP = "SE2321000131-E000000001002"
DEC = {"2026-12": "2026-12-15", "2026-11": "2026-11-15"}


def _file(period: str, seq: str, unit: str = VGP_UNIT, besok: str = "A1") -> tuple[bytes, str]:
    data = make_file(rows=[{"besoksdatum": DEC[period], "besok_id": besok}])
    return data, file_name(period=period, seq=seq, unit=unit)


HISTORY = [
    # (id, period, earlier submissions [(seq, unit, received_at, besok)], the new one, what must hold)
    pytest.param(
        "2026-12",
        [("02", VGP_UNIT, "2027-01-04T09:00:00+01:00", "A1")],
        ("01", VGP_UNIT, "B1"),
        "F09",
        id="F09-2026.2-after-a-usable-file",
    ),
    pytest.param(
        "2026-12",
        [("02", VGP_UNIT, "2026-12-28T09:00:00+01:00", "A1")],
        ("01", VGP_UNIT, "B1"),
        "no F09",
        id="F09-2026.2-near-miss-after-an-AVVISAD-file",
    ),
    pytest.param(
        "2026-11",
        [("02", VGP_UNIT, "2026-11-28T09:00:00+01:00", "A1")],
        ("01", VGP_UNIT, "B1"),
        "F09",
        id="F09-2026.1-after-an-AVVISAD-file",
    ),
    pytest.param(
        "2026-12",
        [("01", VGP_UNIT, "2027-01-04T09:00:00+01:00", "A1")],
        ("01", VGP_UNIT, "A1"),
        "copy",
        id="copy-2026.2-of-a-usable-file-of-the-same-unit",
    ),
    pytest.param(
        "2026-12",
        [("01", VGP_UNIT, "2026-12-28T09:00:00+01:00", "A1")],
        ("01", VGP_UNIT, "A1"),
        "new",
        id="copy-2026.2-near-miss-after-an-AVVISAD-file",
    ),
    pytest.param(
        "2026-12",
        [("01", VGP_UNIT, "2027-01-04T09:00:00+01:00", "A1")],
        ("01", OTHER_VGP, "A1"),
        "new",
        id="copy-2026.2-near-miss-under-another-units-name",
    ),
    pytest.param(
        "2026-11",
        [("01", VGP_UNIT, "2026-11-28T09:00:00+01:00", "A1")],
        ("01", VGP_UNIT, "A1"),
        "copy",
        id="copy-2026.1-of-an-AVVISAD-file",
    ),
    pytest.param(
        "2026-11",
        [("01", VGP_UNIT, "2026-12-01T09:00:00+01:00", "A1")],
        ("01", OTHER_VGP, "A1"),
        "copy",
        id="copy-2026.1-under-another-units-name",
    ),
]


@pytest.mark.parametrize(("period", "earlier", "new", "expect"), HISTORY)
def test_history_rules_by_version(app, period, earlier, new, expect):
    from filespec.calendar import parse_instant
    from vardfil.month.intake import submit

    def send(seq: str, unit: str, at: str, besok: str):
        data, name = _file(period, seq, unit, besok)
        # Same bytes for the same besok: the unit's HSA-id in the rows is the first unit's always.
        data = data.replace(unit.encode(), VGP_UNIT.encode())
        return submit(data, file_name=name, received_at=parse_instant(at), app=app)

    first = [send(*e) for e in earlier]
    after = "2027-01-05T10:00:00+01:00" if period == "2026-12" else "2026-12-02T10:00:00+01:00"
    sub = send(*new[:2], after, new[2])
    rules = sub.kvittens["counts_by_rule"]
    if expect == "F09":
        assert "F09" in rules and sub.new
    elif expect == "no F09":
        assert "F09" not in rules and sub.new and sub.kvittens["status"] != "AVVISAD"
    elif expect == "copy":
        assert not sub.new and sub.receipt_id == first[-1].receipt_id
    else:  # judged anew: a receipt of its own
        assert sub.new and sub.receipt_id != first[-1].receipt_id


# --- membership in long code lists (an Enum instead of is_in) ------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import validators.rules as rules  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(
    st.sets(st.text(alphabet="ABQ0129 .", min_size=1, max_size=4), min_size=1, max_size=30),
    st.lists(st.none() | st.text(alphabet="ABQ0129 .", max_size=4), max_size=40),
)
def test_member_answers_as_is_in_on_either_path(codes, values):
    import polars as pl

    frame = pl.DataFrame({"v": values}, schema={"v": pl.Utf8})
    expected = frame.select(pl.col("v").is_in(list(codes)))["v"]
    for threshold in (0, 10**9):  # the Enum's path and is_in's
        old = rules.ENUM_FROM
        rules.ENUM_FROM = threshold
        try:
            got = frame.select(rules.member(pl.col("v"), frozenset(codes)).alias("v"))["v"]
        finally:
            rules.ENUM_FROM = old
        assert got.to_list() == expected.to_list(), threshold


def test_r61_with_the_whole_kva_classification(reference, tmp_path):
    """A year list as long as the KVÅ classification takes the Enum's path and judges as before:
    a listed code passes, an unlisted one of the right form fails, an empty field is R61-free."""
    import dataclasses

    from filespec.calendar import parse_instant
    from validators import validate_file

    kva = {y: frozenset(c) | {f"ZZ{i:03d}" for i in range(rules.ENUM_FROM)} for y, c in reference.kva.items()}
    long_lists = dataclasses.replace(reference, kva=kva)
    assert all(len(c) >= rules.ENUM_FROM for c in kva.values())
    data = make_file(rows=[{"kva_1": "ZZ007"}, {"kva_1": "QQ999"}, {"kva_2": "AW030"}, {"kva_1": "ZZ999"}])
    result = validate_file(data, file_name=file_name(), received_at=parse_instant(ON_TIME), reference=long_lists)
    assert {t for t in triples(result) if t[2] == "R61"} == {(3, "kva_1", "R61")}
