"""Paying the units (UTBETALNING.md): ``vardfil payment PERIOD``.

After the analysts have finalised P: one Peppol BIS Billing 3 self-billing document per PRIVAT
unit and filtyp with a non-zero total (``vardfil.publish.ubl``), and the payment list (CSV and
Parquet) with every unit of the close — OFFENTLIG ones as ``INTERN``, zero totals as ``INGEN``.
Everything comes from what the close recorded (its lines, its totals, its snapshot's hash) and the
providers' register ``vardgivare.csv`` in the reference folder; nothing is recomputed.

Refused (:class:`PaymentRefused`, exit 2) before the period is finalised, and when any PRIVAT unit
with an underlag lacks a valid ``vardgivare.csv`` row: every such unit and value is named, and
nothing is written for anyone — nothing is ever paid to a guessed account. Every document is
checked against the rules its receiver runs (``vardfil.publish.peppol``) before anything is
written. Run again: the same bytes.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from filespec.calendar import STOCKHOLM, Period, is_vardag
from reports.underlag import COMPONENT_LABELS
from validators.identifiers import luhn_valid
from vardfil.app import App
from vardfil.errors import Refused
from vardfil.publish import peppol
from vardfil.publish.datasets import atomic
from vardfil.publish.ubl import Document, Line, Party, build

# The buyer, always the region (UTBETALNING.md section 2; its address ANTAGEN).
REGION = Party(
    orgnr="2321000131",
    name="Västra Götalandsregionen",
    street="Regionens Hus, Östergatan 1",
    postcode="46280",
    city="Vänersborg",
)
PROVIDERS = "vardgivare.csv"
LIST_COLUMNS = (
    "hsaid", "namn", "filtyp", "driftform", "orgnr", "bankgiro", "dokument", "dokumenttyp", "belopp", "forfallodag",
)  # fmt: skip
LIST_SCHEMA = pa.schema(
    [
        *(pa.field(c, pa.string()) for c in LIST_COLUMNS[:8]),
        pa.field("belopp", pa.decimal128(14, 2)),
        pa.field("forfallodag", pa.date32()),
    ]
)


class PaymentRefused(Refused):
    """The payment run cannot be made as asked (exit 2): nothing was written."""


@dataclass(frozen=True, kw_only=True)
class Provider:
    """One row of ``vardgivare.csv``."""

    hsaid: str
    orgnr: str
    namn: str
    momsregnr: str
    bankgiro: str
    gatuadress: str
    postnummer: str
    ort: str


def provider_problems(p: Provider) -> list[str]:
    """What is wrong with a provider's row (Swedish, naming the value)."""
    problems = []
    if len(p.orgnr) != 10 or not p.orgnr.isdigit():
        problems.append(f"organisationsnumret {p.orgnr!r} har inte 10 siffror")
    elif not luhn_valid(p.orgnr):
        problems.append(f"organisationsnumret {p.orgnr} har fel kontrollsiffra")
    if p.momsregnr != f"SE{p.orgnr}01":
        problems.append(f"momsregistreringsnumret {p.momsregnr!r} är inte SE{p.orgnr}01")
    if not (p.bankgiro.isdigit() and len(p.bankgiro) in (7, 8)):
        problems.append(f"bankgironumret {p.bankgiro!r} har inte 7 eller 8 siffror")
    elif not luhn_valid(p.bankgiro):
        problems.append(f"bankgironumret {p.bankgiro} har fel kontrollsiffra")
    if not (p.postnummer.isdigit() and len(p.postnummer) == 5):
        problems.append(f"postnumret {p.postnummer!r} har inte 5 siffror")
    for field, value in (("namnet", p.namn), ("gatuadressen", p.gatuadress), ("orten", p.ort)):
        if not value.strip():
            problems.append(f"{field} saknas")
    return problems


def load_providers(reference: Path) -> dict[str, Provider]:
    """``vardgivare.csv`` of a reference folder, by HSA-id (empty when there is none)."""
    path = reference / PROVIDERS
    if not path.is_file():
        return {}
    rows = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig")), delimiter=";")
    return {
        r["hsaid"].strip(): Provider(**{k: (r.get(k) or "").strip() for k in Provider.__dataclass_fields__})
        for r in rows
        if r.get("hsaid")
    }


def last_vardag(period: Period) -> dt.date:
    """The last vardag of a month (the payment day of the period before it)."""
    day = period.last_day
    while not is_vardag(day):
        day -= dt.timedelta(days=1)
    return day


def payment_folder(app: App, period: Period) -> Path:
    """The default folder of a period's payment basis: ``$VARDFIL_HOME/utbetalning/YYYY-MM/``."""
    return app.settings.home / "utbetalning" / str(period)


def _item_name(component: str, unit_price: str | None, period: Period, corrected: str | None) -> str:
    from reports.underlag import line_label

    if component == "PATIENTAVGIFT":
        return "Patientavgifter (avdrag)"
    if component == "MOMSKOMPENSATION":
        return "Momskompensation 6 %"
    if component == "RATTELSE":
        return f"Rättelse {corrected}"
    label = line_label(component, unit_price, period)
    return label.replace(", övriga yrkeskategorier", ", annan yrkeskategori")


