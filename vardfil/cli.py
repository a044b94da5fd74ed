"""The ``vardfil`` command line. The contracts of its subcommands are fixed (the region's tooling
calls them exactly):

- ``vardfil validate PATH [--received-at ISO8601] [--reference DIR]`` prints the kvittens JSON and
  records nothing; exit 0 for GODKAND or DELVIS_GODKAND, 1 for AVVISAD, 2 for a usage error.
- ``vardfil submit PATH [--received-at ISO8601] [--reference DIR]`` records the file in the ledger
  under ``$VARDFIL_HOME`` and prints its kvittens (exit codes as ``validate``).
- ``vardfil intake INBOX_DIR`` takes every new file in a folder.
- ``vardfil status PERIOD`` prints per unit and filtyp the gällande file, its status, on_time, and
  the units with no file.

Exit 2 answers a request that cannot be carried out as asked (``vardfil.errors.Refused``, bad
reference data); exit 3 means the program could not do its work for a passing reason (the store
cannot be written, the database is busy): nothing was recorded, and the same command can be run
again. Each command opens the application once (``vardfil.app.open_app``) and calls one
application function.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

from filespec import FILE_TYPES
from filespec.calendar import Period, parse_instant
from filespec.errors import InvalidPeriod
from filespec.reference import ReferenceDataError
from vardfil.actors import Actor, is_typed, job
from vardfil.app import App, open_app
from vardfil.errors import Refused, Transient

EXIT_OK, EXIT_REJECTED, EXIT_USAGE, EXIT_FAULT = 0, 1, 2, 3


class UsageError(Refused):
    """A command was called with arguments it cannot work with (exit 2)."""


def _instant(text: str) -> dt.datetime:
    try:
        return parse_instant(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 instant with offset: {text!r} ({e})") from None


def _period(text: str) -> Period:
    try:
        return Period.parse(text)
    except InvalidPeriod as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _period_given(text: str) -> Period:
    """``_period`` for a value read after argparse (a refusal, exit 2, not a traceback)."""
    try:
        return Period.parse(text)
    except InvalidPeriod as e:
        raise UsageError(str(e)) from None


def _print_json(obj: object) -> None:
    json.dump(obj, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


def _app(args: argparse.Namespace) -> App:
    """The application of this command: the environment's settings, ``--reference`` if given."""
    return open_app(reference=getattr(args, "reference", None))


def _actor(args: argparse.Namespace, app: App) -> Actor:
    """Who this command records as acting: ``--actor`` or ``$VARDFIL_ACTOR`` when given (a typed
    actor, e.g. ``person:SE2321000131-P000000000001``), else the command itself
    (``job:cli:close``). Never the login name: the audit log names actors by ids."""
    given = getattr(args, "actor", None) or app.settings.actor
    if given:
        if not is_typed(given):
            raise UsageError(
                f"--actor/VARDFIL_ACTOR must be a typed actor such as person:HSA-ID or job:NAME, not {given[:40]!r}"
            )
        return Actor(given)
    command = "-".join(
        x for x in (args.command, getattr(args, "user_command", None), getattr(args, "token_command", None)) if x
    )
    return job(f"cli:{command}")


def _file_given(path: Path) -> Path:
    """The file a command was given, or a refusal that says what it found instead."""
    if path.is_dir():
        raise UsageError(f"{path} is a folder, not a file: give one file (vardfil intake takes a folder)")
    if not path.is_file():
        raise UsageError(f"no such file: {path}")
    return path


def cmd_validate(args: argparse.Namespace) -> int:
    """Validate one file and print its kvittens; nothing is recorded."""
    from validators import validate_file, write_findings_csv

    path: Path = _file_given(args.path)
    if args.findings_csv and not args.findings_csv.parent.is_dir():
        # Checked before the file is judged: a usage error, not exit 1 (AVVISAD) with a traceback.
        raise UsageError(f"no such folder for --findings-csv: {args.findings_csv.parent}")
    # Without --received-at the file is judged as if it arrived now: what a unit checking its file
    # before sending wants to know.
    received_at = args.received_at or dt.datetime.now(dt.UTC)
    result = validate_file(
        path, file_name=path.name, received_at=received_at, reference=_app(args).reference, keep_accepted=False
    )
    if args.findings_csv:
        try:
            write_findings_csv(result.findings, args.findings_csv)
        except OSError as e:
            raise UsageError(f"cannot write {args.findings_csv}: {e.strerror or e}") from None
    _print_json(result.kvittens.to_dict())
    return EXIT_REJECTED if result.kvittens.status.value == "AVVISAD" else EXIT_OK


def cmd_submit(args: argparse.Namespace) -> int:
    """Record one file in the ledger and print its kvittens."""
    from vardfil.month.intake import submit

    path: Path = _file_given(args.path)
    received_at = args.received_at or dt.datetime.now(dt.UTC)
    # The `with` closes the ledger's connections even when the command fails half-way, so a
    # script calling vardfil in a loop does not leak them.
    with _app(args) as app:
        app.reference  # noqa: B018 - bad reference data is a usage error before anything is stored
        sub = submit(
            path, file_name=path.name, received_at=received_at, app=app, source_kind="cli", actor=_actor(args, app)
        )
    _print_json(sub.kvittens)
    return EXIT_REJECTED if sub.kvittens["status"] == "AVVISAD" else EXIT_OK


