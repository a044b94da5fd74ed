"""Benchmark: how long a backup and a restore take (the RTO's figures) for a real home.

    python benchmarks/bench_backup.py --sample-year      # the sample year (vardfil sample --direct)
    python benchmarks/bench_backup.py --month-scale 10   # the 10x month (bench_month --scale 10 --keep)
    python benchmarks/bench_backup.py --home DIR         # any home (VARDFIL_HOME layout, SQLite)

Prints the home's size, the time of ``vardfil backup``, ``backup --verify`` and ``restore`` (into
a fresh empty home) and, for scale, the time to read every byte of the backup once (the copy
floor: a restore cannot be faster than reading what it restores) with the ratios to it. Not a
test: figures are printed, never asserted (docs/operations.md, "Backup and restore", quotes them).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _env(home: Path, reference: Path) -> dict[str, str]:
    env = {**os.environ, "VARDFIL_HOME": str(home), "VARDFIL_REFERENCE": str(reference)}
    for var in ("VARDFIL_DATABASE_URL", "VARDFIL_STORE", "VARDFIL_OUTPUT"):
        env.pop(var, None)
    return env


def _timed(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "vardfil.cli", *cmd], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"vardfil {' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - t


def _read_floor(folder: Path) -> float:
    t = time.perf_counter()
    for p in folder.rglob("*"):
        if p.is_file():
            with p.open("rb") as fh:
                while fh.read(1 << 20):
                    pass
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    which = ap.add_mutually_exclusive_group(required=True)
    which.add_argument("--home", type=Path)
    which.add_argument("--sample-year", action="store_true")
    which.add_argument("--month-scale", type=int, metavar="N")
    ap.add_argument("--reference", type=Path, default=ROOT / "sample_data" / "reference")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="vardfil-bench-backup-"))
    reference = args.reference
    if args.sample_year:
        home = work / "home"
        env = _env(home, reference)
        subprocess.run(
            [sys.executable, "-m", "vardfil.cli", "sample", "--direct"], env=env, check=True, capture_output=True
        )
        what = "the sample year"
    elif args.month_scale:
        out = subprocess.run(
            [
                sys.executable,
                str(HERE / "bench_month.py"),
                "--scale",
                str(args.month_scale),
                "--keep",
                "--until",
                "close",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        home = Path(re.search(r"kept: (\S+)", out).group(1))  # type: ignore[union-attr]
        month = re.search(r"month: (\S+)", out).group(1)  # type: ignore[union-attr]
        reference = Path(month) / "reference"
        what = f"the {args.month_scale}x month"
    else:
        home, what = args.home, str(args.home)
    env = _env(home, reference)
    size = _size(home)
    backup_dir = work / "backup"
    t_backup = _timed(["backup", str(backup_dir)], env)
    t_verify = _timed(["backup", "--verify", str(backup_dir)], env)
    floor = min(_read_floor(backup_dir) for _ in range(2))
    fresh = work / "restored"
    t_restore = _timed(["restore", str(backup_dir)], _env(fresh, reference))
    t_check = _timed(["verify"], _env(fresh, reference))
    print(f"{what}: home {size / 1e6:.0f} MB, backup {_size(backup_dir) / 1e6:.0f} MB; {os.cpu_count()} cores")
    print(f"read floor (every byte of the backup once): {floor:.2f} s")
    print(f"  backup          {t_backup:7.2f} s  {t_backup / floor:5.1f}x the floor")
    print(f"  backup --verify {t_verify:7.2f} s  {t_verify / floor:5.1f}x")
    print(f"  restore         {t_restore:7.2f} s  {t_restore / floor:5.1f}x")
    print(f"  verify after    {t_check:7.2f} s  {t_check / floor:5.1f}x")
    print(f"RTO here (restore + verify): {t_restore + t_check:.1f} s")
    shutil.rmtree(work, ignore_errors=True)
    if args.month_scale:
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
