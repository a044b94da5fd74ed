"""Paying the units (UTBETALNING.md): the region's example month, finalised, gives one document
per PRIVAT unit and filtyp whose PayableAmount is its underlag total to the öre and a payment list
whose sum is the close's total; a negative total is a CreditNote 261; a missing or invalid
provider row stops the run with its message and writes nothing; the same bytes every run; and
each document passes the rules its receiver runs, which also catch a broken one."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import shutil
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import cli
from lxml import etree

EXAMPLE = Path(__file__).parent / "data" / "region_example"
EXPECTED = json.loads((EXAMPLE / "expected.json").read_text(encoding="utf-8"))
REF = EXAMPLE / "reference"
NS = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}


def _month(reference: Path) -> dict[str, dict]:
    """Both closes of the region's example, each finalised; their summaries."""
    closes = {c["after_submission"]: c for c in EXPECTED["closes"]}
    out = {}
    for sub in EXPECTED["submissions"]:
        cli("submit", str(EXAMPLE / sub["file"]), "--received-at", sub["received_at"], "--reference", str(reference))
        close = closes.get(sub["index"])
        if close:
            code, summary = cli("close", close["period"], "--at", close["at"], "--reference", str(reference))
            assert code == 0
            out[close["period"]] = json.loads(summary)
    return out


def _files(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_the_example_month_is_paid_to_the_ore(app_env, tmp_path):
    from vardfil.publish.peppol import check

    summaries = _month(REF)
    assert cli("payment", "2026-09", "--reference", str(REF))[0] == 2  # not finalised yet
    for period, summary in summaries.items():
        assert cli("finalise", period)[0] == 0
        code, out = cli("payment", period, "--reference", str(REF))
        assert code == 0, out
        paid = json.loads(out)
        folder = app_env.home / "utbetalning" / period
        totals = {(u["unit_hsaid"], u["file_type"]): Decimal(u["total"]) for u in summary["units"]}
        lines = {}
        for ln in _underlag(summary):
            key = (ln["unit_hsaid"], ln["file_type"])
            lines[key] = lines.get(key, Decimal(0)) + Decimal(str(ln["amount"]))
        privat = {
            r["hsaid"] for r in csv.DictReader(io.StringIO((REF / "enhetsregister.csv").read_text()), delimiter=";")
            if r["driftform"] == "PRIVAT"
        }  # fmt: skip
        expected_docs = {k for k, v in lines.items() if k[0] in privat and v != 0}
        assert {(d["unit_hsaid"], d["file_type"]) for d in paid["documents"]} == expected_docs
        for d in paid["documents"]:
            xml = Path(d["path"]).read_bytes()
            root = etree.fromstring(xml)
            payable = Decimal(root.findtext("cac:LegalMonetaryTotal/cbc:PayableAmount", namespaces=NS))
            assert payable == abs(lines[(d["unit_hsaid"], d["file_type"])]) and d["amount"] == str(
                lines[(d["unit_hsaid"], d["file_type"])]
            )
            assert (
                root.findtext("cbc:ID", namespaces=NS)
                == f"VF-{period.replace('-', '')}-{d['file_type']}-{d['unit_hsaid']}"
            )
            assert check(xml) == []
        # The list: every unit of the close, OFFENTLIG as INTERN, zero as INGEN; its sum the close's.
        rows = list(
            csv.DictReader(
                io.StringIO((folder / f"utbetalning_{period.replace('-', '')}.csv").read_text()), delimiter=";"
            )
        )
        assert list(rows[0]) == [
            "hsaid",
            "namn",
            "filtyp",
            "driftform",
            "orgnr",
            "bankgiro",
            "dokument",
            "dokumenttyp",
            "belopp",
            "forfallodag",
        ]
        assert sum(Decimal(r["belopp"]) for r in rows) == Decimal(summary["total"]) == Decimal(paid["list"]["total"])
        assert {r["dokumenttyp"] for r in rows if r["driftform"] == "OFFENTLIG"} <= {"INTERN"}
        assert all(
            r["dokumenttyp"] == "INGEN" for r in rows if r["driftform"] == "PRIVAT" and Decimal(r["belopp"]) == 0
        )
        table = pq.read_table(folder / f"utbetalning_{period.replace('-', '')}.parquet")
        assert table.num_rows == len(rows) and sum(table.column("belopp").to_pylist()) == Decimal(summary["total"])
        assert set(totals) <= {(r["hsaid"], r["filtyp"]) for r in rows}
        # The payment day: the last vardag of the next month.
        assert {r["forfallodag"] for r in rows} == {paid["due_date"]}
        before = _files(folder)
        assert cli("payment", period, "--reference", str(REF))[0] == 0
        assert _files(folder) == before  # the same bytes
    assert json.loads(cli("payment", "2026-10", "--reference", str(REF))[1])["due_date"] == "2026-11-30"


def _underlag(summary: dict) -> list[dict]:
    return pq.read_table(summary["underlag_parquet"]).to_pylist()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda rows: rows[:1] + rows[2:], "saknar rad i vardgivare.csv"),
        (lambda rows: [r.replace("5590123450", "5590123451") for r in rows], "fel kontrollsiffra"),
        (lambda rows: [r.replace("50512342", "505123") for r in rows], "har inte 7 eller 8 siffror"),
    ],
    ids=["no row", "orgnr Luhn", "bankgiro of six digits"],
)
def test_a_bad_provider_row_stops_the_run_and_writes_nothing(app_env, tmp_path, change, message, capsys):
    from vardfil.cli import main

    reference = tmp_path / "reference"
    shutil.copytree(REF, reference)
    text = (reference / "vardgivare.csv").read_text().splitlines()
    (reference / "vardgivare.csv").write_text("\n".join([text[0], *change(text[1:])]) + "\n")
    _month(reference)
    assert cli("finalise", "2026-09")[0] == 0
    assert main(["payment", "2026-09", "--reference", str(reference)]) == 2
    err = capsys.readouterr().err
    assert message in err and "inget skrevs" in err
    assert not (app_env.home / "utbetalning").exists()


