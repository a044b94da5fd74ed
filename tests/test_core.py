"""The application core: the gällande rule written once, one period status for every front door,
the composition root, the exception tree and the DAG tasks' retry policy."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import file_name, make_file

from filespec.calendar import parse_instant
from vardfil.delivery import period_status
from vardfil.errors import DispensRefused, Refused, StoreError, Transient, VardfilError
from vardfil.ledger import newest_usable

T0 = parse_instant("2026-11-03T10:00:00+01:00")


def _f(id_: int, status: str, minutes: int) -> SimpleNamespace:
    return SimpleNamespace(id=id_, status=status, received_at=T0 + dt.timedelta(minutes=minutes))


FILES = [_f(1, "GODKAND", 0), _f(2, "DELVIS_GODKAND", 30), _f(3, "AVVISAD", 60), _f(4, "GODKAND", 24 * 60 + 5 * 60)]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, 4),  # the newest usable file
        ({"as_of": T0 + dt.timedelta(minutes=59)}, 2),  # a close at T sees what had arrived at T
        ({"as_of": T0 + dt.timedelta(minutes=30)}, 2),  # "up to T" includes T
        ({"received_before": T0 + dt.timedelta(minutes=30)}, 1),  # "before the deadline" excludes it
        ({"excluding_id": 4}, 2),  # what a resubmission replaces; the AVVISAD file never counts
        ({"as_of": T0 - dt.timedelta(minutes=1)}, None),
    ],
)
def test_the_gallande_rule(kwargs, expected):
    got = newest_usable(FILES, **kwargs)
    assert (got.id if got else None) == expected


def test_a_tie_on_the_arrival_instant_goes_to_the_file_recorded_last():
    twins = [_f(7, "GODKAND", 0), _f(5, "GODKAND", 0)]
    assert newest_usable(twins).id == 7


def test_period_status_is_what_the_cli_prints_and_counts_dispens(app):
    from conftest import cli

    from vardfil.month.dispens import grant_dispens
    from vardfil.month.intake import submit

    vgp = "SE2321000131-E000000001001"
    grant_dispens(
        app,
        unit_hsaid=vgp,
        period="2026-10",
        until=parse_instant("2026-11-06T15:00:00+01:00"),
        reason="systembyte",
        actor="job:analytiker",
    )
    submit(make_file(), file_name=file_name(), received_at=parse_instant("2026-11-05T09:00:00+01:00"), app=app)
    status = period_status(app.ledger, app.reference, "2026-10")
    mine = next(u for u in status.units if u.unit.hsaid == vgp)
    assert mine.delivery.value == "i tid" and mine.dispens == parse_instant("2026-11-06T15:00:00+01:00")
    assert mine.files_received == 1 and mine.counted_file is mine.gallande
    others = [u for u in status.units if u.unit.hsaid != vgp]
    assert others and all(u.delivery.value == "saknas" for u in others)
    assert {u.unit.hsaid for u in status.missing()} == {u.unit.hsaid for u in others}
    # The same answer as the CLI's JSON, which the region's tooling reads.
    import json

    code, out = cli("status", "2026-10", "--json")
    assert code == 0 and json.loads(out) == status.to_dict()
    # As of an instant before the file arrived, the unit had nothing (what a reminder sees).
    early = period_status(app.ledger, app.reference, "2026-10", as_of=parse_instant("2026-11-04T09:00:00+01:00"))
    assert next(u for u in early.units if u.unit.hsaid == vgp).gallande is None


@pytest.mark.parametrize(
    ("unit", "until", "reason", "says"),
    [
        ("SE2321000131-E000000009999", "2026-11-06T15:00:00+01:00", "x", "finns inte"),
        ("SE2321000131-E000000001001", "2026-11-04T15:00:00+01:00", "x", "efter den ordinarie"),
        ("SE2321000131-E000000001001", "2026-11-06T15:00:00+01:00", "  ", "skäl"),
    ],
)
def test_a_dispens_is_refused_with_the_reason_in_swedish(app, unit, until, reason, says):
    from vardfil.month.dispens import grant_dispens

    with pytest.raises(DispensRefused, match=says):
        grant_dispens(app, unit_hsaid=unit, period="2026-10", until=parse_instant(until), reason=reason, actor="job:a")
    assert app.ledger.decisions.dispens_for_period("2026-10") == {}


def test_the_cli_refuses_a_dispens_for_an_unknown_unit(app_env):
    from conftest import cli

    code, _ = cli(
        "dispens",
        "SE2321000131-E000000009999",
        "2026-10",
        "--until",
        "2026-11-06T15:00:00+01:00",
        "--reason",
        "systembyte",
    )
    assert code == 2


def test_every_exception_of_vardfil_has_one_root():
    import inspect

    import filespec.errors
    import filespec.reference
    import validators.reader
    import validators.rules
    import vardfil.cli
    import vardfil.errors

    classes = {
        c
        for m in (filespec.errors, filespec.reference, validators.reader, validators.rules, vardfil.errors, vardfil.cli)
        for _, c in inspect.getmembers(m, inspect.isclass)
        if issubclass(c, Exception)
    }
    ours = {c for c in classes if c.__module__.split(".")[0] in ("filespec", "validators", "vardfil")}
    assert ours and all(issubclass(c, VardfilError) for c in ours), [c for c in ours if not issubclass(c, VardfilError)]
    assert {c for c in ours if c.retryable} == {c for c in ours if issubclass(c, Transient)}
    assert issubclass(StoreError, Transient) and not issubclass(DispensRefused, Transient)
    assert issubclass(vardfil.cli.UsageError, Refused)


def test_dag_tasks_retry_only_what_a_retry_can_mend():
    from airflow.sdk.exceptions import AirflowFailException

    from vardfil.airflow.tasks import retry_only_transient

    def raising(e):
        @retry_only_transient
        def task():
            raise e

        return task

    with pytest.raises(StoreError):  # transient: raised as it is, so Airflow retries the task
        raising(StoreError("disk away"))()
    for fault in (DispensRefused("nej"), KeyError("a bug")):
        with pytest.raises(AirflowFailException):  # fails at once, retries left or not
            raising(fault)()


@pytest.mark.parametrize("fault", [StoreError("disk away"), KeyError("a bug")])
def test_a_dag_intake_batch_takes_every_file_it_can_and_then_fails(app_env, monkeypatch, fault):
    """One intake task takes a batch of inbox files in one process (VARDFIL_INTAKE_BATCH). A file
    that fails stays in the inbox, the others are taken, and the task fails with the fault; its
    retry skips what was taken and takes the rest."""
    import vardfil.month.intake as intake
    from vardfil.airflow.tasks import intake_batch, new_inbox_batches
    from vardfil.month.intake import waiting_files
    from vardfil.sample import stage_inbox

    stage_inbox(app_env.inbox)
    waiting = [str(p) for p in waiting_files(app_env.inbox)]
    monkeypatch.setenv("VARDFIL_INTAKE_BATCH", "3")
    batches = new_inbox_batches()
    assert [len(b) for b in batches] == [3, 3, 1] and [p for b in batches for p in b] == waiting
    first = batches[0]
    real = intake.submit

    def failing(source, **kw):  # type: ignore[no-untyped-def]
        if kw["file_name"] == Path(first[1]).name:
            raise fault
        return real(source, **kw)

    monkeypatch.setattr(intake, "submit", failing)
    from airflow.sdk.exceptions import AirflowFailException

    # A transient fault is raised as it is (Airflow retries); a bug fails the task at once.
    with pytest.raises(StoreError if isinstance(fault, StoreError) else AirflowFailException):
        intake_batch(first)
    assert [Path(p).exists() for p in first] == [False, True, False]
    monkeypatch.setattr(intake, "submit", real)
    again = intake_batch(first)  # the retry
    assert [r.get("skipped", False) for r in again] == [True, False, True] and again[1]["new"]
    assert not any(Path(p).exists() for p in first)


def test_the_ledger_reports_an_unreachable_database_as_transient(tmp_path):
    from vardfil.errors import DatabaseBusy
    from vardfil.ledger import Ledger

    with pytest.raises(DatabaseBusy) as caught:
        Ledger("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    assert caught.value.retryable


def test_open_app_builds_nothing_it_is_not_asked_for(tmp_path):
    from vardfil.app import open_app
    from vardfil.settings import load_settings

    app = open_app(load_settings({"VARDFIL_HOME": str(tmp_path / "home")}), reference=tmp_path / "ref")
    assert app.settings.reference == (tmp_path / "ref").resolve()
    app.close()  # nothing opened: no database file, no folders
    assert not (tmp_path / "home").exists()


@pytest.mark.parametrize("operator", [None, "streaming"])
def test_open_app_runs_small_queries_in_memory_unless_the_operator_chose(tmp_path, monkeypatch, operator):
    import os

    import polars as pl

    from vardfil.app import open_app
    from vardfil.settings import load_settings

    before = os.environ.get("POLARS_ENGINE_AFFINITY")
    try:
        if operator is None:
            monkeypatch.delenv("POLARS_ENGINE_AFFINITY", raising=False)
        else:
            monkeypatch.setenv("POLARS_ENGINE_AFFINITY", operator)
        pl.Config.set_engine_affinity(operator)  # polars reads the variable when told to
        open_app(load_settings({"VARDFIL_HOME": str(tmp_path / "home")})).close()
        assert os.environ["POLARS_ENGINE_AFFINITY"] == (operator or "in-memory")
    finally:
        pl.Config.set_engine_affinity(before)  # type: ignore[arg-type]


def test_settings_have_no_sample_default(tmp_path):
    from vardfil.settings import load_settings

    s = load_settings({"VARDFIL_HOME": str(tmp_path)})
    assert s.reference == tmp_path.resolve() / "reference" and "sample_data" not in str(s.reference)
    assert s.inbox == tmp_path.resolve() / "inbox" and not s.secure_cookies
