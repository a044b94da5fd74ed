"""Shared helpers: tiny spec files built from a valid base row, validated against the sample register."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from filespec import load_reference
from filespec.calendar import parse_instant
from sample_data import SAMPLE_REFERENCE
from sample_data.generate import REH_FIELDS, VGP_FIELDS
from validators import make_personnummer, validate_file

# FILSPECIFIKATION.md section 6.4: the kvittens JSON has exactly these keys, in this order.
KVITTENS_KEYS = [
    "receipt_id",
    "file_name",
    "sha256",
    "received_at",
    "file_type",
    "unit_hsaid",
    "period",
    "sequence",
    "spec_version",
    "deadline",
    "on_time",
    "status",
    "rows",
    "counts_by_rule",
    "findings",
    "findings_truncated",
]
VGP_UNIT = "SE2321000131-E000000001001"
REH_UNIT = "SE2321000131-E000000002001"
PERIOD = "2026-10"
ON_TIME = "2026-11-02T10:00:00+01:00"
# A man born 1980-05-17 (birth number 123: odd, so M).
ADULT_MAN = make_personnummer(dt.date(1980, 5, 17), 123)

VGP_BASE = {
    "besok_id": "A1",
    "vardenhet_hsaid": VGP_UNIT,
    "patient_id": ADULT_MAN,
    "kon": "M",
    "folkbokforing_lan": "14",
    "besoksdatum": "2026-10-15",
    "yrkeskategori": "LAK",
    "kontakttyp": "M",
    "besokstyp": "N",
    "akut": "N",
    "diagnos_1": "J06.9",
    "diagnos_2": "",
    "diagnos_3": "",
    "diagnos_4": "",
    "diagnos_5": "",
    "kva_1": "",
    "kva_2": "",
    "kva_3": "",
    "kva_4": "",
    "kva_5": "",
    "kva_6": "",
    "tolk": "N",
    "frikort": "N",
    "patientavgift": "200",
}
REH_BASE = {
    "besok_id": "R1",
    "vardenhet_hsaid": REH_UNIT,
    "patient_id": ADULT_MAN,
    "kon": "M",
    "folkbokforing_lan": "14",
    "besoksdatum": "2026-10-15",
    "yrkeskategori": "FT",
    "kontakttyp": "MOTT",
    "besokstyp": "N",
    "diagnos_1": "M54.5",
    "diagnos_2": "",
    "diagnos_3": "",
    "kva_1": "QV001",
    "kva_2": "",
    "kva_3": "",
    "kva_4": "",
    "kva_5": "",
    "kva_6": "",
    "antal_deltagare": "",
    "tolk": "N",
    "frikort": "N",
    "patientavgift": "200",
}


def file_name(file_type: str = "VGP", period: str = PERIOD, seq: str = "01", unit: str | None = None) -> str:
    """A valid file name."""
    unit = unit or (VGP_UNIT if file_type == "VGP" else REH_UNIT)
    return f"{file_type}_{unit}_{period.replace('-', '')}_{seq}.csv"


def make_file(
    file_type: str = "VGP",
    rows: list[dict] | None = None,
    *,
    header: list[str] | None = None,
    extra_lines: list[str] = (),
    newline: str = "\n",
) -> bytes:
    """Header and rows (each a change of the base row) as file bytes."""
    base = VGP_BASE if file_type == "VGP" else REH_BASE
    names = header or (VGP_FIELDS if file_type == "VGP" else REH_FIELDS)
    lines = [";".join(names)]
    for i, change in enumerate(rows if rows is not None else [{}]):
        row = dict(base, besok_id=f"{base['besok_id']}{i}" if i else base["besok_id"])
        row.update(change)
        lines.append(";".join(row.get(n.strip(), "") for n in names))
    lines.extend(extra_lines)
    return (newline.join(lines) + newline).encode("utf-8")


@pytest.fixture(scope="session")
def reference():
    """The sample reference data."""
    return load_reference(SAMPLE_REFERENCE)


@pytest.fixture
def run(reference):
    """Validate bytes under a name at an instant; returns the ValidationResult."""

    def _run(
        data: bytes | Path,
        name: str | None = None,
        received_at: str = ON_TIME,
        earlier: tuple[int, ...] = (),
        file_type: str = "VGP",
    ):
        return validate_file(
            data,
            file_name=name or file_name(file_type),
            received_at=parse_instant(received_at),
            reference=reference,
            earlier_sequences=earlier,
        )

    return _run


def web_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, now: str, *, pool_workers: str | None = "0") -> Path:
    """The environment of a web-server test: a fresh home, the sample reference data, the test
    clock at ``now`` (returned: write it to move time), validation in threads unless told."""
    clock = tmp_path / "clock"
    clock.write_text(now)
    monkeypatch.setenv("VARDFIL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VARDFIL_CLOCK_FILE", str(clock))
    monkeypatch.setenv("VARDFIL_REFERENCE", str(SAMPLE_REFERENCE))
    if pool_workers is None:
        monkeypatch.delenv("VARDFIL_POOL_WORKERS", raising=False)
    else:
        monkeypatch.setenv("VARDFIL_POOL_WORKERS", pool_workers)
    for var in ("VARDFIL_DATABASE_URL", "VARDFIL_STORE", "VARDFIL_OUTPUT"):
        monkeypatch.delenv(var, raising=False)
    return clock


def cli(*args: str) -> tuple[int, str]:
    """Run ``vardfil`` in this process: (exit code, stdout); stderr is swallowed."""
    import contextlib
    import io

    from vardfil.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(list(args))
    return code, out.getvalue()


# The README's contract of underlag.parquet: exactly these columns, in this order.
UNDERLAG_COLUMNS = [
    "period",
    "file_type",
    "unit_hsaid",
    "component",
    "quantity",
    "unit_price",
    "amount",
    "corrected_period",
]


def underlag_key(line: dict) -> tuple:
    """An underlag line as comparable values (amounts as Decimal, from text or a Parquet decimal)."""
    from decimal import Decimal

    def dec(v: object) -> Decimal | None:
        return None if v is None else Decimal(str(v))

    return (
        line["period"],
        line["file_type"],
        line["unit_hsaid"],
        line["component"],
        dec(line["quantity"]),
        dec(line["unit_price"]),
        dec(line["amount"]),
        line["corrected_period"],
    )


def triples(result) -> set[tuple]:
    """The findings as {(row, field, rule)}."""
    return {(f["row"], f["field"], f["rule"]) for f in result.findings.iter_rows(named=True)}


# --- the ledger, on every backend ------------------------------------------------------------------

from ledger_support import database_url, drop_schema  # noqa: E402


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request):
    """Run a ledger test on the embedded SQLite and on a real PostgreSQL."""
    return request.param


@pytest.fixture
def app_env(backend, tmp_path, monkeypatch):
    """VARDFIL_HOME and VARDFIL_DATABASE_URL for one test; yields the settings."""
    from vardfil.settings import load_settings

    url = database_url(backend, tmp_path)
    monkeypatch.setenv("VARDFIL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VARDFIL_DATABASE_URL", url)
    monkeypatch.setenv("VARDFIL_REFERENCE", str(SAMPLE_REFERENCE))  # never a default: named here
    monkeypatch.delenv("VARDFIL_STORE", raising=False)
    monkeypatch.delenv("VARDFIL_SMTP_URL", raising=False)  # mail goes to the test's own outbox
    yield load_settings()
    drop_schema(url)


@pytest.fixture
def app(app_env):
    """The application (``vardfil.app.App``) on the test's backend and the sample reference data."""
    from vardfil.app import open_app

    with open_app(app_env) as opened:
        yield opened
