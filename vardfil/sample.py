"""The main job on the sample data: a year of closed periods, then the sample month through the DAG.

The year before the sample month (``sample_data/year/``, 2025-10 … 2026-09) is replayed first, in
time order: every file submitted at its arrival time and every period closed at its deadline, with
its underlag, datasets and workbooks, so the analysts' trends and deviation flags have twelve
periods behind the sample month. The year is replayed in this process, through the same intake,
close and publish functions the DAG tasks call (twelve ``airflow dags test`` runs would take
minutes and show nothing the sample month does not).

The sample month itself (``sample_data/files``, 2026-10) runs through Airflow (what the README's
main command does): the files are put in the inbox with their arrival times, and the real
``vardfil_close`` DAG runs at the deadline with ``airflow dags test`` on an SQLite Airflow database
under ``$VARDFIL_HOME`` — intake, close, workbooks. Directly (``--direct``): the same intake, close
and report functions called in this process. Both give the same outputs (tested). A second run
finds every file received and every period closed: no change.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from filespec.calendar import Period, parse_instant
from sample_data import SAMPLE_DIR
from vardfil.actors import job
from vardfil.app import App, open_app
from vardfil.ledger import utcnow
from vardfil.mail import outbox_of
from vardfil.month.approval import finalise
from vardfil.month.close import close_period
from vardfil.month.intake import Submission, submit
from vardfil.publish.payment import make_payment
from vardfil.publish.workbooks import write_region_workbook, write_workbooks
from vardfil.settings import Settings, load_settings
from vardfil.swedish import kronor, local_time, number, status

SAMPLE = job("sample")  # who acts in the sample run


def _demo_accounts(app: App) -> None:
    """One account with an e-mail address per sample unit, so the month's kvittenser are mailed
    (to the outbox, without an SMTP server). Their passwords are random and never shown: the demo
    portal (scripts/serve.sh) makes accounts of its own."""
    import secrets

    from vardfil.accounts import create_account

    for unit in sorted(app.reference.units.values(), key=lambda u: u.hsaid):
        name = f"enhet-{unit.hsaid[-4:]}"
        if app.ledger.accounts.by_name(name) is None:
            create_account(
                app.ledger,
                username=name,
                password=secrets.token_urlsafe(16),
                role="unit",
                units=[unit.hsaid],
                actor=SAMPLE,
                email=f"{name}@exempel.vgregion.se",
            )


def _home_reference(settings: Settings, sample_reference: Path) -> None:
    """The sample's reference data also in ``$VARDFIL_HOME/reference``, where every other command
    looks by default: after the sample, ``vardfil status``, ``deviations`` and ``validate`` work
    from the same shell without a flag. Only into the sample's own home, and only when none is there."""
    target = settings.home / "reference"
    if target.exists():
        return
    shutil.copytree(sample_reference, target)
    print(
        f"Referensdata: provdatans enhetsregister och KVÅ-listor kopierade till {target} (där övriga kommandon letar)"
    )


def read_arrivals(folder: Path = SAMPLE_DIR) -> list[tuple[Path, str]]:
    """(file, received_at) of the sample month, in arrival order as listed."""
    with open(folder / "arrivals.csv", encoding="utf-8", newline="") as fh:
        return [(folder / "files" / r["file"], r["received_at"]) for r in csv.DictReader(fh, delimiter=";")]


def stage_inbox(inbox: Path, folder: Path = SAMPLE_DIR) -> list[Path]:
    """Copy the sample files into an inbox, each with its arrival time as modification time (what
    the transfer does for a real unit)."""
    inbox.mkdir(parents=True, exist_ok=True)
    staged = []
    for path, received_at in read_arrivals(folder):
        target = inbox / path.name
        shutil.copyfile(path, target)
        ts = parse_instant(received_at).timestamp()
        os.utime(target, (ts, ts))
        staged.append(target)
    return staged


