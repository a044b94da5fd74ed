"""What the close and the publishers read of a period: its active units, a file's accepted
rows, a REH unit's history for the first-visit rule, the VGP listing split by unit. Below both
``vardfil.month`` (the close, the views) and the publishers (workbooks): read here once, for each.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import polars as pl

from filespec import ReferenceDataError, Unit, listing_path, load_listing, price_list_for
from filespec.calendar import Period
from reports import listing_counts
from vardfil.app import App
from vardfil.ledger import ReceivedFile


def active_units(app: App, period: Period) -> list[Unit]:
    """The units active in a period, in the order every output lists them (filtyp, HSA-id)."""
    return sorted((u for u in app.reference.units.values() if u.active_in(period)), key=lambda u: (u.filtyp, u.hsaid))


def read_accepted(app: App, f: ReceivedFile | None) -> pl.DataFrame | None:
    """A file's accepted rows (None: no file; an empty frame: a file with none accepted)."""
    if f is None:
        return None
    if f.accepted_path is None:
        return pl.DataFrame()
    frame: pl.DataFrame = pl.read_parquet(app.store.resolve(f.accepted_path))
    return frame


def history_since(period: Period) -> Period:
    """The earliest period a visit of ``period`` can have an earlier visit in for the REH
    first-visit add-on: its window reaches ``forstabesok_dagar`` days back from the period's first
    day, and an accepted row's date lies in its own file's period (R31 rejects any other). Files
    of older periods cannot change the add-on: they are not read (a close in the fifth year would
    otherwise read every REH unit's whole history, 60 files each)."""
    p = Period.parse(period)  # as is, or a caller's text
    return Period.of_date(p.first_day - dt.timedelta(days=price_list_for(p).forstabesok_dagar))


def reh_history(
    app: App, unit: Unit, period: Period, at: dt.datetime, *, files: Iterable[ReceivedFile] | None = None
) -> pl.DataFrame | None:
    """Accepted rows of the unit's earlier periods, each period's gällande file as of T (the REH
    first-visit rule looks back across periods, as far as :func:`history_since`). ``files``:
    those gällande files when the caller has them already (the close asks once for every unit)."""
    if files is None:
        files = app.ledger.files.gallande_files(
            before=period, since=history_since(period), unit_hsaid=unit.hsaid, file_type=unit.filtyp, as_of=at
        ).values()
    frames = []
    for f in files:
        acc = read_accepted(app, f)
        if acc is not None and acc.height:
            frames.append(acc.select("patient_id", "besoksdatum_dat", "besok_id"))
    return pl.concat(frames) if frames else None


def required_listing(app: App, period: Period, units: list[Unit]) -> pl.DataFrame | None:
    """The VGP listing of a period; a close with VGP units cannot go on without it."""
    listing = load_listing(app.reference.root, period)
    if listing is None and any(u.filtyp == "VGP" for u in units):
        path = listing_path(app.reference.root, period)
        raise ReferenceDataError(f"the VGP listing {path.name} is missing", path=path)
    return listing


class UnitListings:
    """The listing split by unit once, so each unit's rules read only its own listed persons (a
    filter of the whole listing per unit made the close O(units × listing): 69 s at 10×).
    With ``period``, the listed persons are also counted by unit, age and kon once
    (``reports.listing_counts``), for every unit's listningspoäng."""

    def __init__(self, listing: pl.DataFrame | None, period: Period | None = None):
        self.listing = listing
        self.parts = (
            {}
            if listing is None
            else {k[0]: v for k, v in listing.partition_by("vardenhet_hsaid", as_dict=True).items()}
        )
        counts = listing_counts(listing, period) if listing is not None and period is not None else None
        self.counts = (
            {} if counts is None else {k[0]: v for k, v in counts.partition_by("vardenhet_hsaid", as_dict=True).items()}
        )
        self._no_counts = counts.clear() if counts is not None else None

    def of(self, unit_hsaid: str) -> pl.DataFrame | None:
        """The listed persons of one unit (an empty frame when none; None without a listing)."""
        if self.listing is None:
            return None
        return self.parts.get(unit_hsaid, self.listing.clear())

    def counted(self, unit_hsaid: str) -> pl.DataFrame | None:
        """The unit's rows of ``listing_counts`` (None unless counted: without a listing or period)."""
        if self._no_counts is None:
            return None
        return self.counts.get(unit_hsaid, self._no_counts)