def test_a_negative_total_is_a_credit_note(app):
    """A correction that takes back more than the unit earns in its period: the unit pays back."""
    from vardfil.ledger import PeriodClose, UnderlagLineRow
    from vardfil.publish.payment import make_payment
    from vardfil.publish.peppol import check

    unit = "SE2321000131-E000000001001"  # a PRIVAT VGP unit of the sample register
    assert app.reference.units[unit].driftform == "PRIVAT"
    ref = app.reference.root
    providers = ref / "vardgivare.csv"
    assert providers.is_file()
    now = dt.datetime(2026, 12, 4, 15, tzinfo=dt.UTC)
    close = PeriodClose(
        period="2026-11", closed_at=now, recorded_at=now, actor="job:test",
        snapshot=json.dumps({"files": [{"unit_hsaid": unit, "file_type": "VGP", "receipt_id": None}], "at": now.isoformat()}),
        underlag_path="x", total="-1500.00",
    )  # fmt: skip
    lines = [
        UnderlagLineRow(close_period="2026-11", period="2026-11", file_type="VGP", unit_hsaid=unit, component="ALDER_KON", quantity="10",
                        unit_price="50.00", amount="500.00", corrected_period=None),
        UnderlagLineRow(close_period="2026-11", period="2026-11", file_type="VGP", unit_hsaid=unit, component="RATTELSE", quantity=None,
                        unit_price=None, amount="-2000.00", corrected_period="2026-10"),
    ]  # fmt: skip
    assert app.ledger.closes.record_close(close, lines, [], audit_detail={})
    app.ledger.decisions.finalise(period="2026-11", actor="job:test")
    paid = make_payment(app, "2026-11")
    (doc,) = paid["documents"]
    assert doc["type"] == "261" and doc["amount"] == "-1500.00"
    root = etree.fromstring(Path(doc["path"]).read_bytes())
    assert etree.QName(root).localname == "CreditNote"
    assert root.findtext("cbc:CreditNoteTypeCode", namespaces=NS) == "261"
    assert root.findtext("cac:LegalMonetaryTotal/cbc:PayableAmount", namespaces=NS) == "1500.00"
    credited = [
        (ln.findtext("cbc:CreditedQuantity", namespaces=NS), ln.findtext("cbc:LineExtensionAmount", namespaces=NS))
        for ln in root.findall("cac:CreditNoteLine", namespaces=NS)
    ]
    assert credited == [("-10", "-500.00"), ("1", "2000.00")]  # every sign turned
    assert check(Path(doc["path"]).read_bytes()) == []