def cmd_access_log(args: argparse.Namespace) -> int:
    """The access log: list entries, a patient's extract, the monthly follow-up, an export."""
    from vardfil import access

    with _app(args) as app:
        if args.access_command == "list":
            since = parse_instant(args.since) if args.since else None
            entries = app.ledger.accesses.entries(person=args.person, unit=args.unit, period=args.period, since=since)
            rows = [access.entry_dict(e) for e in entries]
            if args.json:
                _print_json(rows)
            else:
                for r in rows:
                    print(
                        f"{r['at']}\t{r['hsa_id'] or r['actor']}\t{r['role']}\t{access.ACTIONS[r['action']]}\t"
                        f"{access.KINDS[r['kind']]}\t{r['unit_hsaid'] or '–'}\t{r['period'] or '–'}\t"
                        f"{r['patients']} patienter\t{r['file']}"
                    )
        elif args.access_command == "patient":
            extract = access.patient_extract(app, args.personnummer, actor=_actor(args, app))
            if args.json:
                _print_json(extract)
            else:
                print(f"Filer som innehåller patienten: {len(extract['files'])}; åtkomster: {len(extract['accesses'])}")
                for r in extract["accesses"]:
                    print(
                        f"{r['at']}\t{r['hsa_id'] or r['actor']}\t{access.ACTIONS[r['action']]}\t{r['unit_hsaid'] or '–'}"
                    )
        elif args.access_command == "review":
            period = _period_given(args.period)
            report = (
                access.sign_review(app, period, actor=_actor(args, app), comment=args.comment)
                if args.sign
                else access.review(app, period)
            )
            if args.json:
                _print_json(report)
            else:
                print("\n".join(access.review_lines(report)))
        else:
            out = sys.stdout if args.out is None else args.out.open("w", encoding="utf-8", newline="")
            try:
                access.export(app, out, fmt=args.format, what=args.what)
            finally:
                if args.out is not None:
                    out.close()
    return EXIT_OK


def cmd_backup(args: argparse.Namespace) -> int:
    """Back up the ledger and the files it refers to into DIR, or check a backup (``--verify``)."""
    from vardfil.backup import backup, verify_backup

    if args.verify:
        report = verify_backup(args.dir)
        _print_json(report)
        return EXIT_OK if report["ok"] else EXIT_REJECTED
    with _app(args) as app:
        manifest = backup(app, args.dir)
    _print_json({k: v for k, v in manifest.items() if k != "files"} | {"files": len(manifest["files"])})
    return EXIT_OK


def cmd_restore(args: argparse.Namespace) -> int:
    """Restore a backup into the (empty) home of this environment."""
    from vardfil.backup import restore_backup
    from vardfil.settings import load_settings

    _print_json(restore_backup(load_settings(), args.dir))
    return EXIT_OK


def cmd_gallra(args: argparse.Namespace) -> int:
    """Retention: what is due (--dry-run), record a decision, carry one out."""
    from vardfil import retention

    with _app(args) as app:
        if args.record_decision:
            if not (args.what and args.before and args.text):
                raise UsageError("--record-decision needs --what KIND, --before ISO8601 and --text TEXT")
            d = retention.record_decision(
                app,
                ref=args.record_decision,
                what=args.what,
                before=parse_instant(args.before),
                text=args.text,
                actor=_actor(args, app),
            )
            _print_json({"decision": d.ref, "what": d.what, "before": d.before.isoformat()})
        elif args.decision:
            _print_json(retention.gallra(app, args.decision, actor=_actor(args, app)))
        else:
            _print_json(retention.dry_run(app))
    return EXIT_OK


def cmd_payment(args: argparse.Namespace) -> int:
    """The payment basis of a finalised period: the self-billing documents and the payment list."""
    from vardfil.publish.payment import make_payment

    with _app(args) as app:
        _print_json(make_payment(app, args.period, out=args.out))
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    """Re-hash every kept file against the ledger; exit 1 when one is missing or changed."""
    from vardfil.verify import lines, verify

    with _app(args) as app:
        report = verify(app, actor=_actor(args, app))
    if args.json:
        _print_json(report)
    else:
        print("\n".join(lines(report)))
    return EXIT_OK if report["ok"] else EXIT_REJECTED


def cmd_intake(args: argparse.Namespace) -> int:
    """Take in every new file of an inbox folder."""
    from vardfil.month.intake import InboxResult, intake_folder

    if not args.inbox.is_dir():
        raise UsageError(f"no such folder: {args.inbox}")

    def show(r: InboxResult) -> None:
        if r.submission is None:
            print(f"{r.name}\tREFUSED\t{r.refused}", flush=True)
            return
        kv = r.submission.kvittens
        note = "" if r.submission.new else "\t(copy of an earlier file)"
        print(f"{r.name}\t{kv['status']}\ton_time={kv['on_time']}\t{kv['receipt_id']}{note}", flush=True)

    with _app(args) as app:
        app.reference  # noqa: B018 - fail on bad reference data before the first file
        results = intake_folder(args.inbox, app=app, actor=_actor(args, app), on_result=show)
    print(f"{sum(r.submission is not None for r in results)} file(s) taken in", file=sys.stderr)
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    """Per unit and filtyp: the gällande file, its status and on_time; units with no file."""
    from vardfil import swedish
    from vardfil.delivery import period_status

    with _app(args) as app:
        status = period_status(app.ledger, app.reference, args.period)
    report = status.to_dict()
    if args.json:
        _print_json(report)
        return EXIT_OK
    # The table is for a person (an analyst, the on-call engineer): Swedish names and local time;
    # --json keeps the codes for machines.
    print(f"Period {report['period']}, tidsgräns {swedish.local_time(report['deadline'])}")
    print(f"{'Vårdenhet':<28} {'Filtyp':<6} {'Gällande fil':<46} {'Status':<15} I tid")
    for u in report["units"]:
        g = u["gallande"] or {}
        on_time = "–" if g.get("on_time") is None else ("ja" if g["on_time"] else "nej")
        print(
            f"{u['unit_hsaid']:<28} {u['file_type']:<6} {g.get('file_name', '–'):<46} "
            f"{swedish.status(g['status']) if g else '–':<15} {on_time}"
        )
    # The one answer (vardfil.delivery): a unit with no file at all, and one whose files all came
    # after its deadline, which a close takes no file for (paid as a correction at the next close).
    missing = [f"{u.unit.hsaid} ({u.unit.filtyp})" for u in status.missing()]
    late = [f"{u.unit.hsaid} ({u.unit.filtyp})" for u in status.late()]
    print(f"\nSaknar fil: {', '.join(missing) if missing else 'inga'}")
    print(
        f"Ingen fil i tid, bara en sen (regleras som rättelse vid nästa stängning): {', '.join(late) if late else 'inga'}"
    )
    return EXIT_OK