def _line(ln: Any, period: Period) -> Line:
    amount = Decimal(ln.amount)
    if ln.component in ("PATIENTAVGIFT", "MOMSKOMPENSATION", "RATTELSE") or ln.quantity is None:
        quantity = Decimal(1) if amount >= 0 else Decimal(-1)
        price = abs(amount)
    else:
        quantity, price = Decimal(ln.quantity), Decimal(ln.unit_price)
    return Line(
        quantity=quantity,
        price=price,
        amount=amount,
        name=_item_name(ln.component, ln.unit_price, period, ln.corrected_period) or COMPONENT_LABELS[ln.component],
        code=ln.component,
    )


def make_payment(app: App, period: Period, *, out: Path | None = None) -> dict[str, Any]:
    """The payment run of a finalised period (see the module docstring); the JSON summary."""
    p = Period.parse(period)  # as is, or a caller's text
    state = app.ledger.closes.period_state(p)
    if state is None or state.state != "FINALISED":
        raise PaymentRefused(
            f"perioden {p} är inte fastställd: betalningsunderlaget görs när analytikerna har fastställt den "
            f"(vardfil finalise {p})"
        )
    pc = app.ledger.closes.close_of(p)
    assert pc is not None  # a finalised period is closed
    run = _Run(
        period=p,
        finalised=state.updated_at.astimezone(STOCKHOLM).date(),
        due=last_vardag(p.next()),
        snapshot_sha=hashlib.sha256(pc.snapshot.encode()).hexdigest(),
        providers=load_providers(app.reference.root),
    )
    lines_of: dict[tuple[str, str], list[Any]] = {}
    for ln in app.ledger.closes.underlag_lines(p):
        lines_of.setdefault((ln.unit_hsaid, ln.file_type), []).append(ln)
    slots = sorted({(f["unit_hsaid"], f["file_type"]) for f in json.loads(pc.snapshot)["files"]} | set(lines_of))
    problems = _provider_problems(app, run, slots, lines_of)
    if problems:
        raise PaymentRefused(f"betalningsunderlaget för {p} görs inte, inget skrevs: " + "; ".join(problems))
    documents: list[tuple[str, bytes, dict[str, Any]]] = []
    rows = [_slot(app, run, hsaid, ft, lines_of.get((hsaid, ft), []), documents) for hsaid, ft in slots]
    folder = out or payment_folder(app, p)
    folder.mkdir(parents=True, exist_ok=True)
    listed = f"utbetalning_{p.compact}"
    for name, xml, _ in documents:
        _write(folder / name, xml)
    _write(folder / f"{listed}.csv", _csv(rows))
    _write(folder / f"{listed}.parquet", _parquet(rows))
    list_total = sum((r["belopp"] for r in rows), Decimal("0.00"))
    app.ledger.add_audit(
        actor="job:payment",
        action="payment_basis",
        subject=str(p),
        detail={"documents": len(documents), "total": str(list_total), "folder": str(folder)},
    )
    return {
        "period": str(p),
        "documents": [{"path": str(folder / name), **meta} for name, _, meta in documents],
        "list": {
            "csv": str(folder / f"{listed}.csv"),
            "parquet": str(folder / f"{listed}.parquet"),
            "rows": len(rows),
            "total": str(list_total),
        },
        "due_date": run.due.isoformat(),
        "close_total": pc.total,
    }


@dataclass(frozen=True, kw_only=True)
class _Run:
    """What every document of one payment run shares."""

    period: Period
    finalised: dt.date
    due: dt.date
    snapshot_sha: str
    providers: dict[str, Provider]


def _provider_problems(
    app: App, run: _Run, slots: list[tuple[str, str]], lines_of: dict[tuple[str, str], list[Any]]
) -> list[str]:
    """Every PRIVAT unit with lines needs a valid ``vardgivare.csv`` row: each one that has none,
    or a wrong one, named (checked before anything is written)."""
    problems: list[str] = []
    for hsaid, ft in slots:
        unit = app.reference.units.get(hsaid)
        if unit is None or unit.driftform != "PRIVAT" or not lines_of.get((hsaid, ft)):
            continue
        row = run.providers.get(hsaid)
        if row is None:
            problems.append(f"{hsaid} ({unit.namn}): saknar rad i {PROVIDERS}")
        else:
            problems += [f"{hsaid} ({unit.namn}): {pr}" for pr in provider_problems(row)]
    return problems


