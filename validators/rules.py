"""Row rules as a pandera (polars backend) schema built from the spec.

Each row rule in the spec names a registered check and the fields it reports on. A check is a
function ``(ctx, rule, field) -> pl.Expr`` giving, per row, True when the row passes. The
expressions read the record's fields and a few derived columns computed once before validation
(identifier parts, visit date, age, expected fee), so no rule recomputes another's work and no
Python runs per row. A check that cannot be evaluated (a null on the way) passes: readings 11–17
say when a rule is not evaluated, and the checks follow them explicitly.

All rules are evaluated together in one polars query with the derived columns (``prepare`` and
``rule_columns``, in ``validators.engine.judge_rows``: a boolean verdict column per rule and
field); the pandera schema (``build_schema``) checks the verdict columns of the rules that fail
somewhere, over the rows that fail some rule, and reports their failure cases
(``docs/decisions.md``: why, with measurements).

Why polars: on this machine pandera's polars backend ran the same checks 2.5–3× faster than its
pandas backend (``benchmarks/``); accepted rows are handed on as polars frames, or written as
Parquet while they are judged.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TypeVar

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData

from filespec import FeeTable, FileSpec, Reference, RowRule
from filespec.calendar import Period
from filespec.errors import VardfilError
from validators.identifiers import patient_id_parts

# Derived columns (prefixed so they can never collide with a spec field).
PID_FORM = "__pid_form"
PID_RESERV = "__pid_reserv"
PID_CHECK = "__pid_check"
PID_DATE = "__pid_date"
PID_VALID = "__pid_valid"
PID_SEX = "__pid_sex"
BIRTH = "__birth"
VISIT = "__visit"
AGE = "__age"
FEE = "__fee"
AVGIFT = "__avgift"
# Fields read as whole numbers once per file, before the rules: their derived column.
WHOLE_NUMBERS = {"patientavgift": AVGIFT}
FILE_HSAID = "__file_hsaid"  # the unit of the file's name, beside every row (equals_file_hsaid)
RULE_PREFIX = "__ok_"  # the per-row verdict column of a rule (RuleColumn.name)


class SpecError(VardfilError):
    """The spec or the reference data cannot support a rule (a configuration fault, not bad input)."""


def field_of(rule: RowRule, field: str | None) -> str:
    """The field a per-field check judges; a spec that names none for it is a configuration fault."""
    if field is None:
        raise SpecError(f"rule {rule.code} ({rule.check}) needs a field")
    return field


@dataclass(frozen=True, kw_only=True)
class CheckContext:
    """Everything a check may depend on besides the rows themselves."""

    spec: FileSpec
    period: str
    file_hsaid: str
    reference: Reference
    fees: FeeTable

    # Built once for the file (its pieces share them): the derived columns' stages and the rules'
    # ~60 expressions, ~4 ms, a tenth of judging a typical 2,500-row file.
    @functools.cached_property
    def stages(self) -> tuple[tuple[pl.Expr, ...], ...]:
        """The derived columns every check reads, stage by stage."""
        return tuple(tuple(stage) for stage in _prepare_stages(self))

    @functools.cached_property
    def columns(self) -> tuple[RuleColumn, ...]:
        """Every row rule (but R01) as a named boolean expression."""
        return tuple(_rule_columns(self))


CheckFn = Callable[[CheckContext, RowRule, "str | None"], pl.Expr]
FileCheckFn = Callable[[int, int], bool]
# File rules judged after the row rules (F11 from 2026.2): name -> check(rows total, rows accepted).
FILE_CHECKS: dict[str, FileCheckFn] = {}


def register_file_check(name: str) -> Callable[[FileCheckFn], FileCheckFn]:
    """Register a file check under the name a spec's file rule refers to (``check = "..."``)."""

    def deco(fn: FileCheckFn) -> FileCheckFn:
        FILE_CHECKS[name] = fn
        return fn

    return deco


@register_file_check("no_accepted_rows")
def _no_accepted_rows(total: int, accepted: int) -> bool:
    # F11 (reading 20): rows there were, and every one has a FEL. A file with no rows is F03's.
    return total > 0 and accepted == 0