def cmd_dispens(args: argparse.Namespace) -> int:
    """Grant (or extend) a unit's extended deadline for one period: ``dispens HSAID PERIOD --until
    … --reason …``; ``dispens withdraw HSAID PERIOD --reason …``; ``dispens list PERIOD [--json]``."""
    from vardfil.month.dispens import grant_dispens, withdraw_dispens

    if args.unit == "list":
        return _dispens_list(args)
    with _app(args) as app:
        if args.unit == "withdraw":
            if args.extra is None or not args.reason:
                raise UsageError("dispens withdraw HSAID PERIOD --reason TEXT")
            unit, period = str(args.period), _period_given(args.extra)
            row = withdraw_dispens(app, unit_hsaid=unit, period=period, reason=args.reason, actor=_actor(args, app))
            print(
                json.dumps(
                    {"unit_hsaid": row.unit_hsaid, "period": row.period, "withdrawn": True, "reason": row.reason}
                )
            )
            return EXIT_OK
        if args.until is None or not args.reason or args.extra is not None:
            raise UsageError("dispens HSAID PERIOD --until ISO8601 --reason TEXT")
        row = grant_dispens(
            app,
            unit_hsaid=args.unit,
            period=_period_given(str(args.period)),
            until=args.until,
            reason=args.reason,
            actor=_actor(args, app),
        )
    print(
        json.dumps(
            {
                "unit_hsaid": row.unit_hsaid,
                "period": row.period,
                "deadline": args.until.isoformat(),
                "reason": row.reason,
                "granted_by": row.granted_by,
            },
            ensure_ascii=False,
        )
    )
    return EXIT_OK


def _dispens_list(args: argparse.Namespace) -> int:
    """Every dispens row of a period (grants, extensions, withdrawals) and which is in force."""
    from vardfil import swedish

    period = _period_given(str(args.period))
    with _app(args) as app:
        rows = app.ledger.decisions.dispens_rows(period)
        force = {r.id for r in app.ledger.decisions.dispens_in_force(period).values()}
    out = [
        {
            "unit_hsaid": r.unit_hsaid,
            "period": r.period,
            "until": None if r.withdrawn else r.deadline.isoformat(),
            "withdrawn": r.withdrawn,
            "reason": r.reason,
            "by": r.granted_by,
            "at": r.granted_at.isoformat(),
            "in_force": r.id in force,
        }
        for r in rows
    ]
    if args.json:
        _print_json(out)
        return EXIT_OK
    for r, o in zip(rows, out, strict=True):
        what = "återkallad" if r.withdrawn else f"till {swedish.local_time(r.deadline)}"
        state = "gäller" if o["in_force"] else "ersatt"
        print(f"{r.unit_hsaid}\t{what}\t{state}\t{r.reason}\t{r.granted_by}\t{swedish.local_time(r.granted_at)}")
    if not rows:
        print(f"Ingen dispens för {period}")
    return EXIT_OK


def cmd_close(args: argparse.Namespace) -> int:
    """Close a period as of an instant and print the JSON summary."""
    from vardfil.month.close import close_period

    at = args.at or dt.datetime.now(dt.UTC)
    with _app(args) as app:
        _print_json(
            close_period(args.period, at=at, app=app, actor=_actor(args, app), despite_dispens=args.despite_dispens)
        )
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    """(Re)write the workbooks of a closed period and print their paths."""
    from vardfil.publish.workbooks import write_workbooks

    with _app(args) as app:
        for p in write_workbooks(args.period, app=app):
            print(p)
    return EXIT_OK


def cmd_approve(args: argparse.Namespace) -> int:
    """A unit approves or disputes its underlag of a closed period."""
    from vardfil.month.approval import answer

    with _app(args) as app:
        row = answer(
            app,
            unit_hsaid=args.unit,
            file_type=args.file_type,
            period=args.period,
            action="INVAND" if args.dispute else "GODKANN",
            comment=args.comment,
            actor=_actor(args, app),
        )
    _print_json(
        {
            "unit_hsaid": row.unit_hsaid,
            "file_type": row.file_type,
            "period": row.period,
            "action": row.action,
            "comment": row.comment,
        }
    )
    return EXIT_OK