def _set(xml: bytes, path: str, value: str) -> bytes:
    root = etree.fromstring(xml)
    root.find(path, namespaces=NS).text = value
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def test_the_rules_catch_a_broken_document():
    """Each check can fail: a document changed the way a mistake would change it breaks its rule."""
    from vardfil.publish.peppol import check
    from vardfil.publish.ubl import Document, Line, Party, build

    seller = Party(orgnr="5590123450", name="Ängens Vårdcentral AB", street="Storgatan 12", postcode="44130",
                   city="Alingsås", vat="SE559012345001")  # fmt: skip
    buyer = Party(
        orgnr="2321000131", name="Västra Götalandsregionen", street="Östergatan 1", postcode="46280", city="Vänersborg"
    )
    doc = Document(
        id="VF-202610-VGP-X", issue_date=dt.date(2026, 11, 20), due_date=dt.date(2026, 11, 30),
        buyer_reference="VGP-202610", note="n", period_start=dt.date(2026, 10, 1), period_end=dt.date(2026, 10, 31),
        seller=seller, buyer=buyer, bankgiro="50512342",
        lines=(Line(quantity=Decimal(3), price=Decimal("100.00"), amount=Decimal("300.00"), name="a", code="CNI"),),
    )  # fmt: skip
    good = build(doc)
    assert check(good) == []
    breaks = {
        "BR-CO-10": _set(good, "cac:LegalMonetaryTotal/cbc:LineExtensionAmount", "301.00"),
        "PEPPOL-EN16931-R120": good.replace(
            b'<cbc:PriceAmount currencyID="SEK">100.00', b'<cbc:PriceAmount currencyID="SEK">99.00'
        ),
        "SE-R-013": good.replace(b"5590123450", b"5590123451"),
        "SE-R-009": good.replace(b"50512342", b"505123"),
        "PEPPOL-EN16931-R002": good.replace(b"<cbc:Note>n</cbc:Note>", b"<cbc:Note>n</cbc:Note><cbc:Note>m</cbc:Note>"),
        "BR-E-10": good.replace(
            b"<cbc:TaxExemptionReasonCode>VATEX-EU-132-1C</cbc:TaxExemptionReasonCode>", b""
        ).replace(b"<cbc:TaxExemptionReason>Momsfri sjukv\xc3\xa5rd</cbc:TaxExemptionReason>", b""),
        "PEPPOL-EN16931-R008": good.replace(b"<cbc:Note>n</cbc:Note>", b"<cbc:Note></cbc:Note>"),
        "BR-27": good.replace(b">100.00</cbc:PriceAmount>", b">-100.00</cbc:PriceAmount>"),
    }
    for rule_id, broken in breaks.items():
        assert broken != good, rule_id
        assert rule_id in check(broken), rule_id
    # The UBL 2.1 schema of what is written: an element out of UBL's order, a required one missing,
    # one the document type does not have.
    from vardfil.publish.peppol import schema_errors

    root = etree.fromstring(good)
    due, type_code = root.find("cbc:DueDate", NS), root.find("cbc:InvoiceTypeCode", NS)
    type_code.addnext(due)  # DueDate after InvoiceTypeCode
    swapped = etree.tostring(root)
    assert schema_errors(swapped) and "UBL-2.1" in check(swapped)
    root = etree.fromstring(good)
    root.remove(root.find("cac:LegalMonetaryTotal", NS))
    assert schema_errors(etree.tostring(root))
    credit = build(replace(doc, lines=(replace(doc.lines[0], quantity=Decimal(-3), amount=Decimal("-300.00")),)))
    assert schema_errors(credit) == [] and check(credit) == []
    root = etree.fromstring(credit)
    date = etree.Element(f"{{{NS['cbc']}}}DueDate")
    date.text = "2026-11-30"
    root.find("cbc:IssueDate", NS).addnext(date)  # UBL 2.1's CreditNote has no DueDate
    assert schema_errors(etree.tostring(root))


