"""Who saw what: the access log of patient-level data (patientdatalagen 2008:355 4 kap. 3 §,
HSLF-FS 2016:40 4 kap. 9 §), its patient extract and its monthly follow-up.

Every front door that serves patient-level data calls :func:`logged` before it serves: the
kvittens page and JSON (their findings name rows and visits), the findings file (portal and API),
the unit workbook (the unit's visits), and the analysts' pseudonymised visit and ACG files. One
entry a read: who (the typed actor, the person's or system's HSA-id, the role and the commission
used, the purpose), what (read or download), which file of which unit and period, how many
patients it covers, when, the request id and the address. If the entry cannot be written the data
is not served (:class:`AccessLogUnavailable`, answered 503).

The patients are found from the files (``receipts``: the received files the served data comes
from), never copied into the log: :func:`patient_extract` reads the stored files for the person
asked about. Counting patients: the distinct ``patient_id`` of the received file(s) behind the
data (for a findings file that is the file's patients, an upper bound of those its rows name).
A ten-digit and a twelve-digit form of one number are the same patient (the century is dropped
when comparing: a 1912 and a 2012 child with the same ten digits would both be listed, the safe
side for an extract).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from filespec.calendar import STOCKHOLM, Period, is_vardag
from vardfil.actors import Actor
from vardfil.app import App
from vardfil.errors import Refused, Transient
from vardfil.ledger import AccessEntry, LogReview, ReceivedFile, utcnow

ACTIONS = {"läsa": "läsa", "ladda_ner": "kopiera/ladda ner", "skriva_ut": "skriva ut"}
KINDS = {
    "kvittens": "kvittens med fel",
    "fellista": "fellista",
    "arbetsbok": "enhetens arbetsbok",
    "besok": "besöken (pseudonymiserade)",
    "acg": "ACG-underlaget (pseudonymiserat)",
}
# The purpose of a read when no commission names one (a password account, a journal system).
PURPOSES = {
    "unit": "Redovisning till regionen",
    "unit_admin": "Redovisning till regionen",
    "analyst": "Uppföljning och ersättning",
    "admin": "Uppföljning och ersättning",
    "auditor": "Logguppföljning",
    "system": "Filöverföring från journalsystem",
    "token": "Filöverföring från journalsystem",
}
# Office hours of the follow-up's check (Swedish local time, vardagar).
OFFICE = (dt.time(7, 0), dt.time(18, 0))
# A person's month is unusual when it is this many times their own median month and at least
# this many patients above it.
VOLUME_FACTOR, VOLUME_MARGIN = 3.0, 100
SAMPLE_SIZE = 5


class AccessLogUnavailable(Transient):
    """The access log cannot be written: the data is not served (try again)."""


@dataclass(frozen=True, kw_only=True)
class Reader:
    """Who reads, as the access log names them."""

    actor: Actor
    hsa_id: str | None
    role: str
    commission: str | None
    purpose: str
    address: str | None
    request_id: str | None


def reader_of_user(user: Any, unit_hsaid: str | None, *, address: str | None, request_id: str | None) -> Reader:
    """A signed-in portal user reading ``unit_hsaid``'s data: the commission on that unit when the
    person signed in with one (its HSA-id, purpose and unit), else the role's purpose."""
    commission = next((c for c in user.commissions if c.get("unit") == unit_hsaid), None)
    return Reader(
        actor=user.actor,
        hsa_id=user.hsa_id,
        role=user.role,
        commission=f"{commission['hsaid']} ({commission['purpose']}) på {commission['unit']}" if commission else None,
        purpose=str(commission["purpose"]) if commission and commission.get("purpose") else PURPOSES[user.role],
        address=address,
        request_id=request_id,
    )


def reader_of_sender(actor: Actor, *, address: str | None, request_id: str | None) -> Reader:
    """A journal system (``system:HSA-id``) or an API token (``token:id``) reading its own files."""
    return Reader(
        actor=actor,
        hsa_id=actor.id if actor.kind == "system" else None,
        role=actor.kind,
        commission=None,
        purpose=PURPOSES[actor.kind],
        address=address,
        request_id=request_id,
    )