def _slot(
    app: App, run: _Run, hsaid: str, ft: str, lines: list[Any], documents: list[tuple[str, bytes, dict[str, Any]]]
) -> dict[str, Any]:
    """One unit and filtyp: its row of the payment list, and (a PRIVAT unit with a non-zero total)
    its self-billing document appended to ``documents``."""
    unit = app.reference.units.get(hsaid)
    total = sum((Decimal(ln.amount) for ln in lines), Decimal("0.00"))
    privat = unit is not None and unit.driftform == "PRIVAT"
    row = run.providers.get(hsaid) if privat else None
    doc_id, doc_type = "", ("INTERN" if not privat else "INGEN")
    if privat and total != 0:
        assert row is not None
        doc = _document(run, hsaid, ft, row, [ln for ln in lines if Decimal(ln.amount) != 0])
        xml = build(doc)
        found = peppol.check(xml)
        if found:
            raise PaymentRefused(f"dokumentet {doc.id} bryter mot {', '.join(found)}: inget skrevs")
        doc_id, doc_type = doc.id, doc.type_code
        meta = {"id": doc_id, "type": doc_type, "unit_hsaid": hsaid, "file_type": ft, "amount": str(total)}
        documents.append((f"{doc_id}.xml", xml, meta))
    return {
        "hsaid": hsaid,
        "namn": unit.namn if unit else "",
        "filtyp": ft,
        "driftform": unit.driftform if unit else "",
        "orgnr": row.orgnr if row else "",
        "bankgiro": row.bankgiro if row else "",
        "dokument": doc_id,
        "dokumenttyp": doc_type,
        "belopp": total,
        "forfallodag": run.due,
    }


def _document(run: _Run, hsaid: str, ft: str, row: Provider, own: list[Any]) -> Document:
    p = run.period
    return Document(
        id=f"VF-{p.compact}-{ft}-{hsaid}",
        issue_date=run.finalised,
        due_date=run.due,
        buyer_reference=f"{ft}-{p.compact}",
        note=f"Ersättningsunderlag {ft} {p}, fastställt {run.finalised.isoformat()}; "
        f"stängningens ögonblicksbild SHA-256 {run.snapshot_sha}",
        period_start=p.first_day,
        period_end=p.last_day,
        seller=Party(
            orgnr=row.orgnr,
            name=row.namn,
            street=row.gatuadress,
            postcode=row.postnummer,
            city=row.ort,
            vat=row.momsregnr,
        ),
        buyer=REGION,
        bankgiro=row.bankgiro,
        lines=tuple(_line(ln, p) for ln in own),
    )


def _csv(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=";", lineterminator="\n")
    writer.writerow(LIST_COLUMNS)
    for r in rows:
        writer.writerow([r[c] for c in LIST_COLUMNS])  # a Decimal and a date as str() gives them: 123.45, 2026-11-30
    return out.getvalue().encode("utf-8")


def _parquet(rows: list[dict[str, Any]]) -> bytes:
    table = pa.Table.from_pylist(rows, schema=LIST_SCHEMA)
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _write(path: Path, data: bytes) -> None:
    """Through the publishers' atomic rename, and not at all when the bytes are there already (a rerun)."""
    if not (path.is_file() and path.read_bytes() == data):
        atomic(path, lambda tmp: tmp.write_bytes(data))


def payment_view(app: App, period: Period) -> dict[str, Any] | None:
    """What a period's payment basis holds, read back from its files (None: not made yet)."""
    folder = payment_folder(app, period)
    listed = folder / f"utbetalning_{Period.parse(period).compact}.csv"
    if not listed.is_file():
        return None
    rows = list(csv.DictReader(io.StringIO(listed.read_text(encoding="utf-8")), delimiter=";"))
    return {
        "folder": folder,
        "files": sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")),
        "rows": rows,
        "total": sum((Decimal(r["belopp"]) for r in rows), Decimal("0.00")),
        "due": rows[0]["forfallodag"] if rows else None,
    }


def document_view(xml: bytes) -> dict[str, Any]:
    """A self-billing document as a person reads it: its lines, total, due date and bankgiro."""
    from lxml import etree

    from vardfil.publish.ubl import NS

    root = etree.fromstring(xml)
    credit = etree.QName(root).localname == "CreditNote"
    qty = "cbc:CreditedQuantity" if credit else "cbc:InvoicedQuantity"
    lines = [
        {
            "name": ln.findtext("cac:Item/cbc:Name", namespaces=NS),
            "quantity": Decimal(ln.findtext(qty, namespaces=NS)),
            "price": Decimal(ln.findtext("cac:Price/cbc:PriceAmount", namespaces=NS)),
            "amount": Decimal(ln.findtext("cbc:LineExtensionAmount", namespaces=NS)),
        }
        for ln in root.findall("cac:CreditNoteLine" if credit else "cac:InvoiceLine", namespaces=NS)
    ]
    return {
        "id": root.findtext("cbc:ID", namespaces=NS),
        "credit": credit,
        "issue_date": root.findtext("cbc:IssueDate", namespaces=NS),
        "due_date": root.findtext("cbc:DueDate", namespaces=NS),
        "seller": root.findtext(
            "cac:AccountingSupplierParty/cac:Party/cac:PartyLegalEntity/cbc:RegistrationName", namespaces=NS
        ),
        "bankgiro": root.findtext("cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:ID", namespaces=NS),
        "payable": Decimal(root.findtext("cac:LegalMonetaryTotal/cbc:PayableAmount", namespaces=NS)),
        "note": root.findtext("cbc:Note", namespaces=NS),
        "lines": lines,
    }
