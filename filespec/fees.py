"""The patient-fee table (FILSPECIFIKATION.md section 7) as versioned data."""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from filespec.calendar import Period
from filespec.versions import load_all, valid_for

FEE_DIR = Path(__file__).parent / "fees"


@dataclass(frozen=True, kw_only=True)
class FeeTable:
    """Expected patient fee by filtyp, kontakttyp and profession group."""

    version: str
    valid_from: str  # "YYYY-MM-DD"
    free_to_age: int
    free_from_age: int
    lakare_och_rehab: frozenset[str]
    # file_type -> kontakttyp -> (läkare och rehab, övrig personal)
    fees: dict[str, dict[str, tuple[int, int]]]
    sha256: str

    def fee(self, file_type: str, kontakttyp: str, yrkeskategori: str) -> int:
        """The fee for a paying patient (no age or frikort exemption applied)."""
        pair = self.fees[file_type][kontakttyp]
        return pair[0] if yrkeskategori in self.lakare_och_rehab else pair[1]


def _load(path: Path) -> FeeTable:
    raw_bytes = path.read_bytes()
    raw = tomllib.loads(raw_bytes.decode("utf-8"))
    fees = {ft: {k: (int(v[0]), int(v[1])) for k, v in raw[ft].items()} for ft in ("VGP", "REH")}
    return FeeTable(
        version=raw["version"],
        valid_from=raw["valid_from"],
        free_to_age=int(raw["free_to_age"]),
        free_from_age=int(raw["free_from_age"]),
        lakare_och_rehab=frozenset(raw["lakare_och_rehab"]),
        fees=fees,
        sha256=hashlib.sha256(raw_bytes).hexdigest(),
    )


@cache
def all_fee_tables() -> tuple[FeeTable, ...]:
    """Every fee table shipped, oldest first."""
    return load_all(FEE_DIR, _load)


def fee_table_for(period: str | Period) -> FeeTable:
    """The patient-fee table valid on the first day of ``period`` ("YYYY-MM")."""
    return valid_for(all_fee_tables(), period, "patient-fee table")