def period_of(f: ReceivedFile) -> Period | None:
    """The period a received file is of, as the access log records it (none for an F01 name)."""
    return Period.parse(f.period) if f.period else None


def logged(
    app: App,
    reader: Reader,
    *,
    action: str,
    kind: str,
    unit_hsaid: str | None,
    period: Period | None,
    file: str,
    receipts: Iterable[str],
) -> AccessEntry:
    """Write the entry of one read (before the data is served); :class:`AccessLogUnavailable`
    when it cannot be written."""
    if action not in ACTIONS or kind not in KINDS:
        raise ValueError(f"unknown access {action}/{kind}")
    ids = sorted(set(receipts))
    try:
        entry = AccessEntry(
            at=utcnow(),
            actor=reader.actor,
            hsa_id=reader.hsa_id,
            role=reader.role,
            commission=reader.commission,
            purpose=reader.purpose,
            action=action,
            kind=kind,
            unit_hsaid=unit_hsaid,
            period=None if period is None else str(period),
            file=file[:255],
            receipts=json.dumps(ids),
            patients=patient_count(app, ids),
            request_id=reader.request_id,
            address=reader.address,
        )
        app.ledger.accesses.record(entry)
    except Exception as e:
        raise AccessLogUnavailable(f"åtkomstloggen kan inte skrivas ({type(e).__name__})") from e
    return entry


# --- the patients of a file -------------------------------------------------------------------


def patient_key(text: str) -> str | None:
    """A personnummer (any form the region writes) as it is compared: its last ten digits."""
    digits = re.sub(r"[\s+\-]", "", text)
    return digits[-10:] if digits.isdigit() and len(digits) in (10, 12) else None


def patients_in_file(app: App, f: ReceivedFile) -> set[str]:
    """The patients of one received file (from its stored bytes; none once it is gallrad)."""
    if f.gallrad_at is not None:
        return set()
    return _patients_in_raw(app.store.raw_path(f.sha256))


def _patients_in_raw(path: Path) -> set[str]:
    import polars as pl

    try:
        with path.open("rb") as fh:
            header = fh.readline().decode("utf-8-sig").rstrip("\r\n").split(";")
        names = [h.strip() for h in header]
        if "patient_id" not in names:
            return set()
        column = pl.read_csv(
            path,
            separator=";",
            has_header=True,
            columns=[names.index("patient_id")],
            infer_schema=False,
            truncate_ragged_lines=True,
            encoding="utf8-lossy",
        ).to_series()
    except (OSError, pl.exceptions.PolarsError, UnicodeDecodeError):
        return set()  # not readable as text (F02/F05): no patient can be read from it either
    return {k for v in column.drop_nulls().to_list() if (k := patient_key(str(v))) is not None}


def patients_of(app: App, receipts: Iterable[str]) -> set[str]:
    """The distinct patients of the received files ``receipts``."""
    found: set[str] = set()
    for rid in receipts:
        f = app.ledger.files.file_by_receipt(rid)
        if f is not None:
            found |= patients_in_file(app, f)
    return found


def patient_count(app: App, receipts: list[str]) -> int:
    """How many distinct patients the received files hold. One file's count is kept per stored
    file (its bytes never change): the kvittens page of a 200 MB file is read again and again at
    15:00, and its patient column would otherwise be read each time."""
    if len(receipts) == 1:
        f = app.ledger.files.file_by_receipt(receipts[0])
        if f is None or f.gallrad_at is not None:
            return 0
        return _count_in_raw(str(app.store.raw_path(f.sha256)))
    return len(patients_of(app, receipts))


@lru_cache(maxsize=4096)
def _count_in_raw(path: str) -> int:
    return len(_patients_in_raw(Path(path)))


# --- the patient extract ----------------------------------------------------------------------


def patient_extract(app: App, personnummer: str, *, actor: Actor) -> dict[str, Any]:
    """Who accessed files that hold this patient, when, at which unit (the patient's right to an
    extract). Reads every stored file for the patient; the request is itself audited (masked)."""
    key = patient_key(personnummer)
    if key is None:
        raise Refused("ange ett personnummer, samordningsnummer eller reservnummer med 10 eller 12 siffror")
    holding = {f.receipt_id for f in app.ledger.files.stored_files() if key in patients_in_file(app, f)}
    rows = [entry_dict(e) for e in app.ledger.accesses.entries() if holding & set(json.loads(e.receipts))]
    app.ledger.add_audit(
        actor=actor,
        action="patient_extract",
        subject=personnummer,
        detail={"files": len(holding), "accesses": len(rows)},
    )
    return {"files": sorted(holding), "accesses": rows}


