"""The ersättningsunderlag of one unit and period (ERSATTNINGSMODELL.md sections 3, 4 and 7).

Inputs are accepted rows (as the validators give them), the VGP listing, the unit register row and
a price list; outputs are underlag lines ``(component, quantity, unit price, amount)``. Amounts are
Decimal kronor; each line is rounded half away from zero to öre, and totals are sums of rounded
lines. Lines with quantity 0 and amount 0 are left out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import Enum
from typing import Any

import polars as pl

from filespec import PriceList, Unit, price_list_for
from filespec.calendar import Period
from validators.identifiers import patient_id_parts

ORE = Decimal("0.01")


class Component(str, Enum):
    """The components of an underlag (section 4)."""

    ALDER_KON = "ALDER_KON"
    CNI = "CNI"
    BESOK_EJ_LISTAD = "BESOK_EJ_LISTAD"
    BESOK_UTOMLANS = "BESOK_UTOMLANS"
    KONTAKTPOANG = "KONTAKTPOANG"
    GEOGRAFI = "GEOGRAFI"
    PATIENTAVGIFT = "PATIENTAVGIFT"
    MOMSKOMPENSATION = "MOMSKOMPENSATION"
    RATTELSE = "RATTELSE"

    @property
    def label(self) -> str:
        """The component's Swedish name (the code stays in Parquet, JSON and beside the name)."""
        return COMPONENT_LABELS[self.value]


# The order of definition above is the order in which underlag and workbooks list components.
COMPONENT_LABELS = {
    "ALDER_KON": "Ålders- och könsersättning (listning)",
    "CNI": "Socioekonomisk ersättning (CNI)",
    "BESOK_EJ_LISTAD": "Besök, ej listade patienter (län 14)",
    "BESOK_UTOMLANS": "Besök, utomlänspatienter",
    "KONTAKTPOANG": "Kontaktpoäng",
    "GEOGRAFI": "Geografisk ersättning",
    "PATIENTAVGIFT": "Avdrag patientavgifter",
    "MOMSKOMPENSATION": "Momskompensation (privat driftform)",
    "RATTELSE": "Rättelse av tidigare period",
}


# The per-visit components are paid at one price for läkare and another for every other
# profession, as two lines: the label says which (the line itself carries only its price).
PER_VISIT = ("BESOK_EJ_LISTAD", "BESOK_UTOMLANS")


def line_label(component: str, unit_price: Decimal | str | None, period: str | Period) -> str:
    """A line's Swedish label, with what tells it apart from a line of the same component: the
    profession behind a per-visit price ("läkare" / "övriga yrkeskategorier")."""
    label = COMPONENT_LABELS.get(component, component)
    if component not in PER_VISIT or unit_price is None:
        return label
    prices = price_list_for(period)
    lak, other = prices.besok_ej_listad if component == "BESOK_EJ_LISTAD" else prices.besok_utomlans
    price = Decimal(str(unit_price))
    if lak == other:
        return f"{label}, alla yrkeskategorier"
    if price == lak:
        return f"{label}, läkare"
    return f"{label}, övriga yrkeskategorier" if price == other else label