def cmd_finalise(args: argparse.Namespace) -> int:
    """An analyst finalises a closed period."""
    from vardfil.month.approval import finalise

    with _app(args) as app:
        _print_json(finalise(app.ledger, period=args.period, actor=_actor(args, app)))
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the portal and the API (``--workers N``: N server processes behind one port)."""
    import uvicorn

    from vardfil import logs
    from vardfil.settings import load_settings
    from vardfil.workers import JSON_LOGS_ENV

    _metrics_folder(load_settings().home, args.port)
    os.environ[JSON_LOGS_ENV] = "1"  # the worker processes write JSON lines like the server's
    common: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "log_config": logs.log_config(),
        # X-Forwarded-For is read by the app, from VARDFIL_TRUSTED_PROXIES only (uvicorn's own
        # handling trusts any header from loopback).
        "proxy_headers": False,
    }
    if args.workers <= 1:
        from vardfil.portal.app import create_app

        uvicorn.run(create_app(), **common)
        return EXIT_OK
    # Each server process has its own validation workers: share the cores between them unless the
    # operator said otherwise (the setting reaches the spawned processes through the environment).
    cores = os.cpu_count() or 1
    os.environ.setdefault("VARDFIL_POOL_WORKERS", str(max(1, cores // args.workers)))
    uvicorn.run("vardfil.portal.app:create_app", factory=True, workers=args.workers, **common)
    return EXIT_OK


def _metrics_folder(home: Path, port: int) -> Path:
    """Where every process of this server writes its metrics (prometheus_client's multiprocess
    mode): ``PROMETHEUS_MULTIPROC_DIR`` when the operator set it, else one under the home per port;
    emptied, since a previous run's values would be added to this one's. Set before anything
    imports prometheus_client (it reads the variable once, at import), and inherited by the
    server's and the lanes' spawned processes."""
    import shutil

    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before the metrics folder was set")
    folder = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or home / "metrics" / f"serve-{port}")
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():  # the contents, not the folder: it may be a mounted volume
        if old.is_dir():
            shutil.rmtree(old)
        else:
            old.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    return folder


def cmd_user_add(args: argparse.Namespace) -> int:
    """Add a portal account; the password comes from $VARDFIL_PASSWORD or is asked for."""
    import getpass

    from vardfil.accounts import checked_name, create_account
    from vardfil.settings import password_from_env

    checked_name(args.username, "användarnamnet")  # before a password is asked for a name that cannot be
    password = password_from_env() or getpass.getpass(f"Lösenord för {args.username}: ")
    with _app(args) as app:
        create_account(
            app.ledger,
            username=args.username,
            password=password,
            role=args.role,
            units=args.hsaid or [],
            actor=_actor(args, app),
            email=args.email,
        )
    print(f"konto {args.username} ({args.role}) skapat")
    return EXIT_OK


def cmd_user_disable(args: argparse.Namespace) -> int:
    """Disable an account by name: it signs nobody in, its sessions end (a new password link, or
    ``user add`` anew, is how it comes back)."""
    from vardfil.accounts import disable_account

    with _app(args) as app:
        acc = disable_account(app.ledger, name=args.username, actor=_actor(args, app))
    print(f"konto {acc.username} (person:{acc.id}) inaktiverat")
    return EXIT_OK


def cmd_user_list(args: argparse.Namespace) -> int:
    """Every account: id, name, role, units, e-mail, created, disabled (never a password hash)."""
    from vardfil import swedish

    with _app(args) as app:
        accounts = app.ledger.accounts.all()
        units = app.ledger.accounts.units_by_account()
    rows = [
        {
            "id": a.id,
            "actor": f"person:{a.id}",
            "username": a.username,
            "role": a.role,
            "units": units.get(a.id, []),
            "email": a.email,
            "created_at": a.created_at.isoformat(),
            "disabled_at": a.disabled_at.isoformat() if a.disabled_at else None,
        }
        for a in accounts
    ]
    if args.json:
        _print_json(rows)
        return EXIT_OK
    for a in accounts:
        state = f"inaktiverat {swedish.local_time(a.disabled_at)}" if a.disabled_at else "aktivt"
        print(f"person:{a.id}\t{a.username}\t{swedish.role(a.role)}\t{','.join(units.get(a.id, [])) or '–'}\t{state}")
    return EXIT_OK


def cmd_grant(args: argparse.Namespace) -> int:
    """Roles inside vardfil for people from the IdP: ``grant HSAID --role R [--unit U]``,
    ``grant list [--json]``, ``grant revoke HSAID --role R [--unit U]``."""
    from vardfil import swedish
    from vardfil.accounts import grant_role, revoke_role

    with _app(args) as app:
        if args.target == "list":
            grants = app.ledger.accounts.grants()
            rows = [
                {
                    "person_hsaid": g.person_hsaid,
                    "role": g.role,
                    "unit_hsaid": g.unit_hsaid,
                    "granted_by": g.granted_by,
                    "granted_at": g.granted_at.isoformat(),
                }
                for g in grants
            ]
            if args.json:
                _print_json(rows)
            else:
                for g in grants:
                    print(
                        f"{g.person_hsaid}\t{swedish.role(g.role)}\t{g.unit_hsaid or 'hela regionen'}\t"
                        f"{swedish.local_time(g.granted_at)}\t{g.granted_by}"
                    )
            return EXIT_OK
        if not args.role:
            raise UsageError("--role analyst|unit_admin is needed")
        if args.target == "revoke":
            if not args.person:
                raise UsageError("grant revoke PERSON_HSAID --role ROLE [--unit HSAID]")
            revoke_role(app, person_hsaid=args.person, role=args.role, unit_hsaid=args.unit, actor=_actor(args, app))
            print(f"rollen {args.role} för {args.person} återkallad")
            return EXIT_OK
        if args.person:
            raise UsageError("grant PERSON_HSAID --role ROLE [--unit HSAID] takes one HSA-id")
        grant_role(app, person_hsaid=args.target, role=args.role, unit_hsaid=args.unit, actor=_actor(args, app))
    print(f"rollen {args.role} beviljad {args.target}" + (f" på {args.unit}" if args.unit else ""))
    return EXIT_OK


def cmd_system(args: argparse.Namespace) -> int:
    """Journal systems by their SITHS function certificate: add, list, revoke."""
    from vardfil import swedish
    from vardfil.systems import register_system, revoke_system

    with _app(args) as app:
        if args.system_command == "add":
            register_system(app, hsa_id=args.hsaid, units=args.unit or [], name=args.name, actor=_actor(args, app))
            print(f"journalsystem {args.hsaid} får skicka för {', '.join(sorted(set(args.unit)))}")
            return EXIT_OK
        if args.system_command == "revoke":
            revoke_system(app, hsa_id=args.hsaid, actor=_actor(args, app))
            print(f"journalsystem {args.hsaid} återkallat")
            return EXIT_OK
        systems = app.ledger.systems.all()
    rows = [
        {
            "hsa_id": r.hsa_id,
            "actor": f"system:{r.hsa_id}",
            "name": r.name,
            "units": units,
            "created_at": r.created_at.isoformat(),
            "created_by": r.created_by,
            "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
        }
        for r, units in systems
    ]
    if args.json:
        _print_json(rows)
        return EXIT_OK
    for r, units in systems:
        state = f"återkallat {swedish.local_time(r.revoked_at)}" if r.revoked_at else "aktivt"
        print(f"{r.hsa_id}\t{r.name or '–'}\t{','.join(units)}\t{state}")
    return EXIT_OK


def cmd_directory(args: argparse.Namespace) -> int:
    """Bring vardfil's rights into line with the region's catalogue (``--dry-run``: only say what
    would change)."""
    from vardfil.directory import run

    with _app(args) as app:
        report = run(app, actor=_actor(args, app), dry_run=args.dry_run, confirm=args.confirm)
    if args.json:
        _print_json(report)
        return EXIT_OK
    verb = "skulle" if args.dry_run else "har"
    print(
        f"Katalogen: {report['counts']['units']} enheter, {report['counts']['persons']} personer, "
        f"{report['counts']['commissions']} uppdrag"
    )
    print(f"Behörigheter som {verb} upphört: {len(report['removals'])}")
    for r in report["removals"]:
        print(f"  {r['person']} på {r['unit']}: {r['reason']}")
    print(f"Roller som {verb} vilandeförklarats: {len(report['suspend'])}, åter i kraft: {len(report['restore'])}")
    print(f"E-postadresser från katalogen: {len(report['emails'])}")
    for d in report["unit_deviations"]:
        print(f"  Avvikelse: {d['unit']} ({d['name'] or '–'}): {d['kind']}")
    return EXIT_OK


def cmd_token_create(args: argparse.Namespace) -> int:
    """A new API token for one unit, printed once: only its hash is kept."""
    from vardfil.accounts import create_token

    with _app(args) as app:
        token = create_token(app.ledger, app.reference, unit_hsaid=args.unit, name=args.name, actor=_actor(args, app))
    print(token)
    print(f"token {args.name} for {args.unit} created: store it now, it is not shown again", file=sys.stderr)
    return EXIT_OK


def cmd_token_list(args: argparse.Namespace) -> int:
    """Every token: name, unit, created, revoked (never the token itself)."""
    from vardfil import swedish
    from vardfil.accounts import list_tokens

    with _app(args) as app:
        tokens = list_tokens(app.ledger)
    if args.json:
        _print_json(
            [
                {
                    "id": t.id,
                    "actor": f"token:{t.id}",
                    "name": t.name,
                    "unit_hsaid": t.unit_hsaid,
                    "created_at": t.created_at.isoformat(),
                    "created_by": t.created_by,
                    "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
                }
                for t in tokens
            ]
        )
        return EXIT_OK
    for t in tokens:
        state = f"återkallad {swedish.local_time(t.revoked_at)}" if t.revoked_at else "aktiv"
        print(f"{t.name}\t{t.unit_hsaid}\t{swedish.local_time(t.created_at)}\t{state}")
    return EXIT_OK


def cmd_token_revoke(args: argparse.Namespace) -> int:
    """Revoke a token by name; it stops working at once."""
    from vardfil.accounts import revoke_token

    with _app(args) as app:
        revoke_token(app.ledger, name=args.name, actor=_actor(args, app))
    print(f"token {args.name} revoked")
    return EXIT_OK


def cmd_rules(args: argparse.Namespace) -> int:
    """The rule catalogue of a version, or what changed between two versions."""
    from filespec.catalogue import catalogue, diff, versions

    known = versions()
    for v in [*(args.diff or []), *([args.version] if args.version else [])]:
        if v not in known:
            raise UsageError(f"no spec version {v!r}; there are {', '.join(known)}")
    if args.diff:
        changes = diff(*args.diff)
        if args.json:
            _print_json([{"sign": c.sign, "what": c.what, "text": c.text} for c in changes])
            return EXIT_OK
        print(f"{args.diff[0]} → {args.diff[1]}")
        for c in changes:
            print(f"{c.sign} {c.what:<15} {c.text}")
        return EXIT_OK
    # Without --version: the newest version of each filtyp.
    chosen = (
        [args.version]
        if args.version
        else [max((v for v in known if v.startswith(ft)), default="") for ft in FILE_TYPES]
    )
    out = []
    for v in chosen:
        cat = catalogue(v)
        if args.json:
            out.append(
                {
                    "spec_version": v,
                    "valid_from": cat.spec.valid_from,
                    "extends": cat.spec.extends,
                    "policy": list(cat.policy),
                    "general_readings": [r.number for r in cat.general],
                    "rules": [
                        {
                            "code": r.code,
                            "kind": r.kind,
                            "severity": r.severity,
                            "fields": list(r.fields),
                            "message": r.message,
                            "readings": [x.number for x in r.readings],
                        }
                        for r in cat.rules
                    ],
                }
            )
            continue
        base = f", ändrar {cat.spec.extends}" if cat.spec.extends else ""
        print(f"{v}: för perioder från {cat.spec.valid_from}{base}")
        for line in cat.policy:
            print(f"  {line}")
        print(f"\n{'kod':<5} {'allvarlighet':<12} {'fält':<34} {'preciseringar':<14} meddelande")
        for r in cat.rules:
            fields = ", ".join(r.fields) or "–"
            fields = fields if len(fields) <= 34 else fields[:31] + "…"
            refs = ", ".join(str(x.number) for x in r.readings) or "–"
            print(f"{r.code:<5} {r.severity:<12} {fields:<34} {refs:<14} {r.message}")
        if cat.general:
            print(f"\nPreciseringar för hela filen: {', '.join(str(r.number) for r in cat.general)}")
        print()
    if args.json:
        _print_json(out if len(out) > 1 else out[0])
    return EXIT_OK


def cmd_deviations(args: argparse.Namespace) -> int:
    """The deviation flags of a closed period, against each unit's own last 12 months."""
    from vardfil import swedish
    from vardfil.deviations import deviations
    from vardfil.directory import catalogue_flags

    with _app(args) as app:
        if not app.ledger.closes.period_closed(args.period):
            raise UsageError(f"period {args.period} is not closed")
        flags = deviations(args.period)
        names = {h: u.namn for h, u in app.reference.units.items()}
        catalogue = catalogue_flags(app)
    if args.json:
        _print_json(
            [
                {"unit_hsaid": f.unit_hsaid, "what": f.what, "value": f.value, "median": f.median, "reason": f.reason}
                for f in flags
            ]
            + [
                {
                    "unit_hsaid": c["unit_hsaid"],
                    "what": f"katalog:{c['kind']}",
                    "value": None,
                    "median": None,
                    "reason": c["reason"],
                }
                for c in catalogue
            ]
        )
        return EXIT_OK
    for f in flags:
        print(f"{names.get(f.unit_hsaid, f.unit_hsaid)} ({f.unit_hsaid})\t{swedish.component(f.what)}\t{f.reason}")
    for c in catalogue:  # the catalogue's view of the units, from the last sync
        print(f"{c['name']} ({c['unit_hsaid']})\tkatalogen\t{c['reason']}")
    print(f"{len(flags)} avvikelse(r) i {args.period}", file=sys.stderr)
    return EXIT_OK


