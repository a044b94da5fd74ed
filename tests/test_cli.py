"""The installed console script and its exit codes; golden kvittenser for the sample month."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sample_data import SAMPLE_DIR
from vardfil.sample import read_arrivals

GOLDEN = Path(__file__).parent / "golden" / "sample"


def _vardfil(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("vardfil") or str(Path(sys.executable).parent / "vardfil")
    # The region's tooling runs with VARDFIL_REFERENCE set; vardfil has no reference default of its own.
    env = {**os.environ, "VARDFIL_REFERENCE": str(SAMPLE_DIR / "reference")}
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120, env=env)


def test_console_script_exit_codes():
    files = {p.name: (p, t) for p, t in read_arrivals()}
    good, at = files["VGP_SE2321000131-E000000001002_202610_01.csv"]
    ok = _vardfil("validate", str(good), "--received-at", at)
    assert ok.returncode == 0 and json.loads(ok.stdout)["status"] == "GODKAND"
    bad, at = files["REH_SE2321000131-E000000002003_202610_01.csv"]
    assert _vardfil("validate", str(bad), "--received-at", at).returncode == 1
    assert _vardfil("validate", "no-such-file.csv").returncode == 2
    assert _vardfil("validate", str(good), "--received-at", "tomorrow").returncode == 2
    assert _vardfil("validate", str(good), "--reference", "/nonexistent").returncode == 2


def test_sample_month_matches_golden_kvittenser(tmp_path, monkeypatch):
    from vardfil.sample import run_sample_month

    monkeypatch.setenv("VARDFIL_HOME", str(tmp_path))
    monkeypatch.delenv("VARDFIL_DATABASE_URL", raising=False)
    monkeypatch.delenv("VARDFIL_STORE", raising=False)
    monkeypatch.delenv("VARDFIL_OUTPUT", raising=False)
    assert run_sample_month() == 0
    # Every sample file is mailed to its unit's demo account: without SMTP, as .eml in the outbox.
    mails = sorted((tmp_path / "outbox").glob("*.eml"))
    assert len([m for m in mails if "-kvittens-" in m.name]) == len(read_arrivals())
    assert len([m for m in mails if "-underlag-" in m.name]) == 5  # "underlaget är klart", one a unit
    assert run_sample_month() == 0  # a second run: every file is a byte-identical copy, same kvittens
    assert sorted((tmp_path / "outbox").glob("*.eml")) == mails  # and a copy mails nothing
    made = sorted((tmp_path / "sample" / "kvittens").glob("*.json"))
    assert [p.name for p in made] == sorted(p.name for p in GOLDEN.glob("*.json"))
    for p in made:
        assert json.loads(p.read_text(encoding="utf-8")) == json.loads((GOLDEN / p.name).read_text(encoding="utf-8")), (
            p.name
        )
    # The month was closed at its deadline and every deliverable written.
    out = tmp_path / "underlag" / "2026-10"
    assert (out / "underlag.parquet").exists() and (out / "region_2026-10.xlsx").exists()
    assert len(list((out / "enheter").glob("*.xlsx"))) == 5  # the units active in 2026-10


def test_committed_sample_month_is_what_the_generator_writes(tmp_path):
    from sample_data.generate import write_sample_month, write_sample_year

    write_sample_month(tmp_path)
    write_sample_year(tmp_path)
    committed = [p for sub in ("files", "reference", "year") for p in (SAMPLE_DIR / sub).rglob("*.csv")]
    assert (
        len(committed) == 7 + 5 + 12 + 71 + 1
    )  # the month, its reference (with vardgivare.csv), the year's listings and files, arrivals
    for p in committed:
        rel = p.relative_to(SAMPLE_DIR)
        assert (tmp_path / rel).read_bytes() == p.read_bytes(), rel


@pytest.mark.parametrize("name", ["VGP_SE2321000131-E000000001001_202610_01.csv"])
def test_findings_csv_is_complete_and_masked(tmp_path, name):
    out = tmp_path / "f.csv"
    path = SAMPLE_DIR / "files" / name
    res = _vardfil("validate", str(path), "--received-at", "2026-11-02T09:15:00+01:00", "--findings-csv", str(out))
    kv = json.loads(res.stdout)
    text = out.read_text(encoding="utf-8-sig").splitlines()
    assert len(text) - 1 == sum(kv["counts_by_rule"].values())
    pid_lines = [line for line in text if ";patient_id;" in line]
    assert pid_lines and all("****;" in line for line in pid_lines)