def test_the_portal_offers_the_payment_basis(tmp_path, monkeypatch):
    from conftest import web_env
    from test_portal import FILE_A1, PASSWORD, UNIT_A, csrf_of, login, upload

    from vardfil.accounts import create_account
    from vardfil.portal.app import create_app

    clock = web_env(monkeypatch, tmp_path, "2026-11-02T10:00:00+01:00", pool_workers="0")
    app = create_app()
    core = app.state.vardfil
    for name, role, units in (("anna", "unit", [UNIT_A]), ("analytiker", "analyst", [])):
        create_account(core.ledger, username=name, password=PASSWORD, role=role, units=units, actor="job:test")
    try:
        anna = login(app, "anna")
        upload(anna, UNIT_A, FILE_A1)
        clock.write_text("2026-11-04T15:05:00+01:00")
        analyst = login(app, "analytiker")
        analyst.post("/analys/2026-10/close", data={"csrf": csrf_of(analyst, "/analys/2026-10")})
        analyst.post("/analys/2026-10/finalise", data={"csrf": csrf_of(analyst, "/analys/2026-10")})
        board = analyst.get("/analys/2026-10").text
        assert "Betalningsunderlaget är inte gjort ännu" in board
        analyst.post("/analys/2026-10/utbetalning", data={"csrf": csrf_of(analyst, "/analys/2026-10")})
        board = analyst.get("/analys/2026-10").text
        doc_id = f"VF-202610-VGP-{UNIT_A}"
        assert 'id="payment"' in board and doc_id in board and "intern överföring" in board
        listed = analyst.get("/analys/2026-10/utbetalning/utbetalning_202610.csv")
        assert listed.status_code == 200 and listed.text.startswith("hsaid;namn;filtyp")
        assert analyst.get(f"/analys/2026-10/utbetalning/{doc_id}.xml").content.startswith(b"<?xml")
        assert analyst.get("/analys/2026-10/utbetalning/..%2Fledger.sqlite3").status_code == 404
        # The unit reads its own document as a page, and downloads it.
        assert f"/enhet/{UNIT_A}/utbetalning/2026-10" in anna.get(f"/enhet/{UNIT_A}").text
        page = anna.get(f"/enhet/{UNIT_A}/utbetalning/2026-10").text
        assert (
            "Avräkningsnota 2026-10" in page and "50712348" in page and "Förfallodag" in page and "2026-11-30" in page
        )
        xml = anna.get(f"/enhet/{UNIT_A}/utbetalning/2026-10/avrakningsnota.xml")
        assert xml.status_code == 200 and doc_id.encode() in xml.content
    finally:
        app.state.pool.shutdown()
        core.ledger.dispose()


def _good_document() -> bytes:
    from vardfil.publish.ubl import Document, Line, Party, build

    seller = Party(orgnr="5590123450", name="Ängens Vårdcentral AB", street="Storgatan 12", postcode="44130",
                   city="Alingsås", vat="SE559012345001")  # fmt: skip
    buyer = Party(
        orgnr="2321000131", name="Västra Götalandsregionen", street="Östergatan 1", postcode="46280", city="Vänersborg"
    )
    return build(
        Document(
            id="VF-202610-VGP-X", issue_date=dt.date(2026, 11, 20), due_date=dt.date(2026, 11, 30),
            buyer_reference="VGP-202610", note="n", period_start=dt.date(2026, 10, 1), period_end=dt.date(2026, 10, 31),
            seller=seller, buyer=buyer, bankgiro="50512342",
            lines=(Line(quantity=Decimal(3), price=Decimal("100.00"), amount=Decimal("300.00"), name="a", code="CNI"),),
        )
    )  # fmt: skip