def cmd_sample(args: argparse.Namespace) -> int:
    """Run the main job on the sample month and say where its outputs are."""
    from vardfil.sample import run_sample_month

    if not args.direct:
        from importlib.util import find_spec

        if find_spec("airflow") is None:  # find, not import: importing Airflow reconfigures logging
            print("vardfil: Airflow is not installed; running the sample month directly", file=sys.stderr)
            args.direct = True
    return run_sample_month(out=args.out, via_airflow=not args.direct, year=not args.month_only)


def _file_commands(sub: Any) -> None:
    """validate, submit, intake: a file in."""
    # validate and submit take the same file arguments (the contract names them identically).
    file_args = argparse.ArgumentParser(add_help=False)
    file_args.add_argument("path", type=Path, metavar="PATH")
    file_args.add_argument(
        "--received-at", type=_instant, metavar="ISO8601", help="arrival instant with offset (default: now)"
    )
    file_args.add_argument(
        "--reference",
        type=Path,
        metavar="DIR",
        help="reference data folder (default: $VARDFIL_REFERENCE, else $VARDFIL_HOME/reference)",
    )

    v = sub.add_parser(
        "validate", parents=[file_args], help="validate one file and print its kvittens (records nothing)"
    )
    v.add_argument("--findings-csv", type=Path, metavar="PATH", help="also write the full findings list as CSV here")
    v.set_defaults(func=cmd_validate)

    sm = sub.add_parser("submit", parents=[file_args], help="record one file in the ledger and print its kvittens")
    sm.add_argument("--actor", help="who submits, a typed actor (default: $VARDFIL_ACTOR, else job:cli:submit)")
    sm.set_defaults(func=cmd_submit)

    it = sub.add_parser("intake", help="take in every new file of an inbox folder")
    it.add_argument("inbox", type=Path, metavar="INBOX_DIR")
    it.add_argument("--reference", type=Path, metavar="DIR")
    it.add_argument("--actor")
    it.set_defaults(func=cmd_intake)