@dataclass(frozen=True, kw_only=True)
class UnderlagLine:
    """One line of an underlag."""

    period: str
    file_type: str
    unit_hsaid: str
    component: Component
    quantity: Decimal | None
    unit_price: Decimal | None
    amount: Decimal
    corrected_period: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain values (Decimals kept) for frames and workbooks."""
        return {
            "period": self.period,
            "file_type": self.file_type,
            "unit_hsaid": self.unit_hsaid,
            "component": self.component.value,
            "quantity": self.quantity,
            "unit_price": self.unit_price,
            "amount": self.amount,
            "corrected_period": self.corrected_period,
        }


def round_ore(value: Decimal) -> Decimal:
    """Half away from zero to two decimals (Decimal's ROUND_HALF_UP rounds ties away from zero)."""
    return value.quantize(ORE, rounding=ROUND_HALF_UP)


def total(lines: list[UnderlagLine]) -> Decimal:
    """The sum of the (already rounded) line amounts."""
    return sum((line.amount for line in lines), Decimal("0.00"))


class _Lines:
    def __init__(self, period: str, unit: Unit):
        self.period, self.unit = period, unit
        self.lines: list[UnderlagLine] = []

    def add(
        self, component: Component, quantity: Decimal | None, unit_price: Decimal | None, amount: Decimal
    ) -> UnderlagLine | None:
        # Section 4: each line is rounded on its own and the total is the sum of rounded lines, so
        # a unit can add up its underlag by hand and land on the same öre.
        amount = round_ore(amount)
        # A line of nothing at zero kronor says nothing; a line of zero kronor for a quantity
        # (a listing of persons whose weights sum to 0) is kept, since its quantity informs.
        if (quantity is None or quantity == 0) and amount == 0:
            return None
        line = UnderlagLine(
            period=self.period,
            file_type=self.unit.filtyp,
            unit_hsaid=self.unit.hsaid,
            component=component,
            quantity=quantity,
            unit_price=unit_price,
            amount=amount,
        )
        self.lines.append(line)
        return line

    def priced(self, component: Component, quantity: Decimal, unit_price: Decimal) -> UnderlagLine | None:
        return self.add(component, quantity, unit_price, quantity * unit_price)

    def fees(self, accepted: pl.DataFrame | None) -> None:
        if accepted is None or accepted.height == 0:
            return
        # The expected fee, not the fee the file reports: fees are deducted whether or not the
        # patient paid (section 4, [källa]); a row whose fee cannot be computed deducts nothing.
        fees = accepted["forvantad_avgift"].fill_null(0).sum()
        self.add(Component.PATIENTAVGIFT, Decimal(accepted.height), None, -Decimal(int(fees)))

    def moms(self, prices: PriceList, basis: set[Component]) -> None:
        # Only private providers pay VAT on care they buy in; the compensation is on the components
        # that pay for care, never on the fee deduction (section 4).
        if self.unit.driftform != "PRIVAT":
            return
        base = sum((ln.amount for ln in self.lines if ln.component in basis), Decimal("0.00"))
        self.priced(Component.MOMSKOMPENSATION, base, prices.moms_rate)


def listing_points(listing: pl.DataFrame | None, unit_hsaid: str, period: str | Period, prices: PriceList) -> Decimal:
    """Listningspoäng of a unit: the age/sex weights of every person listed there (listing's kon,
    age in whole years on the last day of the period)."""
    if listing is None:
        return Decimal(0)
    listed = listing.filter(pl.col("vardenhet_hsaid") == unit_hsaid)
    if listed.height == 0:
        return Decimal(0)
    return points_of(listing_counts(listed, period), prices)


def points_of(counts: pl.DataFrame, prices: PriceList) -> Decimal:
    """Listningspoäng of the persons counted in ``counts`` (``listing_counts``' columns)."""
    return sum((prices.weight(a, k) * n for a, k, n in counts.select("age", "kon", "len").iter_rows()), Decimal(0))


def listing_counts(listing: pl.DataFrame, period: str | Period) -> pl.DataFrame:
    """The listed persons counted by unit, age and kon (``vardenhet_hsaid``, ``age``, ``kon``,
    ``len``): age in whole years on the last day of the period, kon as the listing gives it.

    One query for every unit of a close: counted unit by unit, building and running the query
    was ~5 ms a unit (a second of the close's 300 units), the counting itself a fraction of it.
    """
    last = Period.parse(period).last_day
    parts = patient_id_parts(pl.col("patient_id"))
    frame = listing.lazy()
    for stage in parts.stages:
        frame = frame.with_columns(stage)
    birth = parts.birth_date

    def md(d: pl.Expr) -> pl.Expr:  # month and day as one number, to compare birthdays
        return d.dt.month().cast(pl.Int32) * 100 + d.dt.day().cast(pl.Int32)

    # Age in whole years on the last day of the period: a year less when the birthday (month and
    # day) is still to come. Integer arithmetic, so 29 February needs no special case here.
    last_md = last.month * 100 + last.day
    age = pl.lit(last.year) - birth.dt.year().cast(pl.Int32) - (pl.lit(last_md) < md(birth)).cast(pl.Int32)
    counts = (
        frame.select("vardenhet_hsaid", age.alias("age"), pl.col("kon"))
        .group_by("vardenhet_hsaid", "age", "kon")
        .len()
        .sort("vardenhet_hsaid", "age", "kon")
        .collect()
    )
    # The listing is the region's own register: an id without a birth date there is a fault of the
    # reference data, not a finding of a unit, and paying capitation on a guessed age would be wrong.
    unknown = counts.filter(pl.col("age").is_null())["vardenhet_hsaid"]
    if unknown.len():
        raise ValueError(f"listing for {unknown[0]} {period} has patient ids without a valid birth date")
    return counts


def vgp_visits(
    accepted: pl.DataFrame, listing: pl.DataFrame | None, unit_hsaid: str, prices: PriceList
) -> pl.DataFrame:
    """Per accepted VGP row: the visit component it is paid under (or null) and its price."""
    listed_here = (
        listing.filter(pl.col("vardenhet_hsaid") == unit_hsaid)["patient_id"]
        if listing is not None
        else pl.Series([], dtype=pl.Utf8)
    )
    paid = pl.col("kontakttyp").is_in(list(prices.besok_kontakttyper))
    home = pl.col("folkbokforing_lan") == prices.hemlan
    lak = pl.col("yrkeskategori") == "LAK"
    listed = pl.col("patient_id").is_in(listed_here.implode())
    # Outside the county comes first: a person from another län is paid as utomläns even when
    # listed here (the listing pays capitation; the visit is billed to their home region).
    component = (
        pl.when(paid & ~home)
        .then(pl.lit(Component.BESOK_UTOMLANS.value))
        .when(paid & home & ~listed)
        .then(pl.lit(Component.BESOK_EJ_LISTAD.value))
    )
    price = (
        pl.when(component == Component.BESOK_UTOMLANS.value)
        .then(pl.when(lak).then(pl.lit(str(prices.besok_utomlans[0]))).otherwise(pl.lit(str(prices.besok_utomlans[1]))))
        .when(component == Component.BESOK_EJ_LISTAD.value)
        .then(
            pl.when(lak).then(pl.lit(str(prices.besok_ej_listad[0]))).otherwise(pl.lit(str(prices.besok_ej_listad[1])))
        )
    )
    return accepted.with_columns(listed.alias("listad"), component.alias("komponent"), price.alias("a_pris"))


def vgp_underlag(
    *,
    unit: Unit,
    period: str,
    accepted: pl.DataFrame | None,
    listing: pl.DataFrame | None,
    prices: PriceList,
    listed: pl.DataFrame | None = None,
) -> list[UnderlagLine]:
    """The VGP underlag: capitation (ALDER_KON, CNI), visit fees, patient fees, VAT compensation.

    ``accepted`` is None for a unit without a gällande file (capitation is paid all the same).
    ``listed``: the unit's rows of ``listing_counts`` when the caller counted every unit at once.
    """
    out = _Lines(period, unit)
    points = listing_points(listing, unit.hsaid, period, prices) if listed is None else points_of(listed, prices)
    out.priced(Component.ALDER_KON, points, prices.kr_per_listningspoang)
    if unit.cni > prices.vgp_cni_threshold:
        out.priced(Component.CNI, points, prices.vgp_cni_kr)
    if accepted is not None and accepted.height:
        visits = vgp_visits(accepted, listing, unit.hsaid, prices)
        # Visits per component and LAK or not, counted in one query (a filter each cost more).
        counted = visits.group_by("komponent", (pl.col("yrkeskategori") == "LAK").fill_null(False).alias("lak")).len()
        n = {(k, bool(lak)): c for k, lak, c in counted.iter_rows()}
        for component, (p_lak, p_other) in (
            (Component.BESOK_EJ_LISTAD, prices.besok_ej_listad),
            (Component.BESOK_UTOMLANS, prices.besok_utomlans),
        ):
            out.priced(component, Decimal(n.get((component.value, True), 0)), p_lak)
            out.priced(component, Decimal(n.get((component.value, False), 0)), p_other)
    out.fees(accepted)
    out.moms(prices, {Component.ALDER_KON, Component.CNI, Component.BESOK_EJ_LISTAD, Component.BESOK_UTOMLANS})
    return out.lines


def first_visits(current: pl.DataFrame, history: pl.DataFrame | None, days: int) -> pl.Series:
    """Per row of ``current``: True when it is the patient's first visit at the unit (reading 3).

    Earlier visits are those of ``history`` (accepted rows of earlier periods) and of ``current``
    with a date in [date − days, date − 1], or the same date and a smaller ``besok_id``.
    """
    cols = ["patient_id", "besoksdatum_dat", "besok_id"]
    cur = current.select(cols).with_row_index("__i")
    parts = [cur]
    if history is not None and history.height:
        parts.append(history.select(cols).with_columns(pl.lit(None, pl.UInt32).alias("__i")).select(cur.columns))
    # Sorted by patient, date and besok_id, each visit's predecessor is the patient's previous
    # visit; the same date with a smaller besok_id counts as earlier (reading 3), which the sort
    # gives without a special case.
    visits = pl.concat(parts).sort(["patient_id", "besoksdatum_dat", "besok_id"])
    prev = pl.col("besoksdatum_dat").shift(1).over("patient_id")
    flagged = visits.with_columns(
        (prev.is_null() | (prev < pl.col("besoksdatum_dat") - dt.timedelta(days=days))).alias("first")
    )
    return flagged.filter(pl.col("__i").is_not_null()).sort("__i")["first"]


def reh_visits(accepted: pl.DataFrame, history: pl.DataFrame | None, prices: PriceList) -> pl.DataFrame:
    """Per accepted REH row: base points, the add-ons and the row's contact points (as text)."""
    first = first_visits(accepted, history, prices.forstabesok_dagar)
    # Points in hundredths (integers): a sum of a million decimal points in floats would drift, and
    # polars' decimal products round to the larger scale.
    hundredths = {f"{kt}|{yrk}": int(p * 100) for kt, row in prices.kontaktpoang.items() for yrk, p in row.items()}
    addon = int(prices.tillagg * 100)
    key = pl.concat_str([pl.col("kontakttyp"), pl.lit("|"), pl.col("yrkeskategori")])
    with_addons = pl.col("kontakttyp").is_in(list(prices.tillagg_kontakttyper))
    tolk = with_addons & (pl.col("tolk") == "J")
    forsta = with_addons & pl.col("forstabesok")
    frame = accepted.with_columns(first.alias("forstabesok")).with_columns(
        key.replace_strict(hundredths, return_dtype=pl.Int64).alias("__bas"),
        tolk.alias("tolktillagg"),
        forsta.alias("forstabesokstillagg"),
    )
    total_h = (
        pl.col("__bas") + (pl.col("tolktillagg").cast(pl.Int64) + pl.col("forstabesokstillagg").cast(pl.Int64)) * addon
    )
    return frame.with_columns(total_h.alias("__poang_h"))


def contact_points(accepted: pl.DataFrame, history: pl.DataFrame | None, prices: PriceList) -> Decimal:
    """Sum of contact points of accepted REH rows, with the tolk and first-visit add-ons."""
    if accepted.height == 0:
        return Decimal(0)
    return Decimal(int(reh_visits(accepted, history, prices)["__poang_h"].sum())) / 100


def reh_underlag(
    *, unit: Unit, period: str, accepted: pl.DataFrame | None, history: pl.DataFrame | None, prices: PriceList
) -> list[UnderlagLine]:
    """The REH underlag: contact points, CNI, geography, patient fees, VAT compensation.

    ``history`` holds the unit's accepted rows of earlier periods (for the first-visit add-on).
    """
    out = _Lines(period, unit)
    if accepted is not None and accepted.height:
        out.priced(Component.KONTAKTPOANG, contact_points(accepted, history, prices), prices.kr_per_kontaktpoang)
        if unit.cni > prices.reh_cni_threshold:
            patients = Decimal(accepted["patient_id"].n_unique())
            out.priced(Component.CNI, patients * (unit.cni - prices.reh_cni_threshold), prices.reh_cni_kr)
    geo = unit.geografi_poang
    if geo is not None and Decimal(geo) > prices.geografi_threshold:
        out.priced(Component.GEOGRAFI, Decimal(geo), prices.geografi_kr)
    out.fees(accepted)
    out.moms(prices, {Component.KONTAKTPOANG, Component.CNI, Component.GEOGRAFI})
    return out.lines


def underlag_for(
    *,
    unit: Unit,
    period: str | Period,
    accepted: pl.DataFrame | None,
    listing: pl.DataFrame | None,
    history: pl.DataFrame | None,
    prices: PriceList,
    listed: pl.DataFrame | None = None,
) -> list[UnderlagLine]:
    """The underlag of a unit of either filtyp (``listed``: see ``vgp_underlag``)."""
    period = str(period)  # as the lines carry it
    if unit.filtyp == "VGP":
        return vgp_underlag(unit=unit, period=period, accepted=accepted, listing=listing, prices=prices, listed=listed)
    return reh_underlag(unit=unit, period=period, accepted=accepted, history=history, prices=prices)


def rattelse_line(*, unit: Unit, period: str | Period, corrected_period: str | Period, amount: Decimal) -> UnderlagLine:
    """The correction line of an earlier period, settled in ``period``'s underlag."""
    return UnderlagLine(
        period=str(period),
        file_type=unit.filtyp,
        unit_hsaid=unit.hsaid,
        component=Component.RATTELSE,
        quantity=None,
        unit_price=None,
        amount=round_ore(amount),
        corrected_period=str(corrected_period),
    )