SELLER = "cac:AccountingSupplierParty/cac:Party"
BUYER = "cac:AccountingCustomerParty/cac:Party"
TOTAL = "cac:LegalMonetaryTotal"
LINE = "cac:InvoiceLine"
# Each rule, and a change to a valid document that a mistake could make and that rule must catch:
# ("remove", path) | ("set", path, text) | ("attr", path, name, value or None).
MUTATIONS = {
    "BR-01": ("remove", "cbc:CustomizationID"),
    "BR-02": ("remove", "cbc:ID"),
    "BR-03": ("remove", "cbc:IssueDate"),
    "BR-04": ("remove", "cbc:InvoiceTypeCode"),
    "BR-05": ("set", "cbc:DocumentCurrencyCode", "EUR"),
    "BR-06": ("remove", f"{SELLER}/cac:PartyLegalEntity/cbc:RegistrationName"),
    "BR-07": ("remove", f"{BUYER}/cac:PartyLegalEntity/cbc:RegistrationName"),
    "BR-08": ("remove", f"{SELLER}/cac:PostalAddress"),
    "BR-09": ("remove", f"{SELLER}/cac:PostalAddress/cac:Country"),
    "BR-10": ("remove", f"{BUYER}/cac:PostalAddress"),
    "BR-11": ("remove", f"{BUYER}/cac:PostalAddress/cac:Country"),
    "BR-12": ("remove", f"{TOTAL}/cbc:LineExtensionAmount"),
    "BR-13": ("remove", f"{TOTAL}/cbc:TaxExclusiveAmount"),
    "BR-14": ("remove", f"{TOTAL}/cbc:TaxInclusiveAmount"),
    "BR-15": ("remove", f"{TOTAL}/cbc:PayableAmount"),
    "BR-16": ("remove", LINE),
    "BR-21": ("remove", f"{LINE}/cbc:ID"),
    "BR-22": ("remove", f"{LINE}/cbc:InvoicedQuantity"),
    "BR-23": ("attr", f"{LINE}/cbc:InvoicedQuantity", "unitCode", None),
    "BR-24": ("remove", f"{LINE}/cbc:LineExtensionAmount"),
    "BR-25": ("remove", f"{LINE}/cac:Item/cbc:Name"),
    "BR-26": ("remove", f"{LINE}/cac:Price"),
    "BR-27": ("set", f"{LINE}/cac:Price/cbc:PriceAmount", "-100.00"),
    "BR-CO-10": ("set", f"{TOTAL}/cbc:LineExtensionAmount", "301.00"),
    "BR-CO-13": ("set", f"{TOTAL}/cbc:TaxExclusiveAmount", "299.00"),
    "BR-CO-15": ("set", f"{TOTAL}/cbc:TaxInclusiveAmount", "299.00"),
    "BR-CO-16": ("set", f"{TOTAL}/cbc:PayableAmount", "299.00"),
    "BR-CO-18": ("remove", "cac:TaxTotal/cac:TaxSubtotal"),
    "BR-CO-25": ("remove", "cbc:DueDate"),
    "BR-62": ("attr", f"{SELLER}/cbc:EndpointID", "schemeID", None),
    "BR-63": ("attr", f"{BUYER}/cbc:EndpointID", "schemeID", None),
    "BR-E-02": ("remove", f"{SELLER}/cac:PartyTaxScheme"),
    "BR-E-05": ("set", f"{LINE}/cac:Item/cac:ClassifiedTaxCategory/cbc:Percent", "25"),
    "BR-E-08": ("set", "cac:TaxTotal/cac:TaxSubtotal/cbc:TaxableAmount", "200.00"),
    "BR-E-09": ("set", "cac:TaxTotal/cac:TaxSubtotal/cbc:TaxAmount", "1.00"),
    "BR-DEC-23": ("set", f"{LINE}/cbc:LineExtensionAmount", "300.001"),
    "PEPPOL-EN16931-R001": ("remove", "cbc:ProfileID"),
    "PEPPOL-SB-R004": (
        "set",
        "cbc:CustomizationID",
        "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0",
    ),
    "PEPPOL-SB-R007": ("set", "cbc:ProfileID", "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"),
    "PEPPOL-EN16931-R003": ("remove", "cbc:BuyerReference"),
    "PEPPOL-EN16931-R008": ("set", "cbc:Note", ""),
    "PEPPOL-EN16931-R010": ("remove", f"{BUYER}/cbc:EndpointID"),
    "PEPPOL-EN16931-R020": ("remove", f"{SELLER}/cbc:EndpointID"),
    "PEPPOL-EN16931-R051": ("attr", f"{LINE}/cac:Price/cbc:PriceAmount", "currencyID", "EUR"),
    "PEPPOL-EN16931-R120": ("set", f"{LINE}/cac:Price/cbc:PriceAmount", "99.00"),
    "PEPPOL-SB-TYPE": ("set", "cbc:InvoiceTypeCode", "380"),
    "PEPPOL-EN16931-CL008": ("attr", f"{SELLER}/cbc:EndpointID", "schemeID", "0088"),
    "PEPPOL-COMMON-R049": ("set", f"{BUYER}/cbc:EndpointID", "2321000132"),
    "SE-R-001": ("set", f"{SELLER}/cac:PartyTaxScheme/cbc:CompanyID", "SE55901234501"),
    "SE-R-002": ("set", f"{SELLER}/cac:PartyTaxScheme/cbc:CompanyID", "SE5590123450AB"),
    "SE-R-003": ("set", f"{SELLER}/cac:PartyLegalEntity/cbc:CompanyID", "559012345X"),
    "SE-R-004": ("set", f"{SELLER}/cac:PartyLegalEntity/cbc:CompanyID", "559012345"),
    "SE-R-013": ("set", f"{SELLER}/cac:PartyLegalEntity/cbc:CompanyID", "5590123451"),
    "SE-R-008": ("set", "cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:ID", "5051234X"),
    "SE-R-009": ("set", "cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:ID", "505123"),
    "SE-R-011": ("set", "cac:PaymentMeans/cbc:PaymentMeansCode", "31"),
    "SE-R-012": ("set", "cac:PaymentMeans/cbc:PaymentMeansCode", "58"),
}


@pytest.mark.parametrize("rule_id", sorted(MUTATIONS))
def test_every_rule_catches_its_mistake(rule_id):
    from vardfil.publish.peppol import check

    good = _good_document()
    assert check(good) == []
    root = etree.fromstring(good)
    op, path, *rest = MUTATIONS[rule_id]
    (el,) = root.xpath(path, namespaces=NS)
    if op == "remove":
        el.getparent().remove(el)
    elif op == "set":
        el.text = rest[0]
    else:
        name, value = rest
        if value is None:
            del el.attrib[name]
        else:
            el.set(name, value)
    assert rule_id in check(etree.tostring(root)), rule_id