CHECKS: dict[str, CheckFn] = {}


def register(name: str) -> Callable[[CheckFn], CheckFn]:
    """Register a check under the name the spec TOML uses."""

    def deco(fn: CheckFn) -> CheckFn:
        CHECKS[name] = fn
        return fn

    return deco


def _codes(ctx: CheckContext, name: str) -> list[str]:
    return list(ctx.spec.codes[name])


# From this many codes a membership test casts to an Enum of the codes instead of ``is_in``.
# ``is_in`` builds its set of codes in every query: twelve tests against 8,000 codes (the KVÅ
# classification is ~9,000) cost 8.4 ms a query, the Enum's 0.23 ms, so a month file would pay
# more for the code lists than for its rows. Per row the Enum is slower (2.2 against 1.5 ms on
# 200,000 values for 55 codes), so short lists keep ``is_in`` (benchmarks/RESULTS.md).
ENUM_FROM = 1_000


def member(expr: pl.Expr, codes: Collection[str]) -> pl.Expr:
    """Whether each value is one of ``codes``, null where the value is null: ``is_in``'s answer."""
    if len(codes) < ENUM_FROM:
        return expr.is_in(list(codes))
    # A value outside the Enum's categories becomes null in a non-strict cast.
    return pl.when(expr.is_not_null()).then(expr.cast(_enum(frozenset(codes)), strict=False).is_not_null())


@functools.lru_cache(maxsize=16)
def _enum(codes: frozenset[str]) -> pl.Enum:
    return pl.Enum(sorted(codes))


def whole_number(expr: pl.Expr) -> pl.Expr:
    """Reading 16: ASCII digits only, leading zeros allowed; the integer, or null when not one."""
    stripped = expr.str.strip_chars_start("0")
    as_int = (
        pl.when(stripped == "")
        .then(pl.lit(0, pl.Int64))
        .otherwise(
            # More than 9 significant digits is out of every range the spec uses.
            pl.when(stripped.str.len_bytes() <= 9)
            .then(stripped.str.to_integer(strict=False))
            .otherwise(pl.lit(10**9, pl.Int64))
        )
    )
    return pl.when(expr.str.contains(r"^[0-9]+$")).then(as_int)


def repeated(key: list[str]) -> pl.Expr:
    """True on every row whose ``key`` values occur on another row too (nulls compare equal).

    A group count, not ``is_duplicated``: 3× faster on a million strings, the same answer."""
    return pl.len().over(key) > 1


