"""The vectorised identifier module: the shared conformance list, the spec's examples, properties."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from validators import classify, make_personnummer, make_reservnummer, mask

CONFORMANCE = Path(__file__).parent / "data" / "personnummer-meta-list.json"


def test_shared_conformance_list():
    entries = json.loads(CONFORMANCE.read_text(encoding="utf-8"))
    judged = classify([e["long_format"] for e in entries])
    assert judged["valid"].to_list() == [e["valid"] for e in entries]
    for e, sex in zip(entries, judged["sex"].to_list(), strict=True):
        if e["valid"]:
            assert sex == ("M" if e["isMale"] else "K")


@pytest.mark.parametrize("rid", ["19810829M071", "19450829K088", "19930829X802"])
def test_spec_reservnummer_examples_are_valid(rid):
    row = classify([rid]).row(0, named=True)
    assert row["valid"] and row["reservnummer"] and row["sex"] == rid[8]


@pytest.mark.parametrize(
    ("pid", "form", "check", "date"),
    [
        ("19121212121", False, False, False),  # 11 characters
        ("171212121212", False, False, False),  # century 17
        ("19121212000" + "0", False, False, False),  # birth number 000
        ("19121212Q121", False, False, False),  # letter other than K/M/X
        ("19121212k121", False, False, False),  # lower case letter
        ("191212121213", True, False, True),  # check digit
        ("198002301230", True, False, False),  # 30 February and a wrong check digit: both reported
    ],
)
def test_structure_check_digit_and_date_are_judged_separately(pid, form, check, date):
    row = classify([pid]).row(0, named=True)
    assert (row["form_ok"], row["check_ok"], row["date_ok"]) == (form, check, date)


dates = st.dates(min_value=dt.date(1880, 1, 1), max_value=dt.date(2029, 12, 31))


@st.composite
def valid_ids(draw):
    birth = draw(dates)
    kind = draw(st.sampled_from(["pnr", "samordning", "reserv"]))
    if kind == "reserv":
        return make_reservnummer(birth, draw(st.sampled_from("KMX")), draw(st.integers(0, 99)))
    return make_personnummer(birth, draw(st.integers(1, 999)), samordning=kind == "samordning")


@given(valid_ids())
def test_any_generated_valid_id_passes(pid):
    row = classify([pid]).row(0, named=True)
    assert row["valid"], pid


@given(valid_ids(), st.integers(2, 11), st.integers(1, 9))
def test_any_single_digit_change_fails_the_checksum(pid, pos, delta):
    # Positions 2–11 are the checksummed characters (the century is outside the Luhn sum).
    if not pid[pos].isdigit():
        return
    changed = pid[:pos] + str((int(pid[pos]) + delta) % 10) + pid[pos + 1 :]
    row = classify([changed]).row(0, named=True)
    assert not row["valid"]
    assert not row["check_ok"], changed


def test_every_written_date_is_judged_as_the_calendar_judges_it():
    """The birth date of every century, two-digit year, month 00–13 and day 00–99 (with a
    reservnummer's letter and without), against Python's calendar: samordningsnummer days
    61–91 are days 1–31, a reservnummer's date is as written, and a date exists or it does not
    (29 February of 1900 does not, of 2000 does)."""
    ids, expected = [], []
    for century in ("18", "19", "20"):
        for yy in range(100):
            for mm in (*range(14), 99):
                for dd in range(100):
                    for tail, reserv in (("0010", False), ("K120", True)):
                        ids.append(f"{century}{yy:02d}{mm:02d}{dd:02d}{tail}")
                        day = dd - 60 if 61 <= dd <= 91 and not reserv else dd
                        try:
                            expected.append(dt.date(int(century) * 100 + yy, mm, day))
                        except ValueError:
                            expected.append(None)
    got = classify(ids)
    assert got["form_ok"].all()
    # birth_date is null unless the whole id is valid: the date itself is what date_ok says.
    assert got["date_ok"].to_list() == [d is not None for d in expected]
    valid = got.filter(pl.col("valid"))
    assert valid.height > 0
    by_id = dict(zip(ids, expected, strict=True))
    assert all(by_id[i] == b for i, b in valid.select("id", "birth_date").iter_rows())


def test_mask_hides_the_last_four():
    assert mask("191212121212") == "19121212****"
    assert mask("123") == "****"
    assert mask(None) is None


PNR = make_personnummer(dt.date(1912, 12, 12), 121)  # 191212121212
LEAP = make_personnummer(dt.date(2000, 2, 29), 121)  # 200002291219: ten digits are no century


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (f"diagnos {PNR}", "diagnos 19121212****"),
        # An invalid id-shaped number before a valid one does not hide it (it once did).
        (f"19850230-1234 och {PNR}", "19850230-1234 och 19121212****"),
        (f"{PNR} och 19850230-1234", "19121212**** och 19850230-1234"),
        (" ".join([PNR] * 5), " ".join(["19121212****"] * 5)),
        (f"{PNR[:8]}+{PNR[8:]}-5", "19121212+****-5"),
        (f"{PNR[2:8]}-{PNR[8:]}", "121212-****"),
        (f"{LEAP[2:8]}-{LEAP[8:]}", "000229-****"),  # born 2000-02-29, not 1900
        # Not at digit boundaries: a longer number, or a besok_id with a dash in its digits.
        (f"{PNR}3", f"{PNR}3"),
        (f"2{PNR}", f"2{PNR}"),
        ("U102610-000269", "U102610-000269"),
        ("19810829M071", "19810829****"),  # a reservnummer in text is somebody's too
        ("191212121213", "19121212****"),  # a wrong check digit: a mistyped personnummer is still one
        ("1212121212", "121212****"),  # ten digits with nothing between date and number
        ("19121212 1212", "19121212 ****"),  # or a space
        ("121212 1212", "121212 ****"),
        ("19851332-1234", "19851332-1234"),  # no such date: no person's number
        ("0000000000", "0000000000"),
        (None, None),
        ("", ""),
    ],
)
def test_every_valid_person_number_in_a_value_is_masked(value, shown):
    from validators.identifiers import mask_identifiers

    frame = pl.DataFrame({"value": [value, "ingen"], "other": [PNR, PNR]})
    got = mask_identifiers(frame, "value")
    assert got["value"].to_list() == [shown, "ingen"]
    assert got["other"].to_list() == [PNR, PNR]  # only the named column


SEPARATORS = ["", "-", "+", " "]  # between the date and the last four, as the region writes them


@st.composite
def written(draw, real_date: bool = True):
    """A person number in one of the forms the region writes: twelve or ten digits (a reservnummer:
    a letter and three digits), any separator, the check digit right or wrong; with
    ``real_date=False`` the same shapes with a month that does not exist (never masked)."""
    birth = draw(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2029, 12, 31)))
    kind = draw(st.sampled_from(["person", "samordning", "reserv"]))
    if kind == "reserv":
        pid = make_reservnummer(birth, draw(st.sampled_from("KMX")), draw(st.integers(0, 99)))
    else:
        pid = make_personnummer(birth, draw(st.integers(1, 999)), samordning=kind == "samordning")
    if draw(st.booleans()):
        pid = pid[:-1] + str((int(pid[-1]) + draw(st.integers(1, 9))) % 10)  # a wrong check digit
    if not real_date:
        pid = pid[:4] + draw(st.sampled_from(["13", "19", "00"])) + pid[6:]
    digits = draw(st.sampled_from([12, 10]))
    date, rest = (pid[:8], pid[8:]) if digits == 12 else (pid[2:8], pid[8:])
    return f"{date}{draw(st.sampled_from(SEPARATORS))}{rest}"


def expected_mask(text: str) -> str:
    return text[:-4] + "****"


@given(
    st.lists(
        st.one_of(
            written().map(lambda w: (w, True)),
            written(real_date=False).map(lambda w: (w, False)),
            st.sampled_from(["ja", "KVÅ", "U102610-000269", "12", "ÅÄÖ", "SE2321000131-E000000000101"]).map(
                lambda w: (w, False)
            ),
        ),
        max_size=6,
    ),
    st.sampled_from([", ", "/", "x", "\n", "_", ";"]),
)
def test_masking_hides_every_form_of_a_number_and_nothing_else(parts, sep):
    from validators.identifiers import mask_identifiers

    value = sep.join(text for text, _ in parts)
    expected = sep.join(expected_mask(text) if masked else text for text, masked in parts)
    assert mask_identifiers(pl.DataFrame({"v": [value]}), "v")["v"].to_list() == [expected]