def _data_commands(sub: Any) -> None:
    """access-log, payment, gallra, backup, restore, verify: the data's life after the month."""
    al = sub.add_parser("access-log", help="who read patient-level data: list, a patient's extract, the follow-up")
    al_sub = al.add_subparsers(dest="access_command", required=True)
    ls = al_sub.add_parser("list", help="the entries, oldest first")
    ls.add_argument("--person", metavar="HSAID", help="a person's or system's HSA-id, or a typed actor")
    ls.add_argument("--unit", metavar="HSAID")
    ls.add_argument("--period", type=_period, metavar="PERIOD", help="the period the data is of")
    ls.add_argument("--since", metavar="ISO8601")
    ls.add_argument("--json", action="store_true", help="a JSON array of objects, one an entry")
    pe = al_sub.add_parser("patient", help="who accessed files that hold this patient (the patient's extract)")
    pe.add_argument("personnummer", metavar="PERSONNUMMER")
    pe.add_argument("--json", action="store_true")
    pe.add_argument("--actor", help="the auditor asking (a typed actor)")
    rv = al_sub.add_parser("review", help="the monthly follow-up report of a calendar month")
    rv.add_argument("period", metavar="PERIOD")
    rv.add_argument("--sign", action="store_true", help="record the reviewer's sign-off of the report")
    rv.add_argument("--comment", metavar="TEXT")
    rv.add_argument("--actor", help="the reviewer (a typed actor)")
    rv.add_argument("--json", action="store_true")
    ex = al_sub.add_parser("export", help="the log or the sign-offs for the region's log analysis tool")
    ex.add_argument("--format", choices=["csv", "jsonl"], default="jsonl")
    ex.add_argument("--what", choices=["entries", "reviews"], default="entries")
    ex.add_argument("--out", type=Path, metavar="FILE", help="default: standard output")
    al.set_defaults(func=cmd_access_log)

    py = sub.add_parser(
        "payment", help="the payment basis of a finalised period: Peppol documents and the payment list"
    )
    py.add_argument("period", type=_period, metavar="PERIOD")
    py.add_argument("--out", type=Path, metavar="DIR", help="default: $VARDFIL_HOME/utbetalning/YYYY-MM/")
    py.add_argument("--reference", type=Path, metavar="DIR")
    py.add_argument("--json", action="store_true", help="the summary as JSON (the default output)")
    py.set_defaults(func=cmd_payment)

    ga = sub.add_parser("gallra", help="retention: what is due (--dry-run), record a decision, carry one out")
    mode = ga.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="list what the rules make due (the default)")
    mode.add_argument("--decision", metavar="REF", help="remove what the recorded decision REF covers")
    mode.add_argument("--record-decision", metavar="REF", help="record the archive authority's decision REF")
    ga.add_argument("--what", metavar="KIND", help="with --record-decision: a kind of vardfil/retention.toml")
    ga.add_argument("--before", metavar="ISO8601", help="with --record-decision: what was made or received before")
    ga.add_argument("--text", metavar="TEXT", help="with --record-decision: the decision's words and reference")
    ga.add_argument("--actor")
    ga.set_defaults(func=cmd_gallra)

    bk = sub.add_parser("backup", help="a consistent copy of the ledger and its files into DIR (--verify: check one)")
    bk.add_argument("dir", type=Path, metavar="DIR")
    bk.add_argument("--verify", action="store_true", help="check the backup in DIR against its manifest")
    bk.set_defaults(func=cmd_backup)
    rs = sub.add_parser("restore", help="restore a backup into an empty home (VARDFIL_HOME, VARDFIL_DATABASE_URL)")
    rs.add_argument("dir", type=Path, metavar="DIR")
    rs.set_defaults(func=cmd_restore)

    vf = sub.add_parser(
        "verify",
        help="re-hash every stored, derived and published file against the ledger (exit 1: missing or changed)",
    )
    vf.add_argument("--json", action="store_true", help="machine-readable output")
    vf.add_argument("--actor", metavar="ACTOR", help="who runs it (a typed actor; default job:cli:verify)")
    vf.set_defaults(func=cmd_verify)


