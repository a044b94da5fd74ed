"""The rule catalogue in the region's Swedish (issue 32): every rule of every version has a Swedish
"when" and an example, every example is judged by the validator as the page says, the readings are
Swedish, and no page of /regler shows a markup character."""

from __future__ import annotations

import re

import pytest
from conftest import ON_TIME, file_name, make_file

from filespec import all_specs
from filespec.catalogue import catalogue, readings, rule_texts, versions
from sample_data.generate import REH_FIELDS, VGP_FIELDS

MARKUP = re.compile(r"[`*]|\*\*|__")
# A few of the commonest English words: a reading left untranslated trips at least one of them.
ENGLISH = re.compile(r"\b(the|is|are|when|only|every|file|row|which|after|before)\b")
CODES = sorted({c for s in all_specs() for c in [*s.file_rules, *(r.code for r in s.row_rules)]})


def test_every_rule_has_swedish_texts_without_markup():
    texts = rule_texts()
    assert set(texts) == set(CODES), sorted(set(CODES) ^ set(texts))
    for code, t in texts.items():
        for key in ("when", "example"):
            assert t[key].strip() and not MARKUP.search(t[key]), (code, key)
            assert not ENGLISH.search(t[key]), (code, key, ENGLISH.search(t[key]))


def test_every_reading_is_swedish_and_keeps_the_specs_wording():
    for r in readings():
        assert not MARKUP.search(r.text) and not ENGLISH.search(r.text), (r.number, ENGLISH.search(r.text))
        assert r.spec and r.spec != r.text  # the spec's own words stay for the maintainers


def _input(code: str, check: dict) -> dict:
    ft = check.get("ft", "VGP")
    rows = check.get("rows", [{}])
    if "drop_field" in check:
        data = make_file(
            ft, rows, header=[f for f in (VGP_FIELDS if ft == "VGP" else REH_FIELDS) if f != check["drop_field"]]
        )
    elif "extra_line_fields" in check:
        data = make_file(ft, rows, extra_lines=[";".join(["x"] * check["extra_line_fields"])])
    else:
        data = make_file(ft, rows)
    if "insert_hex" in check:
        at = data.index(check["after"].encode()) + len(check["after"])
        data = data[:at] + bytes.fromhex(check["insert_hex"]) + data[at:]
    return {
        "data": data,
        "name": check.get("name") or file_name(ft),
        "received_at": check.get("received_at", ON_TIME),
        "earlier": tuple(check.get("earlier", ())),
        "file_type": ft,
    }


@pytest.mark.parametrize("code", [c for c in CODES if c != "F06"])  # F06: a 200 MiB file, test_reader
def test_every_example_is_judged_as_its_page_says(run, code):
    check = rule_texts()[code]["check"]
    given = _input(code, check)
    kv = run(given.pop("data"), **given).kvittens
    assert code in kv.counts_by_rule, (code, kv.counts_by_rule)
    if code[0] in "RW":
        # The values the example is about are the ones in its text: the page and the test agree.
        spec = next(s for s in all_specs() if s.file_type == given["file_type"])
        fields = spec.row_rule(code).fields
        example = rule_texts()[code]["example"]
        for change in check.get("rows", []):
            for field, value in change.items():
                if field in fields and value:
                    assert value in example, (code, field, value)


def test_f06s_example_is_one_byte_over_the_limit():
    limit = next(iter(all_specs())).max_bytes
    assert f"{limit + 1:,}".replace(",", " ") in rule_texts()["F06"]["example"]


def test_since_and_until_follow_the_versions():
    assert catalogue("VGP-2026.2").rule("F11").since == "VGP-2026.2"
    assert catalogue("VGP-2026.2").rule("R21").since == "VGP-2026.1"
    assert all(r.until is None for v in versions() for r in catalogue(v).rules)  # no rule dropped yet
    assert [r.number for r in catalogue("VGP-2026.2").general] == [3, 22, 23]