def entry_dict(e: AccessEntry) -> dict[str, Any]:
    """One entry as ``--json`` and the exports give it."""
    return {
        "id": e.id,
        "at": e.at.astimezone(STOCKHOLM).isoformat(),
        "actor": e.actor,
        "hsa_id": e.hsa_id,
        "role": e.role,
        "commission": e.commission,
        "purpose": e.purpose,
        "action": e.action,
        "kind": e.kind,
        "unit_hsaid": e.unit_hsaid,
        "period": e.period,
        "file": e.file,
        "receipts": json.loads(e.receipts),
        "patients": e.patients,
        "request_id": e.request_id,
        "address": e.address,
    }


# --- the monthly follow-up --------------------------------------------------------------------


def _month(period: Period) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(period.first_day, dt.time(0), tzinfo=STOCKHOLM)
    end = dt.datetime.combine(period.next().first_day, dt.time(0), tzinfo=STOCKHOLM)
    return start, end


def off_hours(at: dt.datetime) -> bool:
    """Outside 07–18 on a vardag, Swedish time."""
    local = at.astimezone(STOCKHOLM)
    return not is_vardag(local.date()) or not (OFFICE[0] <= local.time() < OFFICE[1])


def _allowed_units(app: App, e: AccessEntry) -> frozenset[str] | None:
    """The units the reader may read now (None: every unit, an analyst's or auditor's role)."""
    if e.role in ("analyst", "admin", "auditor"):
        return None
    kind, _, ident = e.actor.partition(":")
    if kind == "person":
        acc = app.ledger.accounts.by_hsa_id(ident) if not ident.isdigit() else app.ledger.accounts.by_id(int(ident))
        return app.ledger.accounts.units_of(acc.id) if acc else frozenset()
    if kind == "token":
        tok = next((t for t in app.ledger.accounts.tokens() if t.id == int(ident)), None)
        return frozenset({tok.unit_hsaid}) if tok else frozenset()
    if kind == "system":
        live = app.ledger.systems.live(ident)
        return live[1] if live else frozenset()
    return frozenset()


