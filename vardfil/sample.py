"""The main job on the sample month: every sample file validated at its arrival time.

For now (before the ledger) the history F09 needs is kept in memory for the run. Outputs: one
kvittens JSON and one findings CSV per file under the output folder, and a summary on stdout.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from filespec import load_reference
from sample_data import SAMPLE_DIR
from validators import parse_file_name, parse_instant, validate_file, write_findings_csv
from vardfil.settings import load_settings


def read_arrivals(folder: Path = SAMPLE_DIR) -> list[tuple[Path, str]]:
    """(file, received_at) of the sample month, in arrival order as listed."""
    with open(folder / "arrivals.csv", encoding="utf-8", newline="") as fh:
        return [(folder / "files" / r["file"], r["received_at"]) for r in csv.DictReader(fh, delimiter=";")]


def run_sample_month(out: Path | None = None, folder: Path = SAMPLE_DIR) -> int:
    """Validate the sample month in arrival order; write kvittenser and findings; print a summary."""
    settings = load_settings()
    out = out or settings.home / "sample"
    kv_dir = out / "kvittens"
    kv_dir.mkdir(parents=True, exist_ok=True)
    reference = load_reference(folder / "reference")
    history: dict[tuple[str, str, str], list[int]] = {}
    print(f"{'file':<46} {'status':<15} {'on_time':<7} {'rows':>6} {'accepted':>8}  rules")
    for path, received_at in read_arrivals(folder):
        name = parse_file_name(path.name)
        key = (name.unit_hsaid, name.file_type, name.period) if name else None
        result = validate_file(path, file_name=path.name, received_at=parse_instant(received_at),
                               reference=reference, earlier_sequences=history.get(key, ()))
        if key:
            history.setdefault(key, []).append(name.sequence)
        kv = result.kvittens
        stem = path.name.removesuffix(".csv")
        (kv_dir / f"{stem}.json").write_text(
            json.dumps(kv.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        write_findings_csv(result.findings, kv_dir / f"{stem}.findings.csv")
        rules = " ".join(f"{c}×{n}" for c, n in kv.counts_by_rule.items())
        print(f"{path.name:<46} {kv.status.value:<15} {str(kv.on_time):<7} {kv.rows.total:>6} "
              f"{kv.rows.accepted:>8}  {rules}")
    print(f"\nkvittenser and findings: {kv_dir}")
    return 0
