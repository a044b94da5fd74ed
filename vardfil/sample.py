"""The main job on the sample month: intake, close at the deadline, underlag and workbooks.

Files go through the same intake as ``vardfil submit`` (ledger and store under ``$VARDFIL_HOME``),
each at its arrival time; then the period is closed at its deadline exactly as ``vardfil close``
does, and the workbooks are written as ``vardfil report`` does. A second run finds every file
already received and the period already closed, and gives the same answers.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from filespec import load_reference
from sample_data import SAMPLE_DIR
from validators import parse_instant
from validators.window import window_for
from vardfil.close import CloseContext, close_period, pseudonym_key
from vardfil.intake import submit
from vardfil.ledger import Ledger
from vardfil.report import write_reports
from vardfil.settings import load_settings
from vardfil.store import RawStore


def read_arrivals(folder: Path = SAMPLE_DIR) -> list[tuple[Path, str]]:
    """(file, received_at) of the sample month, in arrival order as listed."""
    with open(folder / "arrivals.csv", encoding="utf-8", newline="") as fh:
        return [(folder / "files" / r["file"], r["received_at"]) for r in csv.DictReader(fh, delimiter=";")]


def run_sample_month(out: Path | None = None, folder: Path = SAMPLE_DIR) -> int:
    """Submit the sample month in arrival order; write kvittenser and findings; print a summary."""
    settings = load_settings()
    out = out or settings.home / "sample"
    kv_dir = out / "kvittens"
    kv_dir.mkdir(parents=True, exist_ok=True)
    reference = load_reference(folder / "reference")
    ledger, store = Ledger(settings.database_url), RawStore(settings.store)
    print(f"{'file':<46} {'status':<15} {'on_time':<7} {'rows':>6} {'accepted':>8}  rules")
    for path, received_at in read_arrivals(folder):
        sub = submit(path, file_name=path.name, received_at=parse_instant(received_at), ledger=ledger,
                     store=store, reference=reference, source_kind="cli", actor="sample")
        kv = sub.kvittens
        stem = path.name.removesuffix(".csv")
        (kv_dir / f"{stem}.json").write_text(json.dumps(kv, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        shutil.copyfile(store.resolve(sub.file.findings_path), kv_dir / f"{stem}.findings.csv")
        rules = " ".join(f"{c}×{n}" for c, n in kv["counts_by_rule"].items())
        print(f"{path.name:<46} {kv['status']:<15} {str(kv['on_time']):<7} {kv['rows']['total']:>6} "
              f"{kv['rows']['accepted']:>8}  {rules}")
    period = sorted({p.name.split("_")[2] for p, _ in read_arrivals(folder)})[-1]
    period = f"{period[:4]}-{period[4:]}"
    ctx = CloseContext(ledger=ledger, store=store, reference=reference, out_root=settings.output,
                       pseudonym_key=pseudonym_key(settings.home, settings.pseudonym_key))
    summary = close_period(period, at=window_for(period).deadline, ctx=ctx, actor="sample")
    workbooks = write_reports(period, ctx=ctx)
    ledger.dispose()
    print(f"\nclose of {period} at {summary['closed_at']}: total {summary['total']} kr, "
          f"{len(summary['units'])} units, missing: {', '.join(summary['missing_units']) or 'none'}")
    for u in summary["units"]:
        print(f"  {u['unit_hsaid']} {u['file_type']}  {u['total']:>16} kr  {'(no file)' if not u['receipt_id'] else ''}")
    print(f"\nkvittenser and findings: {kv_dir}")
    print(f"underlag (Parquet):      {summary['underlag_parquet']}")
    print(f"visits, ACG (Parquet):   {summary['besok_parquet']}, {summary['acg_parquet']}")
    print(f"workbooks:               {workbooks[-1]} and {len(workbooks) - 1} unit workbooks in {workbooks[0].parent}")
    print(f"ledger:                  {settings.database_url}\nraw store:               {settings.store}")
    return 0
