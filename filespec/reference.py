"""Loaders for the reference data the region supplies (ERSATTNINGSMODELL.md section 2).

- ``enhetsregister.csv``: the unit register (KIV extract) — which units are active in which filtyp.
- ``kva_YYYY.csv``: the KVÅ codes valid for visits in year YYYY.

Every loaded file is identified by its SHA-256 so outputs can name exactly what they used.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from filespec.calendar import Period
from filespec.errors import VardfilError

if TYPE_CHECKING:  # polars is loaded when a listing is read, not when the register is
    import polars as pl


class ReferenceDataError(VardfilError):
    """The reference data folder is missing a file or a file is malformed (not worth a retry: a
    person has to fix the folder)."""

    def __init__(self, message: str, *, path: Path | None = None):
        super().__init__(message)
        self.path = path


@dataclass(frozen=True, kw_only=True)
class Unit:
    """One row of the unit register."""

    hsaid: str
    namn: str
    filtyp: str
    driftform: str  # OFFENTLIG | PRIVAT
    giltig_from: dt.date
    giltig_tom: dt.date | None
    cni: Decimal
    geografi_poang: int | None

    def active_in(self, period: str | Period) -> bool:
        """Active in period P: giltig_from ≤ last day of P and (no giltig_tom or ≥ first day)."""
        first, last = Period.parse(period).bounds
        return self.giltig_from <= last and (self.giltig_tom is None or self.giltig_tom >= first)


def _read_rows(path: Path, columns: list[str]) -> list[dict[str, str]]:
    if not path.is_file():
        raise ReferenceDataError(f"reference file missing: {path.name}", path=path)
    text = path.read_bytes().decode("utf-8-sig")
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=";")
    if reader.fieldnames is None or [c.strip() for c in reader.fieldnames] != columns:
        raise ReferenceDataError(f"{path.name}: header must be {';'.join(columns)}", path=path)
    return [{k.strip(): (v or "").strip() for k, v in row.items()} for row in reader]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True, kw_only=True)
class Reference:
    """One folder of reference data, loaded. Immutable; cheap to share between validations."""

    root: Path
    units: dict[str, Unit]
    kva: dict[int, frozenset[str]]
    hashes: dict[str, str]  # file name -> SHA-256 of every file used

    def unit_active(self, hsaid: str, filtyp: str, period: str | Period) -> bool:
        """F07: the HSA-id is an active unit of that filtyp during the period."""
        u = self.units.get(hsaid)
        return u is not None and u.filtyp == filtyp and u.active_in(period)

    def kva_codes(self, year: int) -> frozenset[str] | None:
        """The KVÅ codes valid for visits in ``year``, or None when that list is not supplied."""
        return self.kva.get(year)


_UNIT_COLUMNS = ["hsaid", "namn", "filtyp", "driftform", "giltig_from", "giltig_tom", "cni", "geografi_poang"]


def load_units(path: Path) -> dict[str, Unit]:
    """Parse ``enhetsregister.csv``."""
    units = {}
    for n, r in enumerate(_read_rows(path, _UNIT_COLUMNS), start=2):
        try:
            units[r["hsaid"]] = Unit(
                hsaid=r["hsaid"],
                namn=r["namn"],
                filtyp=r["filtyp"],
                driftform=r["driftform"],
                giltig_from=dt.date.fromisoformat(r["giltig_from"]),
                giltig_tom=dt.date.fromisoformat(r["giltig_tom"]) if r["giltig_tom"] else None,
                cni=Decimal(r["cni"] or "0"),
                geografi_poang=int(r["geografi_poang"]) if r["geografi_poang"] else None,
            )
        except (ValueError, ArithmeticError) as e:
            raise ReferenceDataError(f"{path.name} line {n}: {e}", path=path) from e
        if units[r["hsaid"]].filtyp not in ("VGP", "REH"):
            raise ReferenceDataError(f"{path.name} line {n}: unknown filtyp", path=path)
    return units


def load_kva(path: Path) -> frozenset[str]:
    """Parse one ``kva_YYYY.csv``: the set of codes."""
    return frozenset(r["kod"] for r in _read_rows(path, ["kod", "text"]) if r["kod"])


LISTING_COLUMNS = ["patient_id", "kon", "vardenhet_hsaid"]


def listing_path(root: Path | str, period: str | Period) -> Path:
    """Where the VGP listing of a period lives: ``listning_YYYYMM.csv``."""
    return Path(root) / f"listning_{Period.parse(period).compact}.csv"


def load_listing(root: Path | str, period: str | Period) -> pl.DataFrame | None:
    """The VGP listing on the last day of ``period`` as a polars frame of strings (or None if absent)."""
    import polars as pl

    path = listing_path(root, period)
    if not path.is_file():
        return None
    frame = pl.read_csv(path, separator=";", infer_schema=False)
    if frame.columns != LISTING_COLUMNS:
        raise ReferenceDataError(f"{path.name}: header must be {';'.join(LISTING_COLUMNS)}", path=path)
    return frame.select(pl.all().str.strip_chars(" "))


def load_reference(root: Path | str) -> Reference:
    """Load a reference folder: ``enhetsregister.csv`` and every ``kva_YYYY.csv`` in it."""
    root = Path(root)
    if not root.is_dir():
        raise ReferenceDataError(f"reference folder not found: {root}", path=root)
    units_path = root / "enhetsregister.csv"
    units = load_units(units_path)
    kva, hashes = {}, {units_path.name: _sha256(units_path)}
    for p in sorted(root.glob("kva_*.csv")):
        m = re.fullmatch(r"kva_(\d{4})\.csv", p.name)
        if m:
            kva[int(m.group(1))] = load_kva(p)
            hashes[p.name] = _sha256(p)
    return Reference(root=root, units=units, kva=kva, hashes=hashes)
