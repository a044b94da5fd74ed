"""Benchmark: validate a generated VGP file with every rule on, against the parse floor.

The parse floor is pyarrow ``read_csv`` of the same file with every column as a string, measured
in the same run. Validation includes writing the kvittens JSON, the full findings CSV and the
accepted rows as Parquet (what the intake stores). Peak memory is the maximum resident set of a
child process that does one validation (its baseline after imports is printed too). Not a test: the machine is shared, so figures are printed, never
asserted.

    python benchmarks/bench_validate.py                 # 1,000,000 rows (issue targets 1 and 2)
    python benchmarks/bench_validate.py --rows 200000   # smaller, quicker
    python benchmarks/bench_validate.py --kva 9000      # each year's KVÅ list padded to 9,000 codes
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECEIVED_AT = "2026-11-02T10:00:00+01:00"


def generated_file(rows: int, seed: int, out: Path) -> Path:
    """The benchmark file, generated once per (rows, seed) and cached under ``out``."""
    folder = out / f"vgp-{rows}-{seed}"
    existing = list(folder.glob("*.csv"))
    if existing:
        return existing[0]
    from sample_data.generate import main as generate

    generate(["--rows", str(rows), "--seed", str(seed), "--out", str(folder)])
    return next(folder.glob("*.csv"))


def parse_floor(path: Path) -> float:
    """Seconds for pyarrow to read the file with every column as a string."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    names = path.open(encoding="utf-8").readline().rstrip("\r\n").split(";")
    t = time.perf_counter()
    pcsv.read_csv(
        path,
        parse_options=pcsv.ParseOptions(delimiter=";"),
        convert_options=pcsv.ConvertOptions(column_types={n: pa.string() for n in names}),
    )
    return time.perf_counter() - t


def reference_with(kva: int):
    """The sample reference data; with ``kva``, each year's KVÅ list padded with codes of the KVÅ
    form that no generated row uses, to that many (the classification has ~9,000)."""
    import dataclasses

    from filespec import load_reference
    from sample_data import SAMPLE_REFERENCE

    reference = load_reference(SAMPLE_REFERENCE)  # loaded for each run, as always measured here
    if kva:
        # The padded lists are kept: the application loads its reference data once, so its
        # code lists' Enums (validators.rules.member) are built once, not for each file.
        key = (kva, tuple(sorted((y, len(c)) for y, c in reference.kva.items())))
        if key not in _PADDED:
            pad = [f"Z{chr(65 + i // 1000 % 26)}{i % 1000:03d}" for i in range(kva)]
            _PADDED[key] = {y: frozenset(c) | frozenset(pad[: max(0, kva - len(c))]) for y, c in reference.kva.items()}
        reference = dataclasses.replace(reference, kva=_PADDED[key])
    return reference


_PADDED: dict[tuple, dict[int, frozenset[str]]] = {}


def validate_once(path: Path, out: Path, kva: int = 0) -> tuple[float, dict]:
    """Seconds to validate and write the kvittens the findings CSV and the accepted Parquet; the kvittens."""
    from filespec.calendar import parse_instant
    from validators import validate_file, write_findings_csv

    reference = reference_with(kva)
    t = time.perf_counter()
    # The accepted rows are written as Parquet while the rows are judged, as the intake does.
    result = validate_file(
        path,
        file_name=path.name,
        received_at=parse_instant(RECEIVED_AT),
        reference=reference,
        accepted_to=out / "accepted.parquet",
    )
    kv = result.kvittens.to_dict()
    (out / "kvittens.json").write_text(json.dumps(kv, ensure_ascii=False), encoding="utf-8")
    write_findings_csv(result.findings, out / "findings.csv")
    return time.perf_counter() - t, kv


def _high_water_kib() -> int:
    # VmHWM belongs to this address space; getrusage's ru_maxrss survives exec on Linux and would
    # report the parent's peak.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(path: Path, out: Path, kva: int = 0) -> None:
    """One validation in this process; prints seconds and resident-set figures as JSON."""
    import filespec  # noqa: F401  (imports first, so the baseline includes them)
    import validators  # noqa: F401  (polars' engine comes from the parent's environment)

    base = _high_water_kib()
    seconds, _ = validate_once(path, out, kva)
    print(json.dumps({"seconds": seconds, "baseline_kib": base, "peak_kib": _high_water_kib()}))


def small_file_latency(out: Path, rows: int = 2000, runs: int = 20, kva: int = 0) -> float:
    """Median seconds for the kvittens of a typical 2,000-row file in a warm process."""
    path = generated_file(rows, 7, out)
    validate_once(path, out, kva)  # warm: imports, calendar, regexes
    return statistics.median(validate_once(path, out, kva)[0] for _ in range(runs))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    ap.add_argument("--out", type=Path, default=HERE / "out")
    ap.add_argument("--kva", type=int, default=0, help="pad each year's KVÅ list to this many codes")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.child:
        child(args.child, args.out, args.kva)
        return 0

    from vardfil.app import configure_polars

    configure_polars()  # as the intake runs: every process of the application opens with it
    path = generated_file(args.rows, args.seed, args.out)
    size = path.stat().st_size
    floors, runs = [], []
    for _ in range(args.repeat):
        floors.append(parse_floor(path))
        seconds, kv = validate_once(path, args.out, args.kva)
        runs.append(seconds)
    floor, best = min(floors), min(runs)
    mem = json.loads(
        subprocess.run(
            [sys.executable, __file__, "--child", str(path), "--out", str(args.out), "--kva", str(args.kva)],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ},
        ).stdout
    )
    latency = small_file_latency(args.out, kva=args.kva)

    import pandera
    import polars

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"polars {polars.__version__}, pandera {pandera.__version__}"
    )
    print(
        f"file: {path.name}, {kv['rows']['total']:,} rows, {size / 1e6:.1f} MB, status {kv['status']}, "
        f"{sum(kv['counts_by_rule'].values()):,} findings"
    )
    print(f"parse floor (pyarrow read_csv, all strings): {floor:.3f} s (best of {args.repeat})")
    print(
        f"validation incl. kvittens, findings, Parquet: {best:.3f} s (best of {args.repeat}) "
        f"= {kv['rows']['total'] / best:,.0f} rows/s"
    )
    print(f"ratio to parse floor:                        {best / floor:.2f}x   (target <= 4x)")
    peak = mem["peak_kib"] * 1024
    print(
        f"peak RSS of one validation:                  {peak / 1e6:.0f} MB = {peak / size:.1f}x file size "
        f"(baseline after imports {mem['baseline_kib'] * 1024 / 1e6:.0f} MB; target <= 6x)"
    )
    print(f"kvittens of a 2,000-row file, warm process:  {latency * 1000:.0f} ms median of 20 (target <= 300 ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
