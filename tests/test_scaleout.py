"""Scale-out: several worker processes take in the same burst against one PostgreSQL ledger (as
Celery or Kubernetes workers would). No submission is lost and none is doubled."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest
from ledger_support import database_url, drop_schema
from sqlalchemy import func, select

from sample_data.generate import generate_visits, kva_list, to_csv
from vardfil.ledger import Ledger
from vardfil.ledger.tables import AuditLog, ReceivedFile

WORKER = """
import json, sys
from pathlib import Path
from sample_data import SAMPLE_REFERENCE
from filespec.calendar import parse_instant
from vardfil.app import open_app
from vardfil.month.intake import submit
from vardfil.settings import load_settings
url, store, jobs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
app = open_app(load_settings({"VARDFIL_DATABASE_URL": url, "VARDFIL_STORE": store,
                              "VARDFIL_REFERENCE": str(SAMPLE_REFERENCE)}))
out = []
for path, at in jobs:
    sub = submit(Path(path), file_name=Path(path).name, received_at=parse_instant(at), app=app,
                 source_kind="dag", actor="job:worker")
    out.append([Path(path).name, sub.receipt_id, sub.new])
print(json.dumps(out))
"""


@pytest.mark.parametrize("backend", ["postgresql"])
def test_four_workers_take_in_one_burst(backend, tmp_path):
    url = database_url(backend, tmp_path)
    units = [
        ("VGP", "SE2321000131-E000000001001"),
        ("VGP", "SE2321000131-E000000001002"),
        ("REH", "SE2321000131-E000000002001"),
        ("REH", "SE2321000131-E000000002002"),
    ]
    files = []
    for i, (ft, hsaid) in enumerate(units):
        for seq in (1, 2, 3):
            cols = generate_visits(
                file_type=ft, hsaid=hsaid, period="2026-10", rows=800, seed=10 * i + seq, kva_codes=kva_list(2026)
            )
            path = tmp_path / f"{ft}_{hsaid}_202610_{seq:02d}.csv"
            path.write_bytes(to_csv(cols))
            files.append((str(path), f"2026-11-03T{10 + seq}:00:00+01:00"))
    # Every file goes to two of the four workers: 24 submissions of 12 files, all at once.
    plans = [[f for j, f in enumerate(files) if j % 4 in (w, (w + 1) % 4)] for w in range(4)]
    Ledger(url).dispose()  # migrate once, before the burst
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, url, str(tmp_path / "store"), json.dumps(plan)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for plan in plans
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
        results += json.loads(out.strip().splitlines()[-1])
    ledger = Ledger(url)
    with ledger.reading() as s:
        recorded = {f.sha256: f for f in s.scalars(select(ReceivedFile))}
        audit = s.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "file_received"))
    assert len(results) == 24 and sum(new for _, _, new in results) == 12
    assert len(recorded) == 12 and audit == 12
    by_name = {f.file_name: f.receipt_id for f in recorded.values()}
    for name, receipt, _ in results:
        assert by_name[name] == receipt
    for path, _ in files:
        assert hashlib.sha256(open(path, "rb").read()).hexdigest() in recorded
    ledger.dispose()
    drop_schema(url)