def run_through_airflow(period: Period, settings: Settings, folder: Path = SAMPLE_DIR) -> Path:
    """Stage the inbox and run the real ``vardfil_close`` DAG at the period's deadline with
    ``airflow dags test`` on an SQLite Airflow database under ``$VARDFIL_HOME/airflow`` (no server).
    Returns the log file of the run."""
    # The DAG's tasks run in other processes: they get the same settings through the environment,
    # with the sample's reference data named explicitly (it is never a default).
    env = {
        **os.environ,
        "VARDFIL_HOME": str(settings.home),
        "VARDFIL_REFERENCE": str(settings.reference),
        "VARDFIL_INBOX": str(settings.inbox),
    }
    env.setdefault("AIRFLOW_HOME", str(settings.home / "airflow"))
    env.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(Path(__file__).resolve().parent.parent / "dags"))
    env.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    # Airflow 3.3.2's ``dags test`` fails a DAG with a Deadline Alert (vardfil.airflow.alerts).
    env["VARDFIL_DEADLINE_ALERTS"] = "0"
    stage_inbox(settings.inbox, folder)
    log = Path(env["AIRFLOW_HOME"]) / "sample-run.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as fh:
        for cmd in (["db", "migrate"], ["dags", "test", "vardfil_close", period.deadline.isoformat()]):
            done = subprocess.run([sys.executable, "-m", "airflow", *cmd], env=env, stdout=fh, stderr=subprocess.STDOUT)
            if done.returncode != 0:
                raise RuntimeError(f"airflow {' '.join(cmd)} failed; see {log}")
    return log


YEAR_DIR = SAMPLE_DIR / "year"


def run_sample_year(app: App, folder: Path = YEAR_DIR) -> list[dict[str, Any]]:
    """Replay the year before the sample month in time order: each file submitted at its arrival
    time, each period closed at its deadline (a late file lands after its period's close and is a
    RATTELSE in the next), and the workbooks of every close written. Returns the close summaries."""
    arrivals = read_arrivals(folder)
    periods = sorted({Period.parse_compact(p.name.split("_")[2]) for p, _ in arrivals})
    # One timeline of arrivals and closes; at the same instant the file comes first (a file at
    # 15:00:00 is late all the same, the close decides nothing by the order).
    events: list[tuple[dt.datetime, int, Path | Period]] = [(parse_instant(t), 0, p) for p, t in arrivals]
    events += [(q.deadline, 1, q) for q in periods]
    summaries = []
    for at, _, what in sorted(events, key=lambda e: (e[0], e[1])):
        if isinstance(what, Path):
            submit(what, file_name=what.name, received_at=at, app=app, source_kind="cli", actor=SAMPLE)
        else:
            summaries.append(close_period(what, at=at, app=app, actor=SAMPLE))
            write_region_workbook(what, app=app)  # a unit's is written when first asked for
    return summaries


def _print_year(summaries: list[dict[str, Any]]) -> None:
    print(f"{'Period':<8} {'Stängd':<17} {'Summa':>17}  Enheter  Ingen fil i tid vid stängningen (HSA-id)")
    for s in summaries:
        missing = ", ".join(s["missing_units"]) or "–"  # whole HSA-ids: a person may look them up
        print(
            f"{s['period']:<8} {local_time(s['closed_at']):<17} {kronor(s['total']):>17}  {len(s['units']):>7}  {missing}"
        )
    print()


def run_sample_month(
    out: Path | None = None, folder: Path = SAMPLE_DIR, *, via_airflow: bool = False, year: bool = False
) -> int:
    """The sample month: submitted in arrival order (directly, or through the Airflow DAG), closed at
    its deadline, underlag and workbooks written; kvittenser and a summary printed. ``year``: the
    year before it (``sample_data/year``) is replayed and closed first."""
    app = open_app(load_settings(), reference=folder / "reference")
    settings, ledger = app.settings, app.ledger
    _home_reference(settings, folder / "reference")
    started = utcnow()
    out = out or settings.home / "sample"
    kv_dir = out / "kvittens"
    kv_dir.mkdir(parents=True, exist_ok=True)
    arrivals = read_arrivals(folder)
    period = max(Period.parse_compact(p.name.split("_")[2]) for p, _ in arrivals)
    _demo_accounts(app)
    if year:
        print(f"Året före {period}, uppspelat och stängt period för period ({YEAR_DIR}):")
        _print_year(run_sample_year(app))
    if via_airflow:
        log = run_through_airflow(period, settings, folder)
        print(f"DAG:en vardfil_close körd vid {local_time(period.deadline)} med airflow dags test (logg: {log})\n")
    _submit_and_print(app, arrivals, kv_dir, via_airflow=via_airflow)
    summary = close_period(period, at=period.deadline, app=app, actor=SAMPLE)
    # The demo writes every unit's workbook of its month at once, as `vardfil report` does; a close
    # publishes only the region's, and a unit's is written when the unit first downloads it.
    workbooks = write_workbooks(period, app=app)
    # The analysts fastställer the month, and the units are paid (UTBETALNING.md): the documents
    # and the payment list of a finalised period.
    state = ledger.closes.period_state(period)
    if state is None or state.state != "FINALISED":
        finalise(ledger, period=period, actor=SAMPLE)
    payment = make_payment(app, period)
    app.close()
    _print_month(settings, summary, kv_dir, workbooks, payment)
    with open_app(settings) as again:
        new = again.ledger.files.files_recorded_since(started)
    if not new and summary["already_closed"]:
        # The second run of the README's command: say so, rather than print the same as the first.
        print(
            f"\nInget nytt: alla {len(arrivals)} filer i {period} var redan mottagna (samma kvittenser) och "
            f"stängningen av {period} var redan gjord, med samma underlag. Ingenting ändrades."
        )
    return 0


