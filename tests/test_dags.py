"""The Airflow side: DAGs parse, stay light, are wired as designed, schedule on the third vardag,
and run the sample month end to end with the same outputs as the CLI path."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import UNDERLAG_COLUMNS
from optional import AIRFLOW, optional_import

from sample_data import SAMPLE_DIR

airflow = optional_import("airflow", AIRFLOW)

from test_calendar import THIRD_VARDAG  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DAGS = ROOT / "dags"


def _airflow_env(tmp: Path, home: Path) -> dict:
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "VARDFIL_HOME": str(home),
        "VARDFIL_REFERENCE": str(ROOT / "sample_data" / "reference"),
        # DAG.test() of Airflow 3.3.2 fails a DAG with a Deadline Alert (vardfil.airflow.alerts);
        # the alerts themselves: test_each_dag_carries_its_deadline_alert.
        "VARDFIL_DEADLINE_ALERTS": "0",
    }
    for var in ("VARDFIL_DATABASE_URL", "VARDFIL_STORE", "VARDFIL_OUTPUT", "VARDFIL_INBOX"):
        env.pop(var, None)
    return env


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_dag_folder_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert sorted(dagbag.dags) == ["vardfil_close", "vardfil_nightly"]


# What the scheduler must never import to parse a DAG file (it parses every file every 30 s).
HEAVY_MODULES = ("pandas", "polars", "pandera", "pyarrow", "numpy", "openpyxl", "sqlalchemy.orm", "vardfil.ledger")


@pytest.mark.parametrize("dag_file", sorted(p.name for p in DAGS.glob("*.py")))
def test_importing_a_dag_file_stays_light(dag_file):
    # What the DAG file adds to what ``airflow.sdk`` already imports (Airflow brings SQLAlchemy's
    # ORM itself, so it counts only when the DAG file is what brings it).
    code = (
        "import runpy, sys, airflow.sdk; before = set(sys.modules); "
        f"runpy.run_path({str(DAGS / dag_file)!r}); "
        f"heavy = [m for m in {HEAVY_MODULES!r} if m in sys.modules and m not in before]; "
        "print('HEAVY:' + ','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    # Airflow's own deprecation notices go to stdout too: the answer is the marked line.
    (answer,) = [line for line in out.stdout.splitlines() if line.startswith("HEAVY:")]
    assert answer == "HEAVY:", out.stdout
    top = [line for line in (DAGS / dag_file).read_text().splitlines() if line.startswith(("import ", "from "))]
    assert all(
        line.startswith(("from __future__", "import datetime", "from airflow.sdk ", "from vardfil.airflow."))
        for line in top
    ), top


def _edges(dag) -> set[tuple[str, str]]:
    return {(t.task_id, d) for t in dag.tasks for d in t.downstream_task_ids}


def test_task_graphs_are_as_designed(dagbag):
    nightly = dagbag.dags["vardfil_nightly"]
    assert _edges(nightly) == {
        ("list_new_files", "intake"),
        ("intake", "due_periods"),
        ("intake", "reminders"),
        ("intake", "summary"),
        ("due_periods", "close"),
        ("close", "workbooks"),
        ("close", "summary"),
        ("workbooks", "summary"),
        ("reminders", "summary"),
        ("directory_sync", "summary"),  # the catalogue (KIV/HSA), when one is configured
    }
    close = dagbag.dags["vardfil_close"]
    assert _edges(close) == {
        ("list_new_files", "intake"),
        ("intake", "wait_for_dispens"),  # the close waits for the period's last dispens
        ("wait_for_dispens", "close"),
        ("close", "workbooks"),
    }
    assert type(close.timetable).__name__ == "ThirdVardagTimetable"
    assert [o.uri.rstrip("/") for o in close.get_task("close").outlets] == ["vardfil://underlag"]


@pytest.mark.parametrize(
    ("dag_id", "interval", "what"),
    [("vardfil_close", dt.timedelta(minutes=30), "close"), ("vardfil_nightly", dt.timedelta(hours=4), "nightly")],
)
def test_each_dag_carries_its_deadline_alert(dagbag, dag_id, interval, what):
    from airflow.sdk import AsyncCallback, DeadlineReference

    (alert,) = dagbag.dags[dag_id].deadline
    # From the run's logical date: the close's is the deadline itself (15:00), the nightly's 02:00.
    assert alert.reference == DeadlineReference.DAGRUN_LOGICAL_DATE and alert.interval == interval
    assert isinstance(alert.callback, AsyncCallback)
    assert alert.callback.path == "vardfil.airflow.alerts.deadline_missed" and alert.callback.kwargs == {"what": what}
    if dag_id == "vardfil_nightly":  # runs at 02:00, so the alert is at 06:00
        assert dagbag.dags[dag_id].timetable.expression == "0 2 * * *"


def test_a_missed_deadline_mails_the_operators_once(tmp_path, monkeypatch):
    """The callback as the triggerer runs it, with the context Airflow 3.3 gives it."""
    import asyncio
    import email
    from email import policy

    from vardfil.airflow.alerts import deadline_missed

    monkeypatch.setenv("VARDFIL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VARDFIL_OPERATOR_EMAIL", "jour@vgregion.example, drift@vgregion.example")
    for var in ("VARDFIL_DATABASE_URL", "VARDFIL_STORE", "VARDFIL_SMTP_URL"):
        monkeypatch.delenv(var, raising=False)
    context = {
        "dag_run": {
            "dag_id": "vardfil_close",
            "dag_run_id": "scheduled__2026-12-03T14:00:00+00:00",
            "logical_date": "2026-12-03T14:00:00Z",
            "state": "running",
        },
        "deadline": {"id": "d1", "deadline_time": "2026-12-03T14:30:00Z"},
    }
    assert asyncio.run(deadline_missed(context=context, what="close")) is True
    assert asyncio.run(deadline_missed(context=context, what="close")) is False  # once per run
    (eml,) = (tmp_path / "home" / "outbox").glob("*.eml")
    msg = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert msg["To"] == "drift@vgregion.example, jour@vgregion.example"
    assert msg["Subject"] == "Stängningen av 2026-11 är inte klar 30 minuter efter tidsgränsen"
    text = msg.get_body(("plain",)).get_content()
    assert "tidsgräns 2026-12-03 15:00" in text and "larmtiden 2026-12-03 15:30" in text and "running" in text


def test_timetable_runs_at_15_on_the_third_vardag_2026_2027():
    from airflow.timetables.base import TimeRestriction
    from pendulum import datetime as pdt

    from vardfil.airflow.plugin import ThirdVardagTimetable

    tt = ThirdVardagTimetable()
    restriction = TimeRestriction(earliest=pdt(2026, 1, 1, tz="UTC"), latest=pdt(2027, 12, 31, tz="UTC"), catchup=True)
    runs, last = [], None
    while (info := tt.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)) is not None:
        runs.append(info.run_after)
        last = info.data_interval
    stockholm = [r.in_timezone("Europe/Stockholm") for r in runs]
    assert [(r.year, r.month, r.day) for r in stockholm] == [
        (y, m, THIRD_VARDAG[y][m - 1]) for y in (2026, 2027) for m in range(1, 13)
    ]
    assert all((r.hour, r.minute) == (15, 0) for r in stockholm)
    assert {r.utcoffset() for r in stockholm} == {dt.timedelta(hours=1), dt.timedelta(hours=2)}
    manual = tt.infer_manual_data_interval(run_after=pdt(2026, 11, 20, 9, tz="UTC"))
    assert manual.end.in_timezone("Europe/Stockholm").isoformat() == "2026-11-04T15:00:00+01:00"


def _dag_test(env: dict, dag_id: str, instant: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True, timeout=300
    )
    code = (
        "import datetime as dt, sys; from airflow.dag_processing.dagbag import DagBag; "
        f"dag = DagBag(dag_folder={str(DAGS)!r}).dags[{dag_id!r}]; "
        f"run = dag.test(logical_date=dt.datetime.fromisoformat({instant!r})); "
        "print('STATE', run.state); sys.exit(0 if str(run.state).endswith('success') else 1)"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]


@pytest.fixture(scope="module")
def cli_month(tmp_path_factory):
    """The sample month through the CLI path (vardfil sample), for comparison."""
    home = tmp_path_factory.mktemp("cli")
    env = _airflow_env(home, home)
    subprocess.run(
        [sys.executable, "-m", "vardfil.cli", "sample", "--direct", "--month-only"],
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    return home


@pytest.mark.parametrize(
    ("dag_id", "instant"),
    [("vardfil_close", "2026-11-04T15:00:00+01:00"), ("vardfil_nightly", "2026-11-05T02:00:00+01:00")],
)
def test_dag_runs_the_sample_month_like_the_cli(tmp_path, cli_month, dag_id, instant):
    import polars as pl
    import pyarrow.parquet as pq

    from vardfil.sample import stage_inbox

    home = tmp_path / "home"
    stage_inbox(home / "inbox")
    env = _airflow_env(tmp_path, home)
    _dag_test(env, dag_id, instant)
    assert list((home / "inbox").iterdir()) == []
    for name in ("underlag.parquet", "besok.parquet", "acg.parquet"):
        a = pl.read_parquet(home / "underlag" / "2026-10" / name)
        b = pl.read_parquet(cli_month / "underlag" / "2026-10" / name)
        if "pseudonym" in a.columns:  # each home has its own key: compare the rest, and the pairing
            assert a["pseudonym"].n_unique() == b["pseudonym"].n_unique()
            a, b = a.drop("pseudonym"), b.drop("pseudonym")
        assert a.equals(b), name
    assert pq.read_schema(home / "underlag" / "2026-10" / "underlag.parquet").names == UNDERLAG_COLUMNS
    # The DAG publishes the region workbook; a unit's is written when the unit first downloads it.
    books = sorted(p.name for p in (home / "underlag" / "2026-10").rglob("*.xlsx"))
    assert books == ["region_2026-10.xlsx"] and (cli_month / "underlag" / "2026-10" / books[0]).is_file()
    # A rerun of the same run finds everything done and changes nothing.
    before = (home / "underlag" / "2026-10" / "underlag.parquet").read_bytes()
    _dag_test(env, dag_id, instant)
    assert (home / "underlag" / "2026-10" / "underlag.parquet").read_bytes() == before
    status = json.loads(
        subprocess.run(
            [sys.executable, "-m", "vardfil.cli", "status", "2026-10", "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    # Every unit of the register active in October is in the status (the register read here, not
    # by the code under test), each with a gällande file.
    with open(SAMPLE_DIR / "reference" / "enhetsregister.csv", encoding="utf-8") as fh:
        active = {
            r["hsaid"]
            for r in csv.DictReader(fh, delimiter=";")
            if r["giltig_tom"] in ("", None) or r["giltig_tom"] >= "2026-10-31"
        }
    assert len(active) == 5 and {u["unit_hsaid"] for u in status["units"]} == active
    assert all(u["gallande"] for u in status["units"])