def _month_commands(sub: Any) -> None:
    """status, dispens, close, report, approve, finalise: the month."""
    st = sub.add_parser("status", help="per unit and filtyp: the gällande file of a period")
    st.add_argument("period", type=_period, metavar="PERIOD")
    st.add_argument("--reference", type=Path, metavar="DIR")
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.set_defaults(func=cmd_status)

    dp = sub.add_parser(
        "dispens",
        help="an extended deadline for one unit and period: HSAID PERIOD --until … --reason … | "
        "withdraw HSAID PERIOD --reason … | list PERIOD [--json]",
    )
    dp.add_argument("unit", metavar="HSAID|withdraw|list")
    dp.add_argument("period", metavar="PERIOD|HSAID")
    dp.add_argument("extra", nargs="?", metavar="PERIOD", help="with withdraw: the period")
    dp.add_argument("--until", type=_instant, metavar="ISO8601")
    dp.add_argument("--reason")
    dp.add_argument("--json", action="store_true", help="machine-readable output (list)")
    dp.add_argument("--reference", type=Path, metavar="DIR")
    dp.add_argument("--actor")
    dp.set_defaults(func=cmd_dispens)

    cl = sub.add_parser("close", help="close a period and publish every unit's underlag")
    cl.add_argument("period", type=_period, metavar="PERIOD")
    cl.add_argument("--at", type=_instant, metavar="ISO8601", help="the instant of the close (default: now)")
    cl.add_argument(
        "--despite-dispens",
        action="store_true",
        help="close although a unit's dispens is still open (recorded; its file is then paid as a correction)",
    )
    cl.add_argument("--reference", type=Path, metavar="DIR")
    cl.add_argument("--actor")
    cl.set_defaults(func=cmd_close)

    rp = sub.add_parser("report", help="(re)write the workbooks of a closed period")
    rp.add_argument("period", type=_period, metavar="PERIOD")
    rp.add_argument("--reference", type=Path, metavar="DIR")
    rp.set_defaults(func=cmd_report)

    ap_ = sub.add_parser("approve", help="a unit approves (or with --dispute, disputes) its underlag")
    ap_.add_argument("unit", metavar="HSAID")
    ap_.add_argument("period", type=_period, metavar="PERIOD")
    ap_.add_argument("--file-type", choices=list(FILE_TYPES), required=True)
    ap_.add_argument("--dispute", action="store_true", help="dispute instead of approve (needs --comment)")
    ap_.add_argument("--comment")
    ap_.add_argument("--actor")
    ap_.set_defaults(func=cmd_approve)

    fi = sub.add_parser("finalise", help="finalise a closed period (its underlag never changes again)")
    fi.add_argument("period", type=_period, metavar="PERIOD")
    fi.add_argument("--actor")
    fi.set_defaults(func=cmd_finalise)


