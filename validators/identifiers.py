"""Patient identifiers, vectorised: personnummer, samordningsnummer and VGR reservnummer.

All forms are 12 characters (FILSPECIFIKATION.md section 5, reading 11):

- personnummer ``YYYYMMDDNNNC``; samordningsnummer the same with day + 60 (61–91);
- VGR reservnummer ``YYYYMMDDGggC`` with ``G`` one of K, M, X.

``C`` makes the Luhn sum of the ten characters after the century divisible by 10, letters counted
as K=5, M=7, X=8. Everything here is a polars expression over a whole column: no per-row Python.
The scalar helpers at the bottom are for generating test and sample data only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

# Century 18/19/20, six date digits, then birth number (3 digits) or letter + 2 digits, then C.
FORM_PATTERN = r"^(18|19|20)[0-9]{6}([0-9]{3}|[KMX][0-9]{2})[0-9]$"
LETTER_VALUES = {"K": "5", "M": "7", "X": "8"}
_LUHN_WEIGHTS = (2, 1, 2, 1, 2, 1, 2, 1, 2, 1)


@dataclass(frozen=True)
class PatientIdParts:
    """Expressions derived from one patient_id column (nulls where the input is null)."""

    form_ok: pl.Expr  # R20 passes
    reservnummer: pl.Expr  # form ok and a letter in position 9
    check_ok: pl.Expr  # R21 passes (only meaningful where form_ok)
    date_ok: pl.Expr  # R22 passes (only meaningful where form_ok)
    valid: pl.Expr  # none of R20, R21, R22
    birth_date: pl.Expr  # Date, null unless valid
    sex: pl.Expr  # "K" / "M" / "X", null unless valid


def patient_id_parts(pid: pl.Expr) -> PatientIdParts:
    """Build the identifier expressions for a Utf8 column of trimmed patient ids."""
    form_ok = pid.str.contains(FORM_PATTERN) & (pid.str.slice(8, 3) != "000")
    letter = pid.str.slice(8, 1)
    reserv = form_ok & letter.is_in(list(LETTER_VALUES))

    # Luhn over the ten characters after the century, with integer arithmetic on one Int64.
    ten = pid.str.slice(2, 10).str.replace_many(list(LETTER_VALUES), list(LETTER_VALUES.values()))
    n = ten.str.to_integer(strict=False)
    total = pl.lit(0, dtype=pl.Int64)
    for pos, weight in enumerate(_LUHN_WEIGHTS):
        digit = (n // 10 ** (9 - pos)) % 10
        product = digit * weight
        total = total + pl.when(product > 9).then(product - 9).otherwise(product)
    check_ok = (total % 10) == 0

    day = pid.str.slice(6, 2).str.to_integer(strict=False)
    # Days 61–91 make a samordningsnummer (never for a reservnummer, whose date is as written).
    day = pl.when(~reserv & day.is_between(61, 91)).then(day - 60).otherwise(day)
    date_text = pl.concat_str([pid.str.slice(0, 6), day.cast(pl.Utf8).str.zfill(2)])
    birth = date_text.str.to_date("%Y%m%d", strict=False)
    date_ok = birth.is_not_null()

    valid = form_ok & check_ok & date_ok
    sex_digit = pid.str.slice(10, 1).str.to_integer(strict=False)
    sex = (
        pl.when(reserv).then(letter)
        .when((sex_digit % 2) == 1).then(pl.lit("M"))
        .otherwise(pl.lit("K"))
    )
    return PatientIdParts(
        form_ok=form_ok,
        reservnummer=reserv,
        check_ok=check_ok,
        date_ok=date_ok,
        valid=valid,
        birth_date=pl.when(valid).then(birth),
        sex=pl.when(valid).then(sex),
    )


def classify(ids: list[str]) -> pl.DataFrame:
    """Judge a list of ids with the vectorised code: columns id, form_ok, check_ok, date_ok, valid,
    reservnummer, birth_date, sex. For tests, tools and the portal; validation uses the expressions.
    """
    pid = pl.col("id")
    parts = patient_id_parts(pid)
    frame = pl.DataFrame({"id": ids}, schema={"id": pl.Utf8})
    return frame.select(
        pid,
        parts.form_ok.fill_null(False).alias("form_ok"),
        (parts.form_ok & parts.check_ok).fill_null(False).alias("check_ok"),
        (parts.form_ok & parts.date_ok).fill_null(False).alias("date_ok"),
        parts.valid.fill_null(False).alias("valid"),
        parts.reservnummer.fill_null(False).alias("reservnummer"),
        parts.birth_date.alias("birth_date"),
        parts.sex.alias("sex"),
    )


def mask(value: str | None) -> str | None:
    """The spec's masking: the last four characters replaced by ``****`` (all of a shorter value)."""
    if value is None:
        return None
    return value[:-4] + "****" if len(value) > 4 else "****"


def mask_expr(value: pl.Expr) -> pl.Expr:
    """``mask`` as an expression."""
    return (
        pl.when(value.str.len_chars() > 4)
        .then(pl.concat_str([value.str.slice(0, value.str.len_chars() - 4), pl.lit("****")]))
        .otherwise(pl.when(value.is_not_null()).then(pl.lit("****")))
    )


# --- scalar helpers for generating data (never used to judge a file) -------------------------

def luhn_check_digit(nine: str) -> str:
    """The check digit that completes nine characters (letters by their values) to a Luhn sum ≡ 0."""
    digits = [int(LETTER_VALUES.get(c, c)) for c in nine]
    total = 0
    for d, w in zip(digits, _LUHN_WEIGHTS[:9]):
        p = d * w
        total += p - 9 if p > 9 else p
    return str((10 - total % 10) % 10)


def make_personnummer(birth: dt.date, birth_number: int, *, samordning: bool = False) -> str:
    """A valid personnummer (or samordningsnummer) for a birth date and birth number 1–999."""
    day = birth.day + (60 if samordning else 0)
    body = f"{birth:%Y%m}{day:02d}{birth_number:03d}"
    return body + luhn_check_digit(body[2:])


def make_reservnummer(birth: dt.date, letter: str, number: int) -> str:
    """A valid VGR reservnummer: date, letter K/M/X, two digits, check digit."""
    body = f"{birth:%Y%m%d}{letter}{number:02d}"
    return body + luhn_check_digit(body[2:])
