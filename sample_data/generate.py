"""Deterministic generator of realistic visit files and reference data (seeded).

Used for the committed sample month (``python -m sample_data.generate``), for tests that need a
file of a given shape, and for the benchmarks (a 1,000,000-row VGP file in a few seconds: columns
are drawn with numpy, never row by row).

The expected patient fee of clean rows is computed here from the same published table the
validator uses, but by independent code, so a wrong fee rule in the validator shows up as W81.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from filespec import FileSpec, fee_table_for, listing_path, spec_for
from filespec.calendar import Period, is_vardag
from validators.identifiers import make_personnummer, make_reservnummer

HERE = Path(__file__).parent
# The committed sample month: period 2026-10 (window 2026-11-01 – 2026-11-04 15:00).
SAMPLE_PERIOD = "2026-10"


def _spec(file_type: str) -> FileSpec:
    spec = spec_for(file_type, SAMPLE_PERIOD)
    assert spec is not None  # the shipped specs start with 2025-01
    return spec


KVA_SOURCE = HERE / "reference"

# The field order of the spec the sample month is reported under: the spec is the one place that says it.
VGP_FIELDS = list(_spec("VGP").field_names)
REH_FIELDS = list(_spec("REH").field_names)

DIAGNOSES = [
    "J06.9",
    "M54.5",
    "I10",
    "E11.9",
    "F32.1",
    "F43.2",
    "J45.9",
    "M25.5",
    "N39.0",
    "R51.9",
    "K52.9",
    "L30.9",
    "H10.9",
    "I48.9",
    "M79.6",
    "G43.9",
    "F41.1",
    "S83.5",
    "M75.1",
    "G30.1",
]
REH_DIAGNOSES = ["M54.5", "M25.5", "S83.5", "M75.1", "M79.6", "G30.1", "I63.9", "M19.0", "R26.8", "F84.0"]
LAN = ["14"] * 12 + ["13", "07", "01", "99"]
VGP_PROF = ["LAK", "LAK", "LAK", "SSK", "DSK", "USK", "PSY", "KUR", "FT", "BM"]
VGP_KONTAKT = ["M", "M", "M", "M", "T", "T", "V", "H", "S", "G"]
REH_PROF = ["FT", "FT", "FT", "AT", "AT", "LOG", "DIET"]
REH_KONTAKT = ["MOTT", "MOTT", "MOTT", "MOTT", "DIGV", "HEM", "TEAM", "TEL", "GBEH", "GUTB", "HMC"]
GROUP = {"G", "GBEH", "GUTB", "GTEAM"}


@dataclass(frozen=True)
class SampleUnit:
    """A unit of the sample register."""

    hsaid: str
    namn: str
    filtyp: str
    driftform: str
    giltig_from: str
    giltig_tom: str
    cni: str
    geografi_poang: str


SAMPLE_UNITS = [
    SampleUnit("SE2321000131-E000000001001", "Vårdcentralen Ekbacken", "VGP", "PRIVAT", "2025-01-01", "", "2.750", ""),
    SampleUnit("SE2321000131-E000000001002", "Vårdcentralen Åsen", "VGP", "OFFENTLIG", "2025-01-01", "", "1.800", ""),
    SampleUnit("SE2321000131-E000000001003", "Hälsocentralen Kajen", "VGP", "PRIVAT", "2025-06-01", "", "2.300", ""),
    SampleUnit("SE2321000131-E000000002001", "Rehab Strandvägen", "REH", "PRIVAT", "2025-01-01", "", "3.200", "11"),
    SampleUnit("SE2321000131-E000000002002", "Fysioterapin Lönnen", "REH", "OFFENTLIG", "2025-01-01", "", "2.000", "6"),
    SampleUnit(
        "SE2321000131-E000000002003", "Arbetsterapin Torget", "REH", "PRIVAT", "2025-01-01", "2026-08-31", "3.500", "10"
    ),
]


class PatientPool:
    """A fixed population: ids, sex, birth dates and county, drawn once from the seed."""

    def __init__(self, rng: np.random.Generator, size: int):
        start, end = dt.date(1925, 1, 1).toordinal(), dt.date(2025, 12, 31).toordinal()
        births = rng.integers(start, end, size)
        kinds = rng.random(size)
        ids, sexes = [], []
        for i in range(size):
            birth = dt.date.fromordinal(int(births[i]))
            number = int(rng.integers(1, 999))
            if kinds[i] < 0.01:
                letter = "KM"[number % 2]
                ids.append(make_reservnummer(birth, letter, number % 100))
                sexes.append(letter)
            else:
                ids.append(make_personnummer(birth, number, samordning=kinds[i] < 0.03))
                sexes.append("M" if number % 2 else "K")  # parity of the birth number's last digit
        self.ids = np.array(ids)
        self.sex = np.array(sexes)
        self.birth = births
        self.lan = rng.choice(LAN, size)


def _ymd(ordinals: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Year, month, day and ISO text of proleptic ordinals, vectorised."""
    days = np.datetime64("0001-01-01") + (np.asarray(ordinals) - 1).astype("timedelta64[D]")
    months = days.astype("datetime64[M]")
    year = days.astype("datetime64[Y]").astype(int) + 1970
    month = months.astype(int) % 12 + 1
    day = (days - months).astype(int) + 1
    return year, month, day, days.astype(str)


