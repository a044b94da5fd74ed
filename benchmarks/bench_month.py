"""Benchmark: a region month end to end — intake → close → every underlag, Parquet and the region
workbook — and the first download of unit workbooks.

Generates (once, cached) a month of ``--units`` units (half VGP, half REH) with ``--rows`` visit
rows in all, a unit register and a VGP listing; then, on a fresh embedded ledger, submits every
file at its arrival time, closes the period at its deadline and publishes it (the region
workbook; a unit's workbook is written when the unit first downloads it). Prints the time of each
stage, the total, the parse floor of all files (pyarrow, measured in the same run: in one process,
and over as many processes as the intake uses, started the same way), the time of a unit's first
download (the ten largest units and ten others) and the peak resident memory of every process
the run starts (each intake worker reports its own high-water mark as it exits) and their sum;
``--all-workbooks`` also writes all 300 unit workbooks, as ``vardfil report`` does. Not a test:
figures are printed, never asserted.

    python benchmarks/bench_month.py                      # 300 files, 500,000 rows (issue target 3)
    python benchmarks/bench_month.py --scale 10           # 5,000,000 rows (target 4)
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
PERIOD = "2026-10"
# Every process of the run (the intake workers are spawned and inherit it) writes its metrics
# here, as a server's do, so the figures /metrics would show are printed beside the stage timers.
# Set before anything imports prometheus_client; bench_burst (which imports this module) runs a
# real server and reads its /metrics instead.
if __name__ == "__main__":
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="vardfil-bench-metrics-"))


def build_month(out: Path, units: int, rows: int, seed: int) -> Path:
    """The month's reference data and files under ``out`` (reused when already there)."""
    from filespec import listing_path
    from filespec.calendar import Period
    from sample_data.generate import (
        KVA_SOURCE,
        PatientPool,
        SampleUnit,
        add_defects,
        generate_visits,
        kva_list,
        to_csv,
        write_listing,
        write_register,
    )

    done = out / "arrivals.csv"
    if done.exists():
        return out
    rng = np.random.default_rng(seed)
    ref, files = out / "reference", out / "files"
    ref.mkdir(parents=True, exist_ok=True)
    files.mkdir(parents=True, exist_ok=True)
    register = []
    for i in range(units):
        ft = "VGP" if i % 2 == 0 else "REH"
        register.append(
            SampleUnit(
                f"SE2321000131-E{i + 100000:012d}",
                f"Enhet {i}",
                ft,
                "PRIVAT" if i % 3 == 0 else "OFFENTLIG",
                "2025-01-01",
                "",
                f"{rng.uniform(1.5, 3.8):.3f}",
                "" if ft == "VGP" else str(int(rng.integers(0, 15))),
            )
        )
    write_register(ref / "enhetsregister.csv", register)
    for kva in KVA_SOURCE.glob("kva_*.csv"):
        shutil.copyfile(kva, ref / kva.name)
    pool = PatientPool(rng, max(2000, rows // 3))
    write_listing(listing_path(ref, PERIOD), pool, register, seed)
    codes = kva_list(2026, ref)
    # VGP units are larger than REH units, as in the region: three quarters of the rows are VGP.
    vgp_rows = int(rows * 0.75) // max(1, sum(u.filtyp == "VGP" for u in register))
    reh_rows = (rows - vgp_rows * sum(u.filtyp == "VGP" for u in register)) // max(
        1, sum(u.filtyp == "REH" for u in register)
    )
    lines = ["file;received_at"]
    opens = dt.datetime(2026, 11, 1, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    span = (dt.datetime(2026, 11, 4, 14, 55, tzinfo=opens.tzinfo) - opens).total_seconds()
    for i, u in enumerate(register):
        n = vgp_rows if u.filtyp == "VGP" else reh_rows
        cols = generate_visits(
            file_type=u.filtyp,
            hsaid=u.hsaid,
            period=PERIOD,
            rows=n,
            seed=seed + i,
            kva_codes=codes,
            pool=pool,
            id_prefix=f"U{i}",
        )
        add_defects(cols, count=max(1, n // 500), seed=seed + i)
        name = f"{u.filtyp}_{u.hsaid}_{Period.parse(PERIOD).compact}_01.csv"
        (files / name).write_bytes(to_csv(cols, crlf=u.filtyp == "VGP"))
        at = opens + dt.timedelta(seconds=float(rng.uniform(0, span)))
        lines.append(f"{name};{at.isoformat()}")
    done.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def _intake_chunk(args: tuple[Any, list[tuple[str, str]]]) -> int:
    """One worker's fixed share of the month (``--split static``), on its own ledger connection."""
    from vardfil.app import open_app

    settings, jobs = args
    with open_app(settings, migrate=False) as app:  # the parent migrated the ledger
        return sum(_submit_one(app, path, at) for path, at in jobs)


_WORKER_APP: Any = None


def _report_peak_at_exit(peaks: str) -> None:
    """Make this worker write its peak RSS to ``peaks/<pid>`` when it exits.

    A pool's worker exits through multiprocessing's own exit function, which runs the finalizers
    registered here; the parent's ``VmHWM`` never counts its children, and ``RUSAGE_CHILDREN``
    keeps only the largest one.
    """
    from multiprocessing import util

    def write() -> None:
        (Path(peaks) / str(os.getpid())).write_text(f"{_high_water_mb():.1f}")

    util.Finalize(None, write, exitpriority=10)


def _worker_start(settings: Any, peaks: str) -> None:
    """A worker process of ``--split dynamic``: its application stays open for every file it takes."""
    global _WORKER_APP
    from vardfil.app import open_app

    _report_peak_at_exit(peaks)
    _WORKER_APP = open_app(settings, migrate=False)  # closed when the process ends


def _floor_start(peaks: str) -> None:
    """A worker of the parallel parse floor: pyarrow imported before the clock's files arrive, as
    the intake's workers import vardfil in their initializer."""
    import pyarrow.csv  # noqa: F401

    _report_peak_at_exit(peaks)


def _read_floor(path: str) -> int:
    """One file read by pyarrow with every column a string (the parse floor of one file)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    names = Path(path).open(encoding="utf-8").readline().rstrip("\r\n").split(";")
    table = pcsv.read_csv(
        path,
        parse_options=pcsv.ParseOptions(delimiter=";"),
        convert_options=pcsv.ConvertOptions(column_types={n: pa.string() for n in names}),
    )
    return table.num_rows


def _parallel_floor(paths: list[Path], workers: int, peaks: Path) -> float:
    """The parse floor over ``workers`` spawned processes, files handed out one at a time, timed
    from the pool's start as the intake is (its workers' start is part of its time too)."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    peaks.mkdir(exist_ok=True)
    t = time.perf_counter()
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=get_context("spawn"), initializer=_floor_start, initargs=(str(peaks),)
    ) as pool:
        sum(pool.map(_read_floor, [str(p) for p in paths], chunksize=1))
    return time.perf_counter() - t


def _peaks(folder: Path) -> list[float]:
    return [float(p.read_text()) for p in sorted(folder.iterdir())] if folder.is_dir() else []


def _intake_one(job: tuple[str, str]) -> int:
    return _submit_one(_WORKER_APP, *job)


def _submit_one(app: Any, path: str, at: str) -> int:
    from filespec.calendar import parse_instant
    from vardfil.month.intake import submit

    sub = submit(
        Path(path),
        file_name=Path(path).name,
        received_at=parse_instant(at),
        app=app,
        source_kind="dag",
        actor="job:bench",
    )
    return int(sub.kvittens["rows"]["total"])


def _high_water_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _maybe_profiled(on: bool, path: Path, fn):
    """``fn()``, under cProfile when ``on`` (the top 25 functions by cumulative time are printed)."""
    if not on:
        return fn()
    import cProfile
    import pstats

    prof = cProfile.Profile()
    result = prof.runcall(fn)
    prof.dump_stats(path)
    pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
    return result


def _scrape(app: Any) -> list[tuple[str, dict[str, str], float]]:
    """What ``/metrics`` would serve now (every process of the run, and the ledger's state)."""
    from scraped import samples

    from vardfil.metrics import exposition

    return samples(exposition(app, dt.datetime.now(dt.UTC)).decode())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", type=int, default=300)
    ap.add_argument("--rows", type=int, default=500_000)
    ap.add_argument("--scale", type=int, default=1, help="multiply the rows (10 for the national-scale month)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=HERE / "out")
    ap.add_argument("--keep", action="store_true", help="keep the run's ledger and outputs")
    ap.add_argument(
        "--workers",
        type=int,
        default=1,
        help="intake worker processes (what mapped Airflow tasks on several workers do)",
    )
    ap.add_argument(
        "--split",
        choices=["dynamic", "static"],
        default="dynamic",
        help="how files reach the workers: one at a time to whichever is free (as the scheduler hands "
        "mapped intake tasks to free worker slots), or a fixed share each decided up front",
    )
    ap.add_argument(
        "--all-workbooks",
        action="store_true",
        help="also write every unit workbook at once (vardfil report), outside the month's stages",
    )
    ap.add_argument(
        "--profile",
        choices=["close", "workbooks"],
        help="run that stage under cProfile (workbooks: with --all-workbooks); saves out/<stage>.prof",
    )
    ap.add_argument(
        "--until",
        choices=["intake", "close", "workbooks"],
        default="workbooks",
        help="stop after that stage (to profile an early stage quickly)",
    )
    args = ap.parse_args(argv)
    rows = args.rows * args.scale
    t0 = time.perf_counter()
    month = build_month(args.out / f"month-{args.units}-{rows}-{args.seed}", args.units, rows, args.seed)
    print(f"month: {month} (generated/cached in {time.perf_counter() - t0:.1f} s)")

    import pyarrow as pa
    import pyarrow.csv as pcsv

    from filespec.calendar import Period, parse_instant
    from vardfil.app import open_app
    from vardfil.month.close import close_period
    from vardfil.month.intake import submit
    from vardfil.publish.workbooks import unit_workbook_file, write_region_workbook, write_workbooks
    from vardfil.settings import load_settings

    arrivals = [line.split(";") for line in (month / "arrivals.csv").read_text().splitlines()[1:]]
    paths = [month / "files" / name for name, _ in arrivals]
    size = sum(p.stat().st_size for p in paths)
    floors = []
    for _ in range(3):  # the best of three, as bench_validate.py: one pass moved by 2x on this machine
        t = time.perf_counter()
        for p in paths:
            names = p.open(encoding="utf-8").readline().rstrip("\r\n").split(";")
            pcsv.read_csv(
                p,
                parse_options=pcsv.ParseOptions(delimiter=";"),
                convert_options=pcsv.ConvertOptions(column_types={n: pa.string() for n in names}),
            )
        floors.append(time.perf_counter() - t)
    floor = min(floors)
    home = Path(tempfile.mkdtemp(prefix="vardfil-bench-"))
    intake_peaks = home / "peaks-intake"
    intake_peaks.mkdir()
    # The same floor over as many processes as the intake uses, started the same way (spawned,
    # a file at a time): the intake's time is parallel, and its ratio must be to a parallel floor.
    workers = max(1, args.workers)
    par_floor = (
        floor if workers == 1 else min(_parallel_floor(paths, workers, home / f"peaks-floor-{i}") for i in range(3))
    )

    settings = load_settings(
        {"VARDFIL_HOME": str(home), "VARDFIL_REFERENCE": str(month / "reference"), "VARDFIL_PSEUDONYM_KEY": "bench-key"}
    )
    app = open_app(settings)
    app.ledger  # noqa: B018 - migrate here, before the workers start
    stages = {}
    t = time.perf_counter()
    total_rows = 0
    if args.workers <= 1:
        for (name, at), p in zip(arrivals, paths, strict=True):
            sub = submit(
                p, file_name=name, received_at=parse_instant(at), app=app, source_kind="cli", actor="job:bench"
            )
            total_rows += sub.kvittens["rows"]["total"]
    else:
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context

        jobs = [(str(p), at) for (_, at), p in zip(arrivals, paths, strict=True)]
        if args.split == "static":
            chunks = [jobs[i :: args.workers] for i in range(args.workers)]
            with ProcessPoolExecutor(
                max_workers=args.workers,
                mp_context=get_context("spawn"),
                initializer=_report_peak_at_exit,
                initargs=(str(intake_peaks),),
            ) as pool:
                total_rows = sum(pool.map(_intake_chunk, [(settings, c) for c in chunks]))
        else:
            with ProcessPoolExecutor(
                max_workers=args.workers,
                mp_context=get_context("spawn"),
                initializer=_worker_start,
                initargs=(settings, str(intake_peaks)),
            ) as pool:
                total_rows = sum(pool.map(_intake_one, jobs, chunksize=1))
    stages[f"intake (store, validate, kvittens, Parquet, ledger; {args.workers} worker(s))"] = time.perf_counter() - t
    t = time.perf_counter()
    summary = (
        {"units": []}
        if args.until == "intake"
        else _maybe_profiled(
            args.profile == "close",
            args.out / "close.prof",
            lambda: close_period(PERIOD, at=Period.parse(PERIOD).deadline, app=app, actor="job:bench"),
        )
    )
    if args.until != "intake":
        stages["close (every underlag, Parquet datasets)"] = time.perf_counter() - t
    t = time.perf_counter()
    books = [] if args.until != "workbooks" else [write_region_workbook(PERIOD, app=app)]
    if args.until == "workbooks":
        stages["publish (the region workbook)"] = time.perf_counter() - t
    # A unit's first download: its workbook written from the close's record (what the portal's
    # large lane does). The ten units with the most rows, and ten others.
    downloads: list[float] = []
    if args.until == "workbooks":
        by_rows = sorted(zip((p.stat().st_size for p in paths), arrivals, strict=True), reverse=True)
        hsaids = [name.split("_")[1] for _, (name, _) in by_rows]
        chosen = hsaids[:10] + hsaids[10 :: max(1, len(hsaids) // 10)][:10]
        for hsaid in chosen:
            t = time.perf_counter()
            unit_workbook_file(app, PERIOD, app.reference.units[hsaid])
            downloads.append(time.perf_counter() - t)
    every = None
    if args.all_workbooks and args.until == "workbooks":
        t = time.perf_counter()
        _maybe_profiled(
            args.profile == "workbooks", args.out / "workbooks.prof", lambda: write_workbooks(PERIOD, app=app)
        )
        every = time.perf_counter() - t
    scrape = _scrape(app)
    app.close()

    import platform

    import polars

    print(f"machine: {platform.machine()}, Python {platform.python_version()}, polars {polars.__version__}")
    print(
        f"files: {len(paths)}, rows: {total_rows:,}, {size / 1e6:.0f} MB; units in the close: {len(summary['units'])}; "
        f"workbooks: {len(books)}"
    )
    print(f"parse floor, all files (pyarrow read_csv, all strings), one process: {floor:.2f} s (best of 3)")
    if workers > 1:
        print(
            f"parse floor, all files over {workers} spawned processes (as the intake, pool start included): "
            f"{par_floor:.2f} s (best of 3)"
        )
    end_to_end = sum(stages.values())
    for stage, seconds in stages.items():
        print(f"  {stage:<55} {seconds:7.2f} s  {100 * seconds / end_to_end:4.0f} %")
    intake = next(v for k, v in stages.items() if k.startswith("intake"))
    # The intake runs over ``workers`` processes, the close and publish in the parent alone: the
    # intake's ratio is to the floor measured over the same processes; the whole month's ratio, as
    # in every earlier row of RESULTS.md, to the one-process floor (so it mixes the two).
    print(f"intake: {intake:.2f} s = {intake / par_floor:.1f}x the parse floor over the same {workers} process(es)")
    print(
        f"end to end: {end_to_end:.2f} s = {end_to_end / floor:.1f}x the one-process parse floor   "
        f"(target <= 30 s, <= 32x)"
    )
    from scraped import quantile, total

    close_stage = next((v for k, v in stages.items() if k.startswith("close")), None)
    print(
        f"/metrics, as an operator sees it: close "
        f"{total(scrape, 'vardfil_close_duration_seconds_sum'):.2f} s "
        f"(stage timer {close_stage or 0:.2f} s), {total(scrape, 'vardfil_close_lines_total'):.0f} lines; "
        f"validation p95 {quantile(scrape, 'vardfil_validation_duration_seconds', 0.95):.2f} s over "
        f"{total(scrape, 'vardfil_validation_duration_seconds_count'):.0f} files (every intake process); "
        f"ledger: {total(scrape, 'vardfil_files'):.0f} files"
    )
    if downloads:
        ordered = sorted(downloads)
        print(
            f"a unit's first download (workbook written on demand, {len(ordered)} units): "
            f"p50 {ordered[len(ordered) // 2]:.2f} s, max {ordered[-1]:.2f} s   (target < 1 s)"
        )
    if every is not None:
        print(f"every unit workbook at once (vardfil report, outside the month): {every:.2f} s")
    parent = _high_water_mb()
    children = _peaks(intake_peaks)
    largest_child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    print(f"peak RSS (largest file {max(p.stat().st_size for p in paths) / 1e6:.1f} MB), every process of the run:")
    print(f"  parent (generation, floor, {'intake, ' if workers == 1 else ''}close, publish): {parent:.0f} MB")
    for i, mb in enumerate(children):
        print(f"  intake worker {i + 1}: {mb:.0f} MB")
    if workers > 1:
        floor_children = _peaks(home / "peaks-floor-0")
        print(
            f"  (parallel floor's workers: {', '.join(f'{mb:.0f}' for mb in floor_children)} MB; "
            f"largest child of the run by getrusage: {largest_child:.0f} MB)"
        )
        if len(children) != workers:
            print(f"  warning: {len(children)} of {workers} intake workers reported their peak")
    print(
        f"  sum of the peaks: {parent + sum(children):.0f} MB (an upper bound of what was resident at once; "
        f"the workers' peaks were reached during the intake, the parent's may be later)"
    )
    if args.keep:
        print(f"kept: {home}")
    else:
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