def _people_commands(sub: Any) -> None:
    """serve, user, grant, system, directory, token: the portal, its people and the systems."""
    sv = sub.add_parser("serve", help="run the web portal and the API")
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument("--workers", type=int, default=1, metavar="N", help="server processes behind the port (default 1)")
    sv.set_defaults(func=cmd_serve)

    us = sub.add_parser("user", help="portal accounts")
    us_sub = us.add_subparsers(dest="user_command", required=True)
    ua = us_sub.add_parser("add", help="add an account (password from $VARDFIL_PASSWORD or asked for)")
    ua.add_argument("username")
    ua.add_argument("--role", choices=["unit", "unit_admin", "analyst", "admin", "auditor"], required=True)
    ua.add_argument("--hsaid", action="append", help="a unit the account acts for (repeatable)")
    ua.add_argument("--email", metavar="ADDRESS", help="where the account's mail goes (kvittenser, reminders)")
    ua.add_argument("--actor")
    ua.set_defaults(func=cmd_user_add)
    ud = us_sub.add_parser("disable", help="disable an account by name (it signs nobody in)")
    ud.add_argument("username", metavar="NAME")
    ud.add_argument("--actor")
    ud.set_defaults(func=cmd_user_disable)
    ul = us_sub.add_parser("list", help="every account (never a password)")
    ul.add_argument("--json", action="store_true", help="machine-readable output")
    ul.set_defaults(func=cmd_user_list)

    gr = sub.add_parser(
        "grant",
        help="roles for people from the IdP: grant PERSON_HSAID --role R [--unit U] | list | revoke PERSON_HSAID --role R",
    )
    gr.add_argument("target", metavar="PERSON_HSAID|list|revoke")
    gr.add_argument("person", nargs="?", metavar="PERSON_HSAID", help="with revoke: whose role")
    gr.add_argument("--role", choices=["analyst", "unit_admin", "auditor"])
    gr.add_argument("--unit", metavar="HSAID", help="the unit of a unit_admin role")
    gr.add_argument("--json", action="store_true", help="machine-readable output (list)")
    gr.add_argument("--reference", type=Path, metavar="DIR")
    gr.add_argument("--actor")
    gr.set_defaults(func=cmd_grant)

    sy = sub.add_parser("system", help="journal systems by their SITHS function certificate (mutual TLS)")
    sy_sub = sy.add_subparsers(dest="system_command", required=True)
    sa = sy_sub.add_parser("add", help="register a system's certificate HSA-id for its units")
    sa.add_argument("hsaid", metavar="HSAID", help="the HSA-id in the certificate subject's serialNumber")
    sa.add_argument("--unit", action="append", metavar="HSAID", help="a unit it may send for (repeatable)")
    sa.add_argument("--name", metavar="TEXT", help="what it is, e.g. Cosmic hos Närhälsan")
    sa.add_argument("--reference", type=Path, metavar="DIR")
    sa.add_argument("--actor")
    sl = sy_sub.add_parser("list", help="every registered system")
    sl.add_argument("--json", action="store_true", help="machine-readable output")
    sr = sy_sub.add_parser("revoke", help="its certificate sends nothing from now")
    sr.add_argument("hsaid", metavar="HSAID")
    sr.add_argument("--actor")
    for p_ in (sa, sl, sr):
        p_.set_defaults(func=cmd_system)

    di = sub.add_parser("directory", help="the region's LDAP catalogue (KIV/HSA)")
    di_sub = di.add_subparsers(dest="directory_command", required=True)
    ds = di_sub.add_parser("sync", help="bring rights and e-mail addresses into line with the catalogue")
    ds.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")
    ds.add_argument("--confirm", action="store_true", help="carry out a sync that takes away many rights at once")
    ds.add_argument("--json", action="store_true", help="machine-readable output")
    ds.add_argument("--reference", type=Path, metavar="DIR")
    ds.add_argument("--actor")
    ds.set_defaults(func=cmd_directory)

    tk = sub.add_parser("token", help="API tokens of the journal systems (one unit each)")
    tk_sub = tk.add_subparsers(dest="token_command", required=True)
    tc = tk_sub.add_parser("create", help="create a token for a unit; printed once")
    tc.add_argument("unit", metavar="HSAID")
    tc.add_argument("--name", required=True, help="what the token is for, e.g. the journal system (unique)")
    tc.add_argument("--reference", type=Path, metavar="DIR")
    tc.add_argument("--actor")
    tc.set_defaults(func=cmd_token_create)
    tl = tk_sub.add_parser("list", help="every token (never the token itself)")
    tl.add_argument("--json", action="store_true", help="machine-readable output")
    tl.set_defaults(func=cmd_token_list)
    tr = tk_sub.add_parser("revoke", help="revoke a token by name")
    tr.add_argument("name", metavar="NAME")
    tr.add_argument("--actor")
    tr.set_defaults(func=cmd_token_revoke)


def _information_commands(sub: Any) -> None:
    """rules, deviations, sample: what the region reads."""
    ru = sub.add_parser("rules", help="the rule catalogue of a spec version, or the changes between two")
    ru.add_argument("--version", metavar="VERSION", help="e.g. VGP-2026.2 (default: the newest of each filtyp)")
    ru.add_argument("--diff", nargs=2, metavar=("OLD", "NEW"), help="what changed, e.g. VGP-2026.1 VGP-2026.2")
    ru.add_argument("--json", action="store_true", help="machine-readable output")
    ru.set_defaults(func=cmd_rules)

    dv = sub.add_parser("deviations", help="what stands out in a closed period, unit by unit")
    dv.add_argument("period", type=_period, metavar="PERIOD")
    dv.add_argument("--reference", type=Path, metavar="DIR")
    dv.add_argument("--json", action="store_true", help="machine-readable output")
    dv.set_defaults(func=cmd_deviations)

    s = sub.add_parser("sample", help="run the sample year and month with embedded defaults")
    s.add_argument("--out", type=Path, default=None, help="kvittens folder (default: $VARDFIL_HOME/sample)")
    s.add_argument(
        "--direct",
        action="store_true",
        help="call intake, close and report in this process instead of running the Airflow DAG",
    )
    s.add_argument(
        "--month-only",
        action="store_true",
        help="only the sample month 2026-10, without replaying and closing the year before it",
    )
    s.set_defaults(func=cmd_sample)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    ap = argparse.ArgumentParser(prog="vardfil", description="Monthly visit files of VGR's care units.")
    sub = ap.add_subparsers(dest="command", required=True)
    for add in (_file_commands, _month_commands, _people_commands, _information_commands, _data_commands):
        add(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``vardfil`` console script."""
    args = build_parser().parse_args(argv)
    # The exit code is the contract the region's tooling reads: 2 means "you asked for something
    # that cannot be done", 3 "try again"; anything else is a bug and keeps its traceback.
    try:
        code: int = args.func(args)
        return code
    except (Refused, ReferenceDataError) as e:
        print(f"vardfil: {e}", file=sys.stderr)
        if isinstance(e, ReferenceDataError) and "reference folder not found" in str(e):
            # Which setting and flag decide it, and where the sample put one.
            print(
                "vardfil: the reference data (unit register, KVÅ lists) is read from --reference DIR, else "
                "$VARDFIL_REFERENCE, else $VARDFIL_HOME/reference; scripts/sample.sh puts the sample's in "
                "$VARDFIL_HOME/reference (default ./var/reference)",
                file=sys.stderr,
            )
        return EXIT_USAGE
    except Transient as e:
        print(f"vardfil: nothing was recorded: {e}", file=sys.stderr)
        return EXIT_FAULT


if __name__ == "__main__":
    raise SystemExit(main())