def _age(birth_ord: np.ndarray, visit_ord: np.ndarray) -> np.ndarray:
    by, bm, bd, _ = _ymd(birth_ord)
    vy, vm, vd, _ = _ymd(visit_ord)
    return vy - by - ((vm * 100 + vd) < (bm * 100 + bd))


def _fees(file_type: str, period: str, kontakt, prof, age, frikort) -> np.ndarray:
    table = fee_table_for(period)
    pairs = table.fees[file_type]
    lak = np.array([p in table.lakare_och_rehab for p in prof])
    base = np.array([pairs[k][0] for k in kontakt])
    other = np.array([pairs[k][1] for k in kontakt])
    fee = np.where(lak, base, other)
    free = (frikort == "J") | (age <= table.free_to_age) | (age >= table.free_from_age)
    return np.where(free, 0, fee)


def generate_visits(
    *,
    file_type: str,
    hsaid: str,
    period: str,
    rows: int,
    seed: int,
    kva_codes: list[str],
    pool: PatientPool | None = None,
    id_prefix: str = "B",
) -> dict[str, np.ndarray]:
    """Clean visit rows (columns of strings) for one unit, filtyp and period."""
    rng = np.random.default_rng(seed)
    # About three visits per patient in the month, as in the region's files.
    pool = pool or PatientPool(np.random.default_rng(seed + 1), max(200, min(rows // 3, 400_000)))
    first, last = Period.parse(period).bounds
    who = rng.integers(0, len(pool.ids), rows)
    visit = rng.integers(first.toordinal(), last.toordinal() + 1, rows)
    # A patient born after the visit date would be R32: move such visits to the last day.
    visit = np.maximum(visit, np.minimum(pool.birth[who], last.toordinal()))
    birth = pool.birth[who]
    is_vgp = file_type == "VGP"
    prof = rng.choice(VGP_PROF if is_vgp else REH_PROF, rows)
    kontakt = rng.choice(VGP_KONTAKT if is_vgp else REH_KONTAKT, rows)
    if not is_vgp:
        kontakt = np.where((kontakt == "MOTT") & (prof == "AT") & (rng.random(rows) < 0.3), "MKORT", kontakt)
    frikort = np.where(rng.random(rows) < 0.08, "J", "N")
    age = _age(birth, visit)
    cols: dict[str, np.ndarray] = {}
    cols["besok_id"] = np.char.add(
        f"{id_prefix}{Period.parse(period).compact[2:]}-", np.char.zfill(np.arange(1, rows + 1).astype(str), 6)
    )
    cols["vardenhet_hsaid"] = np.full(rows, hsaid)
    cols["patient_id"] = pool.ids[who]
    cols["kon"] = pool.sex[who]
    cols["folkbokforing_lan"] = pool.lan[who]
    cols["besoksdatum"] = _ymd(visit)[3]
    cols["yrkeskategori"] = prof
    cols["kontakttyp"] = kontakt
    cols["besokstyp"] = rng.choice(["N", "A", "A"], rows)
    diag = rng.choice(DIAGNOSES if is_vgp else REH_DIAGNOSES, rows)
    diag2 = rng.choice(DIAGNOSES if is_vgp else REH_DIAGNOSES, rows)
    empty = np.full(rows, "")
    if is_vgp:
        cols["akut"] = np.where(rng.random(rows) < 0.1, "J", "N")
        cols["diagnos_1"] = np.where((prof == "LAK") | (rng.random(rows) < 0.3), diag, "")
        cols["diagnos_2"] = np.where((cols["diagnos_1"] != "") & (diag2 != diag) & (rng.random(rows) < 0.2), diag2, "")
        for n in (3, 4, 5):
            cols[f"diagnos_{n}"] = empty
        cols["kva_1"] = np.where(rng.random(rows) < 0.3, rng.choice(kva_codes, rows), "")
    else:
        cols["diagnos_1"] = np.where(kontakt == "TEL", "", diag)
        cols["diagnos_2"] = np.where((kontakt != "TEL") & (diag2 != diag) & (rng.random(rows) < 0.2), diag2, "")
        cols["diagnos_3"] = empty
        cols["kva_1"] = rng.choice(kva_codes, rows)
    kva2 = rng.choice(kva_codes, rows)
    cols["kva_2"] = np.where((cols["kva_1"] != "") & (rng.random(rows) < 0.15), kva2, "")
    for n in (3, 4, 5, 6):
        cols[f"kva_{n}"] = empty
    if not is_vgp:
        cols["antal_deltagare"] = np.where(np.isin(kontakt, list(GROUP)), rng.integers(2, 12, rows).astype(str), "")
    cols["tolk"] = np.where(rng.random(rows) < 0.05, "J", "N")
    cols["frikort"] = frikort
    cols["patientavgift"] = _fees(file_type, period, kontakt, prof, age, frikort).astype(str)
    fields = VGP_FIELDS if is_vgp else REH_FIELDS
    return {f: cols[f] for f in fields}


# Typical export defects: (rule it should trigger, column, broken value).
DEFECTS = [
    ("R02", "patientavgift", ""),
    ("R10", "besok_id", "B 12/34"),
    ("R20", "patient_id", "19660509-391"),
    ("R21", "patient_id", None),  # a valid id with its last digit changed
    ("R22", "patient_id", "198502300014"),
    ("R23", "kon", "Q"),
    ("R25", "folkbokforing_lan", "15"),
    ("R30", "besoksdatum", "2026-02-30"),
    ("R41", "kontakttyp", "X"),
    ("R43", "tolk", "j"),
    ("R50", "diagnos_1", "J6.9"),
    ("R60", "kva_1", "QV-01"),
    ("R61", "kva_1", "QZ999"),
    ("R80", "patientavgift", "1200"),
]


def add_defects(cols: dict[str, np.ndarray], *, count: int, seed: int) -> list[tuple[int, str]]:
    """Break ``count`` random rows with the typical defects; returns (row index, rule) planted."""
    rng = np.random.default_rng(seed)
    n = len(cols["besok_id"])
    rows = rng.choice(n, size=min(count, n), replace=False)
    planted = []
    for i, row in enumerate(rows):
        rule, column, value = DEFECTS[i % len(DEFECTS)]
        if column not in cols:
            continue
        cols[column] = cols[column].astype(object)
        if value is None:
            pid = str(cols[column][row])
            value = pid[:-1] + str((int(pid[-1]) + 1) % 10)
        cols[column][row] = value
        planted.append((int(row), rule))
    return planted


def to_csv(cols: dict[str, np.ndarray], *, crlf: bool = False) -> bytes:
    """The columns as a spec file: header, ``;``, UTF-8, one line per row."""
    nl = "\r\n" if crlf else "\n"
    names = list(cols)
    lines = [";".join(names)]
    table = np.stack([np.asarray(cols[c]).astype(str) for c in names], axis=1)
    lines.extend(";".join(r) for r in table.tolist())
    return (nl.join(lines) + nl).encode("utf-8")


def kva_list(year: int, reference: Path = KVA_SOURCE) -> list[str]:
    """Codes of the sample KVÅ list of a year."""
    text = (reference / f"kva_{year}.csv").read_text(encoding="utf-8").splitlines()[1:]
    return [line.split(";")[0] for line in text if line]


def write_register(path: Path, units: list[SampleUnit] = SAMPLE_UNITS) -> None:
    """Write an ``enhetsregister.csv``."""
    head = "hsaid;namn;filtyp;driftform;giltig_from;giltig_tom;cni;geografi_poang"
    body = [
        ";".join([u.hsaid, u.namn, u.filtyp, u.driftform, u.giltig_from, u.giltig_tom, u.cni, u.geografi_poang])
        for u in units
    ]
    path.write_text("\n".join([head, *body]) + "\n", encoding="utf-8")


# The providers of the PRIVAT sample units (UTBETALNING.md section 2): made-up companies whose
# organisationsnummer and bankgiro carry valid Luhn check digits.
PROVIDERS = {
    "SE2321000131-E000000001001": ("559214770", "Ekbacken Vård AB", "5071234", "Ekbacksvägen 4", "44231", "Kungälv"),
    "SE2321000131-E000000001003": (
        "556987123",
        "Kajens Hälsocentral AB",
        "4419876",
        "Kajgatan 9",
        "45130",
        "Uddevalla",
    ),
    "SE2321000131-E000000002001": (
        "559301845",
        "Strandvägens Rehab AB",
        "5550123",
        "Strandvägen 21",
        "43130",
        "Mölndal",
    ),
    "SE2321000131-E000000002003": (
        "556745210",
        "Torgets Arbetsterapi AB",
        "6123456",
        "Stora Torget 2",
        "50335",
        "Borås",
    ),
}


def luhn_digit(body: str) -> str:
    """The Luhn check digit that completes ``body``."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def write_providers(path: Path, units: list[SampleUnit] = SAMPLE_UNITS) -> None:
    """Write a ``vardgivare.csv`` for the PRIVAT units."""
    lines = ["hsaid;orgnr;namn;momsregnr;bankgiro;gatuadress;postnummer;ort"]
    for u in units:
        if u.driftform != "PRIVAT" or u.hsaid not in PROVIDERS:
            continue
        org, name, giro, street, postcode, city = PROVIDERS[u.hsaid]
        orgnr, bankgiro = org + luhn_digit(org), giro + luhn_digit(giro)
        lines.append(f"{u.hsaid};{orgnr};{name};SE{orgnr}01;{bankgiro};{street};{postcode};{city}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_listing(path: Path, pool: PatientPool, units: list[SampleUnit], seed: int) -> None:
    """A ``listning_YYYYMM.csv``: most of the pool listed at one of the VGP units."""
    rng = np.random.default_rng(seed)
    vgp = [u.hsaid for u in units if u.filtyp == "VGP"]
    where = rng.choice(vgp, len(pool.ids))
    listed = rng.random(len(pool.ids)) < 0.85
    lines = ["patient_id;kon;vardenhet_hsaid"]
    lines += [f"{pid};{sex};{unit}" for pid, sex, unit, ok in zip(pool.ids, pool.sex, where, listed, strict=True) if ok]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


SAMPLE_ARRIVALS = [
    # file name, received_at, rows, defects, what it shows
    (
        "VGP_SE2321000131-E000000001001_202610_01.csv",
        "2026-11-02T09:15:00+01:00",
        1800,
        28,
        "typical defects: DELVIS_GODKAND",
    ),
    (
        "VGP_SE2321000131-E000000001001_202610_02.csv",
        "2026-11-03T16:40:00+01:00",
        1800,
        0,
        "the fixed file: GODKAND, replaces _01",
    ),
    (
        "VGP_SE2321000131-E000000001002_202610_01.csv",
        "2026-11-04T14:58:00+01:00",
        2400,
        0,
        "clean, two minutes before the deadline",
    ),
    ("VGP_SE2321000131-E000000001003_202610_01.csv", "2026-11-04T15:20:00+01:00", 900, 3, "late: on_time false"),
    (
        "REH_SE2321000131-E000000002001_202610_01.csv",
        "2026-11-01T08:00:00+01:00",
        1200,
        84,
        "REH with defects: 7 % of its rows rejected",
    ),
    ("REH_SE2321000131-E000000002002_202610_01.csv", "2026-11-02T11:00:00+01:00", 700, 0, "clean REH"),
    ("REH_SE2321000131-E000000002003_202610_01.csv", "2026-11-02T12:00:00+01:00", 300, 0, "unit ended 2026-08-31: F07"),
]


def write_sample_month(out: Path, seed: int = 20261) -> None:
    """(Re)write the committed sample month under ``out`` (reference/, files/, arrivals.csv)."""
    ref, files = out / "reference", out / "files"
    ref.mkdir(parents=True, exist_ok=True)
    if files.exists():
        shutil.rmtree(files)
    files.mkdir(parents=True)
    write_register(ref / "enhetsregister.csv")
    write_providers(ref / "vardgivare.csv")
    for kva in KVA_SOURCE.glob("kva_*.csv"):  # the region's published lists, copied as they are
        if (ref / kva.name).resolve() != kva.resolve():
            shutil.copyfile(kva, ref / kva.name)
    rng = np.random.default_rng(seed)
    pool = PatientPool(rng, 4000)
    write_listing(listing_path(ref, SAMPLE_PERIOD), pool, SAMPLE_UNITS, seed)
    kva = kva_list(Period.parse(SAMPLE_PERIOD).year, ref)
    lines = ["file;received_at;what_it_shows"]
    for i, (name, received_at, rows, defects, what) in enumerate(SAMPLE_ARRIVALS):
        file_type, hsaid = name.split("_")[0], name.split("_")[1]
        # _02 of a unit is the corrected _01: same visits, without the defects.
        base_seed = seed + 100 * SAMPLE_ARRIVALS.index(next(a for a in SAMPLE_ARRIVALS if a[0].split("_")[1] == hsaid))
        cols = generate_visits(
            file_type=file_type,
            hsaid=hsaid,
            period=SAMPLE_PERIOD,
            rows=rows,
            seed=base_seed,
            kva_codes=kva,
            pool=pool,
            id_prefix=hsaid[-1],
        )
        if defects:
            add_defects(cols, count=defects, seed=seed + i)
        (files / name).write_bytes(to_csv(cols, crlf=file_type == "VGP"))
        lines.append(f"{name};{received_at};{what}")
    (out / "arrivals.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


# Across the version boundary (FILSPECIFIKATION.md section 9): 2026-11 is judged by 2026.1 and
# 2026-12 by 2026.2, whenever a file arrives. The windows: 2026-12-01 – 2026-12-03 15:00 and
# 2027-01-01 – 2027-01-07 15:00 (New Year's Day and Trettondedag jul make the 7th the third vardag).
BOUNDARY_ARRIVALS = [
    # folder/file name, received_at, period, rows, defects ("all": every row R12), what it shows
    (
        "01/VGP_SE2321000131-E000000001001_202611_01.csv",
        "2026-12-01T09:00:00+01:00",
        "2026-11",
        1500,
        12,
        "2026-11 under 2026.1",
    ),
    ("02/REH_SE2321000131-E000000002001_202611_01.csv", "2026-12-02T10:00:00+01:00", "2026-11", 1000, 6, "REH 2026-11"),
    (
        "03/VGP_SE2321000131-E000000001002_202611_01.csv",
        "2026-12-03T14:59:00+01:00",
        "2026-11",
        2000,
        0,
        "a minute before the deadline of 2026-11",
    ),
    (
        "04/VGP_SE2321000131-E000000001001_202612_01.csv",
        "2026-12-30T10:00:00+01:00",
        "2026-12",
        1500,
        0,
        "before the window of 2026-12 opens: F08",
    ),
    (
        "04/VGP_SE2321000131-E000000001001_202612_01.csv",
        "2027-01-04T09:00:00+01:00",
        "2026-12",
        1500,
        0,
        "the same bytes once the window opened: judged anew under 2026.2 (reading 21)",
    ),
    (
        "05/VGP_SE2321000131-E000000001002_202612_01.csv",
        "2027-01-05T10:00:00+01:00",
        "2026-12",
        2000,
        "all",
        "every row rejected: F11 under 2026.2",
    ),
    (
        "06/VGP_SE2321000131-E000000001002_202612_01.csv",
        "2027-01-05T11:00:00+01:00",
        "2026-12",
        2000,
        0,
        "the fix under the same name _01: no F09 after an AVVISAD file (reading 21)",
    ),
    (
        "07/VGP_SE2321000131-E000000001003_202611_01.csv",
        "2027-01-06T10:00:00+01:00",
        "2026-11",
        800,
        0,
        "a late 2026-11 file in January: 2026.1, a RATTELSE at the close of 2026-12",
    ),
    (
        "08/REH_SE2321000131-E000000002001_202612_01.csv",
        "2027-01-07T14:55:00+01:00",
        "2026-12",
        1000,
        4,
        "REH 2026-12, five minutes before the deadline",
    ),
]


def write_boundary_months(out: Path, seed: int = 20262) -> None:
    """(Re)write the sample months across the version boundary under ``out`` (reference/,
    files/NN/, arrivals.csv): periods 2026-11 and 2026-12, received in December and January."""
    ref, files = out / "reference", out / "files"
    ref.mkdir(parents=True, exist_ok=True)
    if files.exists():
        shutil.rmtree(files)
    write_register(ref / "enhetsregister.csv")
    for kva in KVA_SOURCE.glob("kva_*.csv"):
        shutil.copyfile(kva, ref / kva.name)
    rng = np.random.default_rng(seed)
    pool = PatientPool(rng, 4000)
    for period in ("2026-11", "2026-12"):
        write_listing(listing_path(ref, period), pool, SAMPLE_UNITS, seed)
    lines = ["file;received_at;what_it_shows"]
    for i, (rel, received_at, period, rows, defects, what) in enumerate(BOUNDARY_ARRIVALS):
        path = files / rel
        lines.append(f"{rel};{received_at};{what}")
        if path.exists():  # the same bytes sent again
            continue
        file_type, hsaid = path.name.split("_")[0], path.name.split("_")[1]
        cols = generate_visits(
            file_type=file_type,
            hsaid=hsaid,
            period=period,
            rows=rows,
            seed=seed + 10 * i,
            kva_codes=kva_list(Period.parse(period).year, ref),
            pool=pool,
            id_prefix=hsaid[-1],
        )
        if defects == "all":  # named for one unit, every row for another: R12 on every row
            cols["vardenhet_hsaid"] = np.full(rows, SAMPLE_UNITS[2].hsaid)
        elif defects:
            add_defects(cols, count=int(defects), seed=seed + i)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(to_csv(cols, crlf=file_type == "VGP"))
    (out / "arrivals.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


# The year before the sample month (issue 15): 2025-10 … 2026-09, so the analysts' trends and
# deviation flags have twelve closed periods of history behind 2026-10. Three stories are planted
# and must be what the flags of 2026-10 say (tests/test_sample_year.py); the other units stay
# steady within a few percent.
YEAR_PERIODS = [str(Period.parse(SAMPLE_PERIOD).shift(-i)) for i in range(12, 0, -1)]
GROWS = "SE2321000131-E000000001002"  # Åsen: ~1,500 visits a month, then 1,800, 2,100 (and 2,400 in 2026-10)
LATE = "SE2321000131-E000000001003"  # Kajen: late in 2026-03 (and again in 2026-10)
REJECTS = "SE2321000131-E000000002001"  # Strandvägen: a few rejected rows a month, then 7 % in 2026-10
YEAR_ROWS = {
    "SE2321000131-E000000001001": 1800,
    GROWS: 1500,
    LATE: 900,
    REJECTS: 1200,
    "SE2321000131-E000000002002": 700,
    "SE2321000131-E000000002003": 300,
}
LATE_PERIODS = {"2026-03"}


def year_arrivals(seed: int = 20263) -> list[tuple[str, str, str, int, int, str]]:
    """(file, received_at, period, rows, defects, what it shows) of the year before the sample
    month, in arrival order: every active unit once a period, on the first vardag of the window or
    the day after, Kajen a day after the deadline in 2026-03."""
    rng = np.random.default_rng(seed)
    out = []
    for period in YEAR_PERIODS:
        p = Period.parse(period)
        first, last = p.bounds
        window = p.window
        opens = window.opens.date()
        day = next(opens + dt.timedelta(days=d) for d in range(7) if is_vardag(opens + dt.timedelta(days=d)))
        for k, unit in enumerate(SAMPLE_UNITS):
            if unit.giltig_from > last.isoformat() or (unit.giltig_tom and unit.giltig_tom < first.isoformat()):
                continue  # not active in this period: no file
            rows = YEAR_ROWS[unit.hsaid] + int(rng.integers(-40, 41))
            if unit.hsaid == GROWS and period >= "2026-08":
                rows = 1500 + 300 * (int(period[5:]) - 7)
            defects = int(rng.integers(0, 4))
            what = "steady"
            stamp = dt.datetime.combine(day + dt.timedelta(days=k % 2), dt.time(8 + k, 10 * k), window.opens.tzinfo)
            if unit.hsaid == GROWS and period >= "2026-08":
                what = "grows"
            if unit.hsaid == LATE and period in LATE_PERIODS:
                stamp, what = window.deadline + dt.timedelta(hours=19), "late: a day after the deadline"
            name = f"{period}/{unit.filtyp}_{unit.hsaid}_{p.compact}_01.csv"
            out.append((name, stamp.isoformat(), period, rows, defects, what))
    return sorted(out, key=lambda a: a[1])


def write_sample_year(out: Path, seed: int = 20263, month_seed: int = 20261) -> None:
    """(Re)write the year before the sample month: ``out/year/files/YYYY-MM/``, its
    ``arrivals.csv``, and the listing of each period in ``out/reference`` (the same persons as the
    sample month's listing: one population across the year)."""
    year, ref = out / "year", out / "reference"
    files = year / "files"
    if files.exists():
        shutil.rmtree(files)
    ref.mkdir(parents=True, exist_ok=True)
    pool = PatientPool(np.random.default_rng(month_seed), 4000)  # the sample month's population
    for period in YEAR_PERIODS:
        write_listing(listing_path(ref, period), pool, SAMPLE_UNITS, month_seed)
    lines = ["file;received_at;what_it_shows"]
    for i, (rel, received_at, period, rows, defects, what) in enumerate(year_arrivals(seed)):
        path = files / rel
        file_type, hsaid = path.name.split("_")[0], path.name.split("_")[1]
        cols = generate_visits(
            file_type=file_type,
            hsaid=hsaid,
            period=period,
            rows=rows,
            seed=seed + 10 * i,
            kva_codes=kva_list(Period.parse(period).year, KVA_SOURCE),
            pool=pool,
            id_prefix=hsaid[-1],
        )
        if defects:
            add_defects(cols, count=defects, seed=seed + i)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(to_csv(cols, crlf=file_type == "VGP"))
        lines.append(f"{rel};{received_at};{what}")
    (year / "arrivals.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Command line: write the sample month, or one large file for benchmarks."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE)
    ap.add_argument("--rows", type=int, help="write one VGP file of this many rows instead")
    ap.add_argument("--seed", type=int, default=20261)
    args = ap.parse_args(argv)
    if args.rows:
        hsaid = SAMPLE_UNITS[0].hsaid
        cols = generate_visits(
            file_type="VGP", hsaid=hsaid, period=SAMPLE_PERIOD, rows=args.rows, seed=args.seed, kva_codes=kva_list(2026)
        )
        add_defects(cols, count=max(1, args.rows // 1000), seed=args.seed)
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / f"VGP_{hsaid}_202610_01.csv"
        path.write_bytes(to_csv(cols))
        print(path)
        return 0
    write_sample_month(args.out, args.seed)
    write_boundary_months(args.out / "boundary")
    write_sample_year(args.out)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