def derived_stages(ctx: CheckContext) -> list[list[pl.Expr]]:
    """Columns computed once per file before the rules run, in dependency order."""
    pid = patient_id_parts(pl.col("patient_id"), prefix="__id")
    dates = pl.col("besoksdatum")
    visit = pl.when(dates.str.contains(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")).then(
        dates.str.to_date("%Y-%m-%d", strict=False)
    )
    stages = [list(s) for s in pid.stages]
    stages[0] += [visit.alias(VISIT), *(whole_number(pl.col(f)).alias(d) for f, d in WHOLE_NUMBERS.items())]
    stages.append(
        [
            pid.form_ok.alias(PID_FORM),
            pid.reservnummer.alias(PID_RESERV),
            pid.check_ok.alias(PID_CHECK),
            pid.date_ok.alias(PID_DATE),
            pid.valid.alias(PID_VALID),
            pid.sex.alias(PID_SEX),
            pid.birth_date.alias(BIRTH),
        ]
    )
    return stages


def age_column() -> pl.Expr:
    """Whole years between birth date and visit date (null unless both are known)."""
    visit, birth = pl.col(VISIT), pl.col(BIRTH)

    # dt.month()/dt.day() are Int8: widen before arithmetic.
    def month_day(d: pl.Expr) -> pl.Expr:
        return d.dt.month().cast(pl.Int32) * 100 + d.dt.day().cast(pl.Int32)

    before_birthday = month_day(visit) < month_day(birth)
    age = visit.dt.year().cast(pl.Int32) - birth.dt.year().cast(pl.Int32) - before_birthday.cast(pl.Int32)
    return age.alias(AGE)


def fee_column(ctx: CheckContext) -> pl.Expr:
    """The expected patient fee (section 7, reading 17): 0, the table's fee, or null when unknown."""
    table = ctx.fees.fees[ctx.spec.file_type]
    kt, yrk = pl.col("kontakttyp"), pl.col("yrkeskategori")
    lak = {k: v[0] for k, v in table.items()}
    ovr = {k: v[1] for k, v in table.items()}
    paying_fee = (
        pl.when(yrk.is_in(list(ctx.fees.lakare_och_rehab)))
        .then(kt.replace_strict(lak, default=None, return_dtype=pl.Int64))
        .otherwise(kt.replace_strict(ovr, default=None, return_dtype=pl.Int64))
    )
    known_age = pl.col(AGE).is_not_null()
    fee = (
        pl.when(pl.col("frikort") == "J")
        .then(pl.lit(0, pl.Int64))
        .when(known_age & ((pl.col(AGE) <= ctx.fees.free_to_age) | (pl.col(AGE) >= ctx.fees.free_from_age)))
        .then(pl.lit(0, pl.Int64))
        .when(
            (pl.col("frikort") == "N")
            & known_age
            & kt.is_in(_codes(ctx, "kontakttyp"))
            & yrk.is_in(_codes(ctx, "yrkeskategori"))
        )
        .then(paying_fee)
    )
    return fee.alias(FEE)


def prepare(frame: pl.DataFrame, ctx: CheckContext) -> pl.LazyFrame:
    """The record frame with every derived column the checks read, as a query: the rules are
    evaluated in the same query, so the derived columns are never collected into a frame of their
    own (each was a copy a chunk long)."""
    lazy = frame.lazy().with_columns(pl.lit(ctx.file_hsaid, pl.Utf8).alias(FILE_HSAID))
    for stage in ctx.stages:
        lazy = lazy.with_columns(stage)
    return lazy


def _prepare_stages(ctx: CheckContext) -> tuple[tuple[pl.Expr, ...], ...]:
    first, *rest = derived_stages(ctx)
    return ((*first, *_normalised_codes(ctx)), *(tuple(s) for s in rest), (age_column(),), (fee_column(ctx),))


NORMALISED = "__norm_"  # a code field without its dot, where its form is valid (no_repeated_diagnosis)


def _normalised_codes(ctx: CheckContext) -> list[pl.Expr]:
    """Each field a ``no_repeated_diagnosis`` rule compares, normalised once.

    Every such rule compares its field with each earlier one; written out in each rule's
    expression, the normalisations (a regex and a replace a field) were four rules' worth of
    expression tree to plan: ~1 ms, a fifth of the rule query's fixed cost on a month file.
    """
    out = {}
    for rule in ctx.spec.row_rules:
        if rule.check == "no_repeated_diagnosis":
            for f in ctx.spec.row_rule(rule.params["form_rule"]).fields:
                valid = _form_ok(ctx, rule, f)
                out[f] = pl.when(valid).then(pl.col(f).str.replace(".", "", literal=True)).alias(NORMALISED + f)
    return list(out.values())


# --- the registered checks ---------------------------------------------------------------------


@register("required")
def _required(ctx: CheckContext, rule: RowRule, field: str | None) -> pl.Expr:
    field = field_of(rule, field)
    spec_field = next(f for f in ctx.spec.fields if f.name == field)
    given = pl.col(field).is_not_null()
    cond = spec_field.required_when
    if cond is None:
        return given
    other = pl.col(cond["field"])
    if "in" in cond:
        needed = other.is_in(cond["in"]).fill_null(False)
    else:  # "not_in": an empty or invalid value is also "anything but" (reading 10)
        needed = ~other.is_in(cond["not_in"]).fill_null(False)
    return ~needed | given


@register("pattern")
def _pattern(ctx: CheckContext, rule: RowRule, field: str | None) -> pl.Expr:
    field = field_of(rule, field)
    return pl.col(field).str.contains(rule.params["pattern"])


@register("in_codes")
def _in_codes(ctx: CheckContext, rule: RowRule, field: str | None) -> pl.Expr:
    field = field_of(rule, field)
    return pl.col(field).is_in(_codes(ctx, rule.params["codes"]))


@register("unique")
def _unique(ctx: CheckContext, rule: RowRule, field: str | None) -> pl.Expr:
    field = field_of(rule, field)
    # Every occurrence of a repeated non-empty value fails (reading 18).
    return ~(repeated([field]) & pl.col(field).is_not_null())


@register("equals_file_hsaid")
def _equals_file_hsaid(ctx: CheckContext, rule: RowRule, field: str | None) -> pl.Expr:
    field = field_of(rule, field)
    # A column, not the literal: the rule expressions then do not depend on the file's unit and
    # are built once for every unit's file of a period (``rule_columns``).
    return pl.col(field) == pl.col(FILE_HSAID)


@register("patient_id_form")
def _pid_form(ctx: CheckContext, rule: RowRule, field: str | None) -> pl.Expr:
    return pl.col(PID_FORM)


@register("patient_id_check_digit")
def _pid_check(ctx: CheckContext, rule: RowRule, field: str | None) -> pl.Expr:
    return ~pl.col(PID_FORM) | pl.col(PID_CHECK)


@register("patient_id_date")
def _pid_date(ctx: CheckContext, rule: RowRule, field: str | None) -> pl.Expr:
    return ~pl.col(PID_FORM) | pl.col(PID_DATE)


def _kon_allowed_expr(ctx: CheckContext) -> pl.Expr:
    kon = pl.col("kon")
    ordinary = [c for c in _codes(ctx, "kon") if c != "X"]
    # X only with the reservnummer form, even when its check digit or date is wrong (reading 11).
    return kon.is_in(ordinary) | ((kon == "X") & pl.col(PID_RESERV).fill_null(False))


@register("kon_allowed")
def _kon_allowed(ctx: CheckContext, rule: RowRule, field: str | None) -> pl.Expr:
    return _kon_allowed_expr(ctx)


@register("kon_agrees")
def _kon_agrees(ctx: CheckContext, rule: RowRule, field: str | None) -> pl.Expr:
    evaluated = _kon_allowed_expr(ctx).fill_null(False) & pl.col(PID_VALID).fill_null(False)
    return ~evaluated | (pl.col("kon") == pl.col(PID_SEX))


@register("real_date")
def _real_date(ctx: CheckContext, rule: RowRule, field: str | None) -> pl.Expr:
    field = field_of(rule, field)
    return pl.col(field).is_null() | pl.col(VISIT).is_not_null()


@register("date_in_period")
def _date_in_period(ctx: CheckContext, rule: RowRule, field: str | None) -> pl.Expr:
    first, last = Period.parse(ctx.period).bounds
    return pl.col(VISIT).is_between(pl.lit(first), pl.lit(last))


@register("date_not_before_birth")
def _date_not_before_birth(ctx: CheckContext, rule: RowRule, field: str | None) -> pl.Expr:
    return pl.col(VISIT) >= pl.col(BIRTH)


@register("profession_only")
def _profession_only(ctx: CheckContext, rule: RowRule, field: str | None) -> pl.Expr:
    field = field_of(rule, field)
    yrk = pl.col("yrkeskategori")
    # Evaluated only when yrkeskategori is a valid value of the filtyp (reading 13).
    broken: pl.Expr = (
        yrk.is_in(_codes(ctx, "yrkeskategori"))
        & (pl.col(field) == rule.params["kontakttyp"])
        & (yrk != rule.params["yrkeskategori"])
    )
    return ~broken


def _form_ok(ctx: CheckContext, rule: RowRule, field: str) -> pl.Expr:
    """The value passed the form rule the spec names (R50 or R60)."""
    form_rule = ctx.spec.row_rule(rule.params["form_rule"])
    return pl.col(field).str.contains(form_rule.params["pattern"])


@register("not_external_cause")
def _not_external_cause(ctx: CheckContext, rule: RowRule, field: str | None) -> pl.Expr:
    field = field_of(rule, field)
    head = pl.col(field).str.slice(0, 3)
    return ~(_form_ok(ctx, rule, field) & (head >= "V01") & (head <= "Y98"))


@register("min_code_length")
def _min_code_length(ctx: CheckContext, rule: RowRule, field: str | None) -> pl.Expr:
    field = field_of(rule, field)
    length = pl.col(field).str.replace(".", "", literal=True).str.len_chars()
    too_short: pl.Expr = length < rule.params["min_length"]
    return ~(_form_ok(ctx, rule, field) & too_short)


@register("no_repeated_diagnosis")
def _no_repeated_diagnosis(ctx: CheckContext, rule: RowRule, field: str | None) -> pl.Expr:
    field = field_of(rule, field)
    all_fields = list(ctx.spec.row_rule(rule.params["form_rule"]).fields)
    earlier = all_fields[: all_fields.index(field)]

    if not earlier:
        return pl.lit(True)
    # The codes without their dots, only for values of a valid form (``_normalised_codes``).
    norm = pl.col(NORMALISED + field)
    repeated = pl.any_horizontal([(norm == pl.col(NORMALISED + e)).fill_null(False) for e in earlier])
    return ~repeated


@register("kva_in_year_list")
def _kva_in_year_list(ctx: CheckContext, rule: RowRule, field: str | None) -> pl.Expr:
    field = field_of(rule, field)
    period_year = Period.parse(ctx.period).year
    period_codes = ctx.reference.kva_codes(period_year)
    if period_codes is None:
        raise SpecError(f"reference data has no kva_{period_year}.csv for period {ctx.period}")
    # Reading 15: the list of the visit's year when the date is real, else of the period's year.
    # A visit year without a supplied list is judged by the period's list.
    year = pl.col(VISIT).dt.year().fill_null(period_year)
    value = pl.col(field)
    listed = member(value, period_codes)
    for y, codes in sorted(ctx.reference.kva.items()):
        if y != period_year:
            listed = pl.when(year == y).then(member(value, codes)).otherwise(listed)
    return ~_form_ok(ctx, rule, field) | listed


@register("group_participants")
def _group_participants(ctx: CheckContext, rule: RowRule, field: str | None) -> pl.Expr:
    field = field_of(rule, field)
    given = pl.col(field).is_not_null()
    is_group = pl.col("kontakttyp").is_in(_codes(ctx, "group_kontakttyp")).fill_null(False)
    in_range = whole_number(pl.col(field)).is_between(rule.params["min"], rule.params["max"]).fill_null(False)
    # For the group types an empty value is R02's; for any other kontakttyp, given is wrong.
    return pl.when(is_group).then(~given | in_range).otherwise(~given)


@register("whole_number")
def _whole_number(ctx: CheckContext, rule: RowRule, field: str | None) -> pl.Expr:
    field = field_of(rule, field)
    # The derived column when there is one: reading the number again was a quarter of the rules'
    # time at 1 M rows (the regex and the string steps per row).
    value = pl.col(WHOLE_NUMBERS[field]) if field in WHOLE_NUMBERS else whole_number(pl.col(field))
    return pl.col(field).is_null() | value.is_between(rule.params["min"], rule.params["max"]).fill_null(False)


@register("fee_matches")
def _fee_matches(ctx: CheckContext, rule: RowRule, field: str | None) -> pl.Expr:
    amount_rule = ctx.spec.row_rule(rule.params["amount_rule"])
    valid_amount = pl.col(AVGIFT).is_between(amount_rule.params["min"], amount_rule.params["max"])
    evaluated = pl.col(FEE).is_not_null() & valid_amount.fill_null(False)
    return ~evaluated | (pl.col(AVGIFT) == pl.col(FEE))


@register("no_double_registration")
def _no_double_registration(ctx: CheckContext, rule: RowRule, field: str | None) -> pl.Expr:
    key = rule.params["key"]
    complete = pl.all_horizontal([pl.col(k).is_not_null() for k in key])
    return ~(repeated(key) & complete)


# --- the schema ----------------------------------------------------------------------------------

STRUCTURAL = {"field_count"}  # R01 is decided by the reader, before the schema runs
# Checks that compare a row with the other rows of the file (R11, W90): judged once over the whole
# file's key columns when the rows are judged in chunks. Each fails only on a row whose key occurs
# on another row too, so a row whose key hashes uniquely passes without being compared.
CROSS_ROW = {"unique", "no_double_registration"}


@dataclass(frozen=True)
class RuleColumn:
    """One (rule, field) pair of the spec: the boolean column that holds, per row, whether it passes."""

    name: str
    code: str
    field: str | None
    passing: pl.Expr
    key: tuple[str, ...] = ()  # a CROSS_ROW check's key: it compares the row with the rows of the same key

    @property
    def cross_row(self) -> bool:
        """Whether the rule compares the row with the file's other rows (CROSS_ROW)."""
        return bool(self.key)


def rule_columns(ctx: CheckContext) -> list[RuleColumn]:
    """Every row rule of the spec (but R01) as a named boolean expression, in spec order.

    Built once per file (``CheckContext.columns``): the file's pieces share them.
    """
    return list(ctx.columns)


_T = TypeVar("_T")


def _rule_columns(ctx: CheckContext) -> list[RuleColumn]:
    out = []
    for rule in ctx.spec.row_rules:
        if rule.check in STRUCTURAL:
            continue
        if rule.check not in CHECKS:
            raise SpecError(f"{ctx.spec.spec_version}: rule {rule.code} names unknown check {rule.check!r}")
        fn = CHECKS[rule.check]
        for f in rule.fields or [None]:
            name = f"{RULE_PREFIX}{rule.code}" + (f"_{f}" if f else "")
            passing = fn(ctx, rule, f).fill_null(True).alias(name)
            key = () if rule.check not in CROSS_ROW else (f,) if f else tuple(rule.params["key"])
            out.append(RuleColumn(name, rule.code, f, passing, key=key))
    return out


def failing(judged: pl.DataFrame, columns: list[RuleColumn]) -> list[RuleColumn]:
    """The rule columns (verdicts in ``judged``) with at least one failing row (one small query)."""
    if judged.height == 0:
        return []
    # Column by column: one query of ~60 expressions cost more than reading the columns.
    return [c for c in columns if not judged.get_column(c.name).all()]


def _as_check(name: str, code: str) -> pa.Check:
    def fn(data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(name))

    return pa.Check(fn, name=code)


def build_schema(spec: FileSpec, columns: list[RuleColumn]) -> pa.DataFrameSchema:
    """The pandera schema of one file: a text column per spec field with the checks of ``columns``; pandera reports their failure cases (column, rule code, row), from which the
    findings are built.

    The checks read the verdict columns of :func:`rule_columns`. Only rules that fail somewhere need a
    check (:func:`failing`): a passing rule has no failure case to report, and pandera's fixed cost
    per check (several polars collects) was two thirds of a 2,500-row file's validation. A rule on
    the whole row (no field, e.g. W90) is checked on its own rule column, so its failure cases are
    single values: as a frame-level check pandera turned every failing row into a Python dict
    (0.9 s of 1.2 s at 1 M rows).
    """
    cached = getattr(_schemas, "cached", None)
    if cached is None:
        # One cache per thread: pandera schema objects are not documented as safe to validate with
        # from several threads at once (the portal and the concurrency tests submit in threads).
        cached = _schemas.cached = functools.lru_cache(maxsize=256)(_schema)
    schema: pa.DataFrameSchema = cached(
        spec.spec_version, tuple(spec.field_names), tuple((c.name, c.code, c.field) for c in columns)
    )
    return schema


_schemas = threading.local()


def _schema(
    version: str, field_names: tuple[str, ...], checks: tuple[tuple[str, str, str | None], ...]
) -> pa.DataFrameSchema:
    per_field: dict[str, list[pa.Check]] = {f: [] for f in field_names}
    row_rules: dict[str, pa.Column] = {}
    for name, code, field in checks:
        if field:
            per_field[field].append(_as_check(name, code))
        else:
            row_rules[name] = pa.Column(pl.Boolean, checks=[_as_check(name, code)])
    # Fields without a failing rule are left out: the reader already gives every spec field as
    # text (F04 refuses a file whose header differs), and each column costs pandera ~1 ms.
    fields = {f: pa.Column(pl.Utf8, nullable=True, checks=c) for f, c in per_field.items() if c}
    return pa.DataFrameSchema(fields | row_rules, strict=False, name=version)