def _submit_and_print(app: App, arrivals: list[tuple[Path, str]], kv_dir: Path, *, via_airflow: bool) -> None:
    """Each file of the month submitted (or, after the DAG, read back) and its kvittens written
    beside its findings, with a line per file."""
    print(f"{'Fil':<46} {'Status':<15} {'I tid':<7} {'Rader':>6} {'Godkända':>8}  Regler")
    for path, received_at in arrivals:
        if via_airflow:
            recorded = app.ledger.files.file_by_sha(hashlib.sha256(path.read_bytes()).hexdigest())
            assert recorded is not None, f"the DAG did not take in {path.name}"
            sub = Submission(
                kvittens=json.loads(recorded.kvittens_json), receipt_id=recorded.receipt_id, new=False, file=recorded
            )
        else:
            sub = submit(
                path,
                file_name=path.name,
                received_at=parse_instant(received_at),
                app=app,
                source_kind="cli",
                actor=SAMPLE,
            )
        kv = sub.kvittens
        stem = path.name.removesuffix(".csv")
        (kv_dir / f"{stem}.json").write_text(json.dumps(kv, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        shutil.copyfile(app.store.resolve(sub.file.findings_path), kv_dir / f"{stem}.findings.csv")
        rules = " ".join(f"{c}×{n}" for c, n in kv["counts_by_rule"].items())
        print(
            f"{path.name:<46} {status(kv['status']):<15} {'ja' if kv['on_time'] else 'nej':<7} "
            f"{number(kv['rows']['total']):>6} {number(kv['rows']['accepted']):>8}  {rules}"
        )


def _print_month(
    settings: Settings, summary: dict[str, Any], kv_dir: Path, workbooks: list[Path], payment: dict[str, Any]
) -> None:
    print(
        f"\nStängning av {summary['period']} {local_time(summary['closed_at'])}: summa {kronor(summary['total'])}, "
        f"{len(summary['units'])} enheter, ingen fil i tid: {', '.join(summary['missing_units']) or 'inga'}"
    )
    for u in summary["units"]:
        print(
            f"  {u['unit_hsaid']} {u['file_type']}  {kronor(u['total']):>19}  {'(ingen fil)' if not u['receipt_id'] else ''}"
        )
    print(f"\nKvittenser och fellistor: {kv_dir}")
    print(f"Underlag (Parquet):       {summary['underlag_parquet']}")
    print(f"Besök, ACG (Parquet):     {summary['besok_parquet']}, {summary['acg_parquet']}")
    print(f"Arbetsböcker:             {workbooks[-1]} och {len(workbooks) - 1} för enheterna i {workbooks[0].parent}")
    print(
        f"Utbetalning (fastställd): {Path(payment['list']['csv']).parent} — {len(payment['documents'])} "
        f"dokument i Peppol BIS Billing 3, betalningslistan summa {kronor(payment['list']['total'])}, "
        f"förfaller {payment['due_date']}"
    )
    print(f"Huvudbok (databas):       {settings.database_url}\nLagrade filer:            {settings.store}")
    outbox = outbox_of(settings)
    mails = sorted(outbox.glob("*.eml")) if outbox.is_dir() else []
    where = "SMTP (VARDFIL_SMTP_URL)" if settings.smtp_url else f"{outbox} ({len(mails)} .eml-filer)"
    print(f"E-post:                   {where}")
