"""Kill the intake with SIGKILL at random points, many times: afterwards every file is either fully
recorded (kvittens, raw bytes, findings, accepted rows, counts) or not recorded and still in the
inbox — never half. Runs on SQLite and on PostgreSQL.

Rounds per backend: ``VARDFIL_KILL_ROUNDS`` (default 12). The counts are printed (pytest -s).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ledger_support import database_url, drop_schema
from sqlalchemy import func, select

from sample_data import SAMPLE_REFERENCE
from sample_data.generate import generate_visits, kva_list, to_csv
from vardfil.app import open_app
from vardfil.ledger import Ledger
from vardfil.ledger.tables import FindingCount, ReceivedFile
from vardfil.settings import load_settings
from vardfil.store import RawStore

ROUNDS = int(os.environ.get("VARDFIL_KILL_ROUNDS", "12"))
UNITS = [
    ("VGP", "SE2321000131-E000000001001"),
    ("VGP", "SE2321000131-E000000001002"),
    ("REH", "SE2321000131-E000000002001"),
    ("REH", "SE2321000131-E000000002002"),
]


@pytest.fixture(scope="module")
def originals() -> dict[str, bytes]:
    """Eight files (two per unit, sequences 01 and 02), a few thousand rows each."""
    files = {}
    for i, (ft, hsaid) in enumerate(UNITS):
        for seq in (1, 2):
            cols = generate_visits(
                file_type=ft, hsaid=hsaid, period="2026-10", rows=6000, seed=100 * i + seq, kva_codes=kva_list(2026)
            )
            files[f"{ft}_{hsaid}_202610_{seq:02d}.csv"] = to_csv(cols)
    return files


def _check_invariants(ledger: Ledger, store: RawStore, inbox: Path, originals: dict[str, bytes]) -> int:
    """Assert nothing is half-recorded or lost; return how many files are recorded."""
    with ledger.reading() as s:
        files = list(s.scalars(select(ReceivedFile)))
        for f in files:
            kv = json.loads(f.kvittens_json)
            assert kv["sha256"] == f.sha256 and kv["receipt_id"] == f.receipt_id
            assert hashlib.sha256(store.raw_path(f.sha256).read_bytes()).hexdigest() == f.sha256
            assert store.resolve(f.findings_path).is_file()
            assert (f.accepted_path is not None) == (f.rows_accepted > 0)
            if f.accepted_path:
                assert store.resolve(f.accepted_path).is_file()
            total = s.scalar(
                select(func.coalesce(func.sum(FindingCount.count), 0)).where(FindingCount.received_file_id == f.id)
            )
            assert total == sum(kv["counts_by_rule"].values())
    recorded = {f.sha256 for f in files}
    assert len(recorded) == len(files)
    for name, data in originals.items():
        sha = hashlib.sha256(data).hexdigest()
        in_inbox = (inbox / name).exists()
        assert sha in recorded or in_inbox, f"{name} lost"
        if in_inbox:
            assert (inbox / name).read_bytes() == data
    return len(files)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_sigkill_during_intake_never_leaves_half_a_record(backend, tmp_path, originals, reference):
    rng = random.Random(20261104)
    stats = {"rounds": 0, "killed_mid_intake": 0, "killed_before_first_file": 0, "finished_first": 0}
    for round_no in range(ROUNDS):
        home = tmp_path / f"r{round_no}"
        inbox = home / "inbox"
        inbox.mkdir(parents=True)
        for n, (name, data) in enumerate(sorted(originals.items())):
            (inbox / name).write_bytes(data)
            os.utime(inbox / name, (1793800000 + n, 1793800000 + n))  # 2026-11-04, inside the window
        url = database_url(backend, home)
        env = {
            **os.environ,
            "VARDFIL_HOME": str(home),
            "VARDFIL_DATABASE_URL": url,
            "VARDFIL_REFERENCE": str(SAMPLE_REFERENCE),
        }
        env.pop("VARDFIL_STORE", None)
        proc = subprocess.Popen(
            [sys.executable, "-m", "vardfil.cli", "intake", str(inbox)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        if rng.random() < 0.3:
            time.sleep(rng.uniform(0.2, 3.0))  # anywhere: imports, migrations, the first file
        else:
            proc.stdout.readline()  # the first file is recorded; kill inside the rest
            time.sleep(rng.uniform(0.0, 0.6))
        finished = proc.poll() is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()

        app = open_app(load_settings(env))
        ledger, store = app.ledger, app.store
        recorded = _check_invariants(ledger, store, inbox, originals)
        stats["rounds"] += 1
        if finished:
            stats["finished_first"] += 1
        elif recorded == 0:
            stats["killed_before_first_file"] += 1
        else:
            stats["killed_mid_intake"] += 1

        # The next run takes in what is left: every file exactly once, the inbox empty.
        from vardfil.month.intake import intake_folder

        intake_folder(inbox, app=app)
        assert _check_invariants(ledger, store, inbox, originals) == len(originals)
        assert list(inbox.iterdir()) == []
        app.close()
        drop_schema(url)
    print(f"\nkill test ({backend}): {stats}")
    assert stats["rounds"] == ROUNDS
    assert stats["killed_mid_intake"] > 0