def review(app: App, period: Period, *, seed: int | None = None) -> dict[str, Any]:
    """The follow-up report of the accesses made in ``period`` (a calendar month): access outside
    the reader's units (should be none), outside office hours, a person's month against their own
    earlier months, and a random sample for manual review (seeded by the period: the same report
    every time it is asked for)."""
    p = Period.parse(period)
    start, end = _month(p)
    month = app.ledger.accesses.entries(since=start, until=end)
    earlier = app.ledger.accesses.entries(until=start)
    outside = []
    # A reader's rights are looked up once per reader and role, not once per entry: a month has
    # thousands of entries from a few hundred readers.
    rights: dict[tuple[str, str], frozenset[str] | None] = {}
    for e in month:
        if (e.actor, e.role) not in rights:
            rights[(e.actor, e.role)] = _allowed_units(app, e)
        allowed = rights[(e.actor, e.role)]
        if allowed is not None and e.unit_hsaid not in allowed:
            outside.append(entry_dict(e))
    late = [entry_dict(e) for e in month if off_hours(e.at)]
    history: dict[str, Counter[str]] = defaultdict(Counter)
    for e in earlier:
        history[e.actor][str(Period.of_date(e.at.astimezone(STOCKHOLM).date()))] += e.patients
    this: Counter[str] = Counter()
    for e in month:
        this[e.actor] += e.patients
    volume = []
    for actor, patients in sorted(this.items()):
        months = list(history[actor].values())
        usual = statistics.median(months) if months else 0
        if months and patients >= VOLUME_FACTOR * usual and patients - usual >= VOLUME_MARGIN:
            volume.append({"actor": actor, "patients": patients, "usual": usual, "months": len(months)})
    rng = random.Random(seed if seed is not None else int(p.compact))
    sample = [entry_dict(e) for e in rng.sample(month, min(SAMPLE_SIZE, len(month)))]
    report = {
        "period": str(p),
        "entries": len(month),
        "outside_units": outside,
        "off_hours": late,
        "volume": volume,
        "sample": sample,
    }
    report["sha256"] = hashlib.sha256(json.dumps(report, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    report["flags"] = len(outside) + len(late) + len(volume)
    report["signed"] = [
        {
            "reviewer": r.reviewer,
            "at": r.reviewed_at.isoformat(),
            "report_sha256": r.report_sha256,
            "comment": r.comment,
        }
        for r in app.ledger.accesses.reviews(p)
    ]
    return report


def sign_review(app: App, period: Period, *, actor: Actor, comment: str | None) -> dict[str, Any]:
    """The reviewer signs the report as it reads now (its hash is recorded with the sign-off)."""
    report = review(app, period)
    app.ledger.accesses.add_review(
        LogReview(
            period=report["period"],
            reviewed_at=utcnow(),
            reviewer=actor,
            report_sha256=report["sha256"],
            flags=report["flags"],
            comment=comment,
        ),
        actor=actor,
        detail={"report_sha256": report["sha256"], "flags": report["flags"]},
    )
    return review(app, period)


def review_lines(report: dict[str, Any]) -> list[str]:
    """The follow-up report as the reviewer reads it (Swedish)."""
    lines = [f"Logguppföljning {report['period']}: {report['entries']} åtkomster, {report['flags']} att granska."]
    for title, rows in (
        ("Utanför läsarens enheter", report["outside_units"]),
        ("Utanför kontorstid", report["off_hours"]),
    ):
        lines.append(f"{title}: {len(rows)}")
        lines += [f"  {r['at']}  {r['hsa_id'] or r['actor']}  {r['unit_hsaid'] or '–'}  {r['file']}" for r in rows]
    lines.append(f"Ovanlig mängd mot personens egna månader: {len(report['volume'])}")
    lines += [
        f"  {v['actor']}: {v['patients']} patienter (median {v['usual']} över {v['months']} månader)"
        for v in report["volume"]
    ]
    lines.append(f"Stickprov för manuell granskning: {len(report['sample'])}")
    lines += [f"  {r['at']}  {r['hsa_id'] or r['actor']}  {r['kind']}  {r['file']}" for r in report["sample"]]
    lines += [f"Signerad av {s['reviewer']} {s['at']}" for s in report["signed"]] or ["Inte signerad."]
    return lines


EXPORT_FIELDS = (
    "id", "at", "actor", "hsa_id", "role", "commission", "purpose", "action", "kind",
    "unit_hsaid", "period", "file", "receipts", "patients", "request_id", "address",
)  # fmt: skip


def export(app: App, out: Any, *, fmt: str, what: str) -> None:
    """The entries (or the sign-offs) for the region's log analysis tool: CSV or JSON lines."""
    import csv

    if what == "entries":
        rows = [entry_dict(e) for e in app.ledger.accesses.entries()]
        fields: tuple[str, ...] = EXPORT_FIELDS
    else:
        rows = [
            {"id": r.id, "period": r.period, "reviewed_at": r.reviewed_at.isoformat(), "reviewer": r.reviewer,
             "report_sha256": r.report_sha256, "flags": r.flags, "comment": r.comment}
            for r in app.ledger.accesses.reviews()
        ]  # fmt: skip
        fields = ("id", "period", "reviewed_at", "reviewer", "report_sha256", "flags", "comment")
    if fmt == "jsonl":
        for r in rows:
            out.write(json.dumps(r, ensure_ascii=False) + "\n")
        return
    writer = csv.DictWriter(out, fieldnames=list(fields), delimiter=";")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, list) else v for k, v in r.items()})


def close_receipts(app: App, period: Period, unit_hsaid: str | None = None) -> list[str]:
    """The received files a close took (of one unit, or all): what its published data covers."""
    pc = app.ledger.closes.close_of(period)
    if pc is None:
        return []
    files = json.loads(pc.snapshot)["files"]
    return [f["receipt_id"] for f in files if f["receipt_id"] and (unit_hsaid is None or f["unit_hsaid"] == unit_hsaid)]
