"""Price lists (ERSATTNINGSMODELL.md section 3) as versioned data, amounts as Decimal."""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path

from filespec.calendar import Period
from filespec.versions import load_all, valid_for

PRICE_DIR = Path(__file__).parent / "prices"


@dataclass(frozen=True, kw_only=True)
class PriceList:
    """One price list version."""

    version: str
    valid_from: str  # "YYYY-MM-DD"
    sha256: str
    # VGP
    kr_per_listningspoang: Decimal
    vgp_cni_threshold: Decimal
    vgp_cni_kr: Decimal
    besok_ej_listad: tuple[Decimal, Decimal]  # (LAK, other)
    besok_utomlans: tuple[Decimal, Decimal]
    besok_kontakttyper: frozenset[str]
    hemlan: str
    # REH
    kr_per_kontaktpoang: Decimal
    reh_cni_threshold: Decimal
    reh_cni_kr: Decimal
    geografi_threshold: Decimal
    geografi_kr: Decimal
    tillagg: Decimal
    tillagg_kontakttyper: frozenset[str]
    forstabesok_dagar: int
    kontaktpoang: dict[str, dict[str, Decimal]]
    # both
    moms_rate: Decimal
    alder_kon: tuple[tuple[int, Decimal, Decimal], ...]  # (lowest age, K, M)

    def weight(self, age: int, kon: str) -> Decimal:
        """Listningspoäng of one listed person; ``X`` takes the mean of K and M."""
        band = self.alder_kon[0]
        for b in self.alder_kon:
            if age >= b[0]:
                band = b
        if kon == "K":
            return band[1]
        if kon == "M":
            return band[2]
        return (band[1] + band[2]) / 2


def _d(v: object) -> Decimal:
    return Decimal(str(v))


def _pair(values: list[object]) -> tuple[Decimal, Decimal]:
    # [price, per-visit part of the patient fee]; anything else is a broken price list.
    a, b = values
    return _d(a), _d(b)


def _load(path: Path) -> PriceList:
    raw_bytes = path.read_bytes()
    raw = tomllib.loads(raw_bytes.decode("utf-8"))
    vgp, reh = raw["vgp"], raw["reh"]
    return PriceList(
        version=raw["version"],
        valid_from=raw["valid_from"],
        sha256=hashlib.sha256(raw_bytes).hexdigest(),
        kr_per_listningspoang=_d(vgp["kr_per_listningspoang"]),
        vgp_cni_threshold=_d(vgp["cni_threshold"]),
        vgp_cni_kr=_d(vgp["cni_kr_per_poang"]),
        besok_ej_listad=_pair(vgp["besok_ej_listad"]),
        besok_utomlans=_pair(vgp["besok_utomlans"]),
        besok_kontakttyper=frozenset(vgp["besok_kontakttyper"]),
        hemlan=vgp["hemlan"],
        kr_per_kontaktpoang=_d(reh["kr_per_kontaktpoang"]),
        reh_cni_threshold=_d(reh["cni_threshold"]),
        reh_cni_kr=_d(reh["cni_kr_per_poang"]),
        geografi_threshold=_d(reh["geografi_threshold"]),
        geografi_kr=_d(reh["geografi_kr_per_poang"]),
        tillagg=_d(reh["tillagg"]),
        tillagg_kontakttyper=frozenset(reh["tillagg_kontakttyper"]),
        forstabesok_dagar=int(reh["forstabesok_dagar"]),
        kontaktpoang={k: {p: _d(v) for p, v in row.items()} for k, row in reh["kontaktpoang"].items()},
        moms_rate=_d(raw["moms"]["rate"]),
        alder_kon=tuple((int(b[0]), _d(b[1]), _d(b[2])) for b in raw["alder_kon"]["bands"]),
    )


@cache
def all_price_lists() -> tuple[PriceList, ...]:
    """Every price list shipped, oldest first."""
    return load_all(PRICE_DIR, _load)


def price_list_for(period: str | Period) -> PriceList:
    """The price list valid on the first day of ``period`` ("YYYY-MM")."""
    return valid_for(all_price_lists(), period, "price list")
