"""The sample month through the real ``vardfil_close`` DAG under Airflow's CeleryExecutor.

What a scaled-out deployment does, on one machine: Redis as the Celery broker, PostgreSQL for
Airflow's metadata, PostgreSQL for vardfil's ledger, the API server, the scheduler, the DAG
processor and two Celery workers (``w1``, ``w2``) as separate processes. The sample files are put
in the inbox with their arrival times, a run of ``vardfil_close`` is triggered at the period's
deadline, and the script waits for it, then prints which worker ran each task and checks that the
underlag equals the one the same month gives without Airflow (``vardfil sample --direct``).

    bash scripts/celery-trial.sh            # installs the celery extra, starts what is missing

Everything it creates is temporary (a folder under /tmp, two databases ``vardfil_trial_*``, Redis
database 7) and removed at the end; ``--keep`` keeps the folder and the databases. Exit 0 when the
run succeeded, its tasks ran on both workers, and the underlag matched.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PERIOD = "2026-10"
REDIS_DB = 7
DBS = ("vardfil_trial_airflow", "vardfil_trial_ledger")


def worker_hostname() -> str:
    """Airflow's ``hostname_callable`` for the trial: the Celery worker's name, so the metadata
    database records which worker ran a task (both workers share one machine)."""
    return os.environ.get("VARDFIL_TRIAL_WORKER") or socket.gethostname()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _admin(pg: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(pg, autocommit=True) as conn:
        conn.execute(sql)


def _url(pg: str, db: str, driver: str = "postgresql+psycopg") -> str:
    base = pg.rsplit("/", 1)[0].split("://", 1)[1]
    return f"{driver}://{base}/{db}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test", help="an admin connection")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379")
    ap.add_argument("--timeout", type=int, default=600)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)
    args.pg = args.pg.replace("+psycopg", "")  # a libpq URL for psycopg.connect

    import redis

    broker = f"{args.redis}/{REDIS_DB}"
    redis.Redis.from_url(broker).ping()
    work = Path(tempfile.mkdtemp(prefix="vardfil-celery-"))
    for db in DBS:
        _admin(args.pg, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        _admin(args.pg, f"CREATE DATABASE {db}")
    port = _free_port()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(work / "airflow"),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "celery_trial.worker_hostname",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API_AUTH__JWT_SECRET": "vardfil-celery-trial",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": _url(args.pg, DBS[0]),
        # Airflow's async engine would default to asyncpg; psycopg 3 does async itself.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": _url(args.pg, DBS[0], "postgresql+psycopg_async"),
        "AIRFLOW__CELERY__BROKER_URL": broker,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + _url(args.pg, DBS[0]),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "scripts"), os.environ.get("PYTHONPATH")])),
        "VARDFIL_HOME": str(work / "vardfil"),
        "VARDFIL_DATABASE_URL": _url(args.pg, DBS[1]),
        "VARDFIL_REFERENCE": str(ROOT / "sample_data" / "reference"),
        "VARDFIL_PSEUDONYM_KEY": "celery-trial",
    }
    airflow = [sys.executable, "-m", "airflow"]
    logs = work / "logs"
    logs.mkdir(parents=True)
    procs: list[subprocess.Popen] = []

    def start(name: str, *cmd: str, **extra: str) -> None:
        fh = open(logs / f"{name}.log", "w")
        procs.append(
            subprocess.Popen(
                [*airflow, *cmd], env={**env, **extra}, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
            )
        )

    ok = False
    try:
        with open(logs / "db-migrate.log", "w") as fh:
            subprocess.run([*airflow, "db", "migrate"], env=env, check=True, stdout=fh, stderr=subprocess.STDOUT)
        start("api-server", "api-server", "--port", str(port))
        start("scheduler", "scheduler")
        start("dag-processor", "dag-processor")
        for w in ("w1", "w2"):
            start(
                f"worker-{w}",
                "celery",
                "worker",
                "--concurrency",
                "2",
                "--celery-hostname",
                f"{w}@%h",
                VARDFIL_TRIAL_WORKER=w,
            )

        from filespec.calendar import Period
        from vardfil.sample import stage_inbox

        staged = stage_inbox(work / "vardfil" / "inbox")
        deadline = Period.parse(PERIOD).deadline
        print(f"trial folder {work}; {len(staged)} files in the inbox; API server on port {port}")
        _wait_for_dag(airflow, env, args.timeout)
        subprocess.run(
            [*airflow, "dags", "trigger", "vardfil_close", "--logical-date", deadline.isoformat()],
            env=env,
            check=True,
            capture_output=True,
        )
        subprocess.run([*airflow, "dags", "unpause", "vardfil_close"], env=env, check=True, capture_output=True)
        t = time.perf_counter()
        state = _wait_for_run(_url(args.pg, DBS[0], "postgresql"), args.timeout)
        print(f"run of vardfil_close: {state} after {time.perf_counter() - t:.0f} s")
        by_worker = _tasks_by_worker(_url(args.pg, DBS[0], "postgresql"))
        for (worker, task), n in sorted(by_worker.items()):
            print(f"  {worker:>4}  {task:<16} {n:>3} task instance(s)")
        workers = {w for w, _ in by_worker}
        same = _same_underlag(work, env)
        print(f"workers that ran tasks: {sorted(workers)}; underlag equal to the run without Airflow: {same}")
        ok = state == "success" and {"w1", "w2"} <= workers and same
    finally:
        _stop(procs, env["AIRFLOW_HOME"])
        redis.Redis.from_url(broker).flushdb()
        if not ok:
            print(f"logs: {logs}")
        if not args.keep and ok:
            for db in DBS:
                _admin(args.pg, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
            shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


def _stop(procs: list[subprocess.Popen], airflow_home: str) -> None:
    """Stop every process of the trial: the process groups started, then anything left that runs
    with this trial's AIRFLOW_HOME (task supervisors, log servers), so no stale worker stays
    subscribed to the broker."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in procs:
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 15
        while sig == signal.SIGTERM and time.monotonic() < deadline and any(p.poll() is None for p in procs):
            time.sleep(0.5)
    marker = f"AIRFLOW_HOME={airflow_home}".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if marker in (proc / "environ").read_bytes().split(b"\0"):
                os.kill(int(proc.name), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            pass


def _wait_for_dag(airflow: list[str], env: dict, timeout: int) -> None:
    """Until the DAG processor has parsed ``vardfil_close`` into the metadata database."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        out = subprocess.run([*airflow, "dags", "list", "-o", "json"], env=env, capture_output=True, text=True)
        if out.returncode == 0 and "vardfil_close" in out.stdout:
            return
        time.sleep(3)
    raise TimeoutError("vardfil_close was never parsed")


def _wait_for_run(url: str, timeout: int) -> str:
    """The state of the newest vardfil_close run once it has finished (read from the metadata DB)."""
    import psycopg

    end = time.monotonic() + timeout
    state = "none"
    while time.monotonic() < end:
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT state FROM dag_run WHERE dag_id = 'vardfil_close' ORDER BY id DESC LIMIT 1"
            ).fetchone()
        state = row[0] if row else "none"
        if state in ("success", "failed"):
            return state
        time.sleep(2)
    return f"{state} (timed out)"


def _tasks_by_worker(url: str) -> dict[tuple[str, str], int]:
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT hostname, task_id, count(*) FROM task_instance WHERE dag_id = 'vardfil_close' "
            "AND state = 'success' GROUP BY hostname, task_id"
        ).fetchall()
    return {(h, t): n for h, t, n in rows}


def _same_underlag(work: Path, env: dict) -> bool:
    """The Airflow run's underlag Parquet against ``vardfil sample --direct`` in a fresh home."""
    import polars as pl

    direct_home = work / "direct"
    direct_env = {k: v for k, v in env.items() if not k.startswith(("AIRFLOW", "VARDFIL_DATABASE_URL"))}
    direct_env["VARDFIL_HOME"] = str(direct_home)
    subprocess.run(
        [sys.executable, "-m", "vardfil.cli", "sample", "--direct", "--month-only"],
        env=direct_env,
        check=True,
        capture_output=True,
    )
    got = pl.read_parquet(work / "vardfil" / "underlag" / PERIOD / "underlag.parquet")
    want = pl.read_parquet(direct_home / "underlag" / PERIOD / "underlag.parquet")
    return got.equals(want)


if __name__ == "__main__":
    sys.exit(main())
