"""Benchmark: what a DAG intake task costs per file, one file a task against a batch a task.

Each Airflow task is a process of its own, so each pays the imports, the reference data and the
ledger before its first file. This runs the intake task's own function
(``vardfil.airflow.tasks.intake_batch``) in fresh processes on month files of ``bench_month.py``
(generated once, cached): ``--files`` tasks of one file each, then one task of ``--files`` other
files, on one fresh embedded ledger, one process at a time. Prints the wall time and CPU time a
file of each, and the parse floor of the same files (pyarrow, measured in the same run). Not a
test: figures are printed, never asserted.

    python benchmarks/bench_task_start.py                 # 10 files each way
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_month import build_month  # noqa: E402 - the month's files, generated once

TASK = "import sys, json; from vardfil.airflow.tasks import intake_batch; intake_batch(json.loads(sys.argv[1]))"


def run_task(paths: list[Path], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one fresh process taking in ``paths``."""
    import json
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", TASK, json.dumps([str(p) for p in paths])], env=env, check=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--out", type=Path, default=HERE / "out")
    args = parser.parse_args(argv)

    month = build_month(args.out / "month-300-500000-7", 300, 500_000, 7)
    arrivals = [line.split(";") for line in (month / "arrivals.csv").read_text().splitlines()[1:]]
    files = [month / "files" / name for name, _ in arrivals][: 2 * args.files]

    import pyarrow as pa
    import pyarrow.csv as pcsv

    floors = []
    for _ in range(3):
        t = time.perf_counter()
        for p in files:
            names = p.open(encoding="utf-8").readline().rstrip("\r\n").split(";")
            pcsv.read_csv(
                p,
                parse_options=pcsv.ParseOptions(delimiter=";"),
                convert_options=pcsv.ConvertOptions(column_types={n: pa.string() for n in names}),
            )
        floors.append((time.perf_counter() - t) / len(files))
    floor = min(floors)

    home = Path(tempfile.mkdtemp(prefix="vardfil-bench-task-"))
    env = dict(os.environ)
    env.update(
        {
            "VARDFIL_HOME": str(home),
            "VARDFIL_REFERENCE": str(month / "reference"),
            "VARDFIL_PSEUDONYM_KEY": "bench-key",
            "PYTHONPATH": os.pathsep.join([str(HERE.parent), env.get("PYTHONPATH", "")]),
        }
    )
    env.pop("VARDFIL_DATABASE_URL", None)
    env.pop("VARDFIL_STORE", None)
    inbox = home / "inbox"
    inbox.mkdir(parents=True)
    staged = []
    for (name, at), p in zip(arrivals, files, strict=False):
        target = inbox / name
        shutil.copyfile(p, target)
        stamp = time.mktime(time.strptime(at[:19], "%Y-%m-%dT%H:%M:%S"))
        os.utime(target, (stamp, stamp))
        staged.append(target)
    # The ledger is created before the timed tasks, as a deployment's is.
    subprocess.run([sys.executable, "-c", "from vardfil.app import open_app; open_app().ledger"], env=env, check=True)

    one = [run_task([p], env) for p in staged[: args.files]]
    batch = run_task(staged[args.files :], env)
    left = [p.name for p in staged if p.exists()]
    shutil.rmtree(home, ignore_errors=True)
    if left:
        print(f"files left in the inbox: {left}")
        return 1
    n = args.files
    wall_one, cpu_one = sum(w for w, _ in one) / n, sum(c for _, c in one) / n
    wall_batch, cpu_batch = batch[0] / n, batch[1] / n
    print(f"files: {n} each way (month files, {floor * 1000:.1f} ms parse floor a file, best of 3)")
    print(
        f"  one file a task:     {wall_one:6.2f} s wall, {cpu_one:6.2f} s CPU a file = {wall_one / floor:7.0f}x floor"
    )
    print(
        f"  {n} files a task:     {wall_batch:6.2f} s wall, {cpu_batch:6.2f} s CPU a file = {wall_batch / floor:7.0f}x floor"
    )
    print(f"  a batch saves {1 - wall_batch / wall_one:.0%} of the wall time a file")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
