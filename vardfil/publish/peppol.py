"""The rules the region's receiver runs on every self-billing document, as far as they concern the
documents vardfil writes (UTBETALNING.md section 3), checked before a document is written.

The official rule sets are Schematron (EN 16931's CEN rules, Peppol BIS Billing 3's and its
self-billing variant, and the Swedish national rules SE-R inside Peppol's), published by
OpenPEPPOL: no registry this machine and CI reach offers the files, and they are not ours to copy
into the repository. What they assert about these documents is restated below, each
check named by the official rule's id: the same assertion on the same elements, in XPath over
the document as written. A rule of the sets that cannot apply to these documents (allowances,
other VAT categories, foreign parties, attachments) is not restated; ``docs/payment.md`` lists
which are and why.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

from lxml import etree

from validators.identifiers import luhn_valid
from vardfil.publish.ubl import CUSTOMIZATION, NS

PROFILE_SB = re.compile(r"urn:fdc:peppol\.eu:2017:poacc:selfbilling:\d{2}:1\.0")
ORE = Decimal("0.01")
SLACK = Decimal("0.02")  # u:slack of the Peppol rules


def _d(el: etree._Element | None) -> Decimal:
    try:
        return Decimal((el.text or "").strip()) if el is not None else Decimal("NaN")
    except InvalidOperation:
        return Decimal("NaN")


SCHEMAS = Path(__file__).with_name("ubl_subset")


@cache
def _schema(kind: str) -> Any:
    import xmlschema

    return xmlschema.XMLSchema(str(SCHEMAS / f"{kind}.xsd"))


def schema_errors(xml: bytes) -> list[str]:
    """Where the document leaves the UBL 2.1 elements it may use, in their order and cardinality
    (``ubl_subset/``: an element out of place, missing, repeated, or of the wrong type)."""
    root = etree.fromstring(xml)
    kind = "creditnote" if etree.QName(root).localname == "CreditNote" else "invoice"
    return [f"{e.path}: {e.reason}" for e in _schema(kind).iter_errors(xml.decode("utf-8"))]


SELLER = "cac:AccountingSupplierParty/cac:Party"
BUYER = "cac:AccountingCustomerParty/cac:Party"
TOTAL = "cac:LegalMonetaryTotal"


class _Doc:
    """One document under test: its paths read, and the rules it breaks gathered."""

    def __init__(self, xml: bytes):
        self.root = etree.fromstring(xml)
        self.credit = etree.QName(self.root).localname == "CreditNote"
        self.qty_tag = "cbc:CreditedQuantity" if self.credit else "cbc:InvoicedQuantity"
        self.lines = self.root.xpath("cac:CreditNoteLine" if self.credit else "cac:InvoiceLine", namespaces=NS)
        self.broken: list[str] = []

    def one(self, path: str) -> etree._Element | None:
        found = self.root.xpath(path, namespaces=NS)
        return found[0] if found else None

    def text(self, path: str) -> str:
        el = self.one(path)
        return (el.text or "").strip() if el is not None else ""

    def rule(self, rule_id: str, ok: Callable[[], bool]) -> None:
        """``rule_id`` is broken unless ``ok()`` holds (a value that cannot be read breaks it)."""
        try:
            good = ok()
        except (InvalidOperation, ValueError, TypeError):
            good = False
        if not good:
            self.broken.append(rule_id)


def check(xml: bytes) -> list[str]:
    """The ids of the rules the document breaks (``UBL-2.1`` for the schema; empty: none)."""
    d = _Doc(xml)
    _en16931(d)
    _peppol(d)
    _swedish(d)
    if schema_errors(xml):
        d.broken.append("UBL-2.1")
    return d.broken


def _en16931(d: _Doc) -> None:
    """EN 16931's business rules that concern these documents."""
    root, credit, lines, broken = d.root, d.credit, d.lines, d.broken
    one, text, rule = d.one, d.text, d.rule
    seller, buyer, total = SELLER, BUYER, TOTAL
    # --- EN 16931 (CEN) -----------------------------------------------------------------------
    rule("BR-01", lambda: bool(text("cbc:CustomizationID")))
    rule("BR-02", lambda: bool(text("cbc:ID")))
    rule("BR-03", lambda: bool(text("cbc:IssueDate")))
    rule("BR-04", lambda: bool(text("cbc:CreditNoteTypeCode" if credit else "cbc:InvoiceTypeCode")))
    rule("BR-05", lambda: text("cbc:DocumentCurrencyCode") == "SEK")
    rule("BR-06", lambda: bool(text(f"{seller}/cac:PartyLegalEntity/cbc:RegistrationName")))
    rule("BR-07", lambda: bool(text(f"{buyer}/cac:PartyLegalEntity/cbc:RegistrationName")))
    rule("BR-08", lambda: one(f"{seller}/cac:PostalAddress") is not None)
    rule("BR-09", lambda: bool(text(f"{seller}/cac:PostalAddress/cac:Country/cbc:IdentificationCode")))
    rule("BR-10", lambda: one(f"{buyer}/cac:PostalAddress") is not None)
    rule("BR-11", lambda: bool(text(f"{buyer}/cac:PostalAddress/cac:Country/cbc:IdentificationCode")))
    for rid, name in (
        ("BR-12", "LineExtensionAmount"),
        ("BR-13", "TaxExclusiveAmount"),
        ("BR-14", "TaxInclusiveAmount"),
        ("BR-15", "PayableAmount"),
    ):
        if one(f"{total}/cbc:{name}") is None:
            broken.append(rid)
    rule("BR-16", lambda: len(lines) > 0)
    for ln in lines:
        broken += _line_rules(ln, d.qty_tag)
    nets = [_d(ln.find(f"{{{NS['cbc']}}}LineExtensionAmount")) for ln in lines]
    rule("BR-CO-10", lambda: sum(nets, Decimal(0)) == _d(one(f"{total}/cbc:LineExtensionAmount")))
    rule("BR-CO-13", lambda: _d(one(f"{total}/cbc:TaxExclusiveAmount")) == _d(one(f"{total}/cbc:LineExtensionAmount")))
    rule(
        "BR-CO-15",
        lambda: (
            _d(one(f"{total}/cbc:TaxInclusiveAmount"))
            == _d(one(f"{total}/cbc:TaxExclusiveAmount")) + _d(one("cac:TaxTotal/cbc:TaxAmount"))
        ),
    )
    rule("BR-CO-16", lambda: _d(one(f"{total}/cbc:PayableAmount")) == _d(one(f"{total}/cbc:TaxInclusiveAmount")))
    rule("BR-CO-18", lambda: one("cac:TaxTotal/cac:TaxSubtotal") is not None)
    if not credit:
        rule("BR-CO-25", lambda: _d(one(f"{total}/cbc:PayableAmount")) <= 0 or bool(text("cbc:DueDate")))
    rule("BR-62", lambda: bool(root.xpath(f"{seller}/cbc:EndpointID/@schemeID", namespaces=NS)))
    rule("BR-63", lambda: bool(root.xpath(f"{buyer}/cbc:EndpointID/@schemeID", namespaces=NS)))
    # VAT category E: the seller's VAT identifier, tax 0, the taxable amount the sum of the E lines,
    # an exemption reason.
    rule("BR-E-02", lambda: bool(text(f"{seller}/cac:PartyTaxScheme[cac:TaxScheme/cbc:ID='VAT']/cbc:CompanyID")))
    rule(
        "BR-E-08",
        lambda: (
            _d(one("cac:TaxTotal/cac:TaxSubtotal[cac:TaxCategory/cbc:ID='E']/cbc:TaxableAmount"))
            == sum(nets, Decimal(0))
        ),
    )
    rule("BR-E-09", lambda: _d(one("cac:TaxTotal/cac:TaxSubtotal[cac:TaxCategory/cbc:ID='E']/cbc:TaxAmount")) == 0)
    rule(
        "BR-E-10",
        lambda: bool(
            text("cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory[cbc:ID='E']/cbc:TaxExemptionReasonCode")
            or text("cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory[cbc:ID='E']/cbc:TaxExemptionReason")
        ),
    )
    # Amounts to at most two decimals.
    rule(
        "BR-DEC-23",
        lambda: all(
            "." not in (el.text or "") or len((el.text or "").split(".")[1]) <= 2
            for el in root.xpath("//*[@currencyID]", namespaces=NS)
        ),
    )


def _peppol(d: _Doc) -> None:
    """Peppol BIS Billing 3's rules, the self-billing ones included."""
    root, credit = d.root, d.credit
    one, text, rule = d.one, d.text, d.rule
    seller, buyer = SELLER, BUYER
    # --- Peppol BIS Billing 3, self-billing -------------------------------------------------------
    rule("PEPPOL-EN16931-R001", lambda: bool(text("cbc:ProfileID")))
    rule("PEPPOL-SB-R004", lambda: text("cbc:CustomizationID") == CUSTOMIZATION)
    rule("PEPPOL-SB-R007", lambda: PROFILE_SB.fullmatch(text("cbc:ProfileID")) is not None)
    rule("PEPPOL-EN16931-R002", lambda: len(root.xpath("cbc:Note", namespaces=NS)) <= 1)
    rule("PEPPOL-EN16931-R003", lambda: bool(text("cbc:BuyerReference") or text("cac:OrderReference/cbc:ID")))
    rule("PEPPOL-EN16931-R008", lambda: not root.xpath("//*[not(*) and not(normalize-space())]"))
    rule("PEPPOL-EN16931-R010", lambda: one(f"{buyer}/cbc:EndpointID") is not None)
    rule("PEPPOL-EN16931-R020", lambda: one(f"{seller}/cbc:EndpointID") is not None)
    rule("PEPPOL-EN16931-R053", lambda: len(root.xpath("cac:TaxTotal[cac:TaxSubtotal]", namespaces=NS)) == 1)
    rule(
        "PEPPOL-EN16931-R051",
        lambda: all(el.get("currencyID") == "SEK" for el in root.xpath("//*[@currencyID]", namespaces=NS)),
    )
    # Self-billing types: 389 (invoice) and 261 (credit note).
    rule(
        "PEPPOL-SB-TYPE", lambda: text("cbc:CreditNoteTypeCode" if credit else "cbc:InvoiceTypeCode") in ("261", "389")
    )
    # Every identifier of scheme 0007 is a Swedish organisation number: ten digits, Luhn (fatal).
    rule(
        "PEPPOL-COMMON-R049",
        lambda: all(
            len(t := (el.text or "").strip()) == 10 and luhn_valid(t)
            for el in root.xpath(
                "//cbc:EndpointID[@schemeID='0007'] | //cac:PartyIdentification/cbc:ID[@schemeID='0007']"
                " | //cbc:CompanyID[@schemeID='0007']",
                namespaces=NS,
            )
        ),
    )
    # Endpoint scheme 0007 (Swedish organisation number) from the EAS code list.
    rule(
        "PEPPOL-EN16931-CL008",
        lambda: all(e.get("schemeID") == "0007" for e in root.xpath("//cbc:EndpointID", namespaces=NS)),
    )


def _swedish(d: _Doc) -> None:
    """The Swedish national rules (SE-R) for a Swedish supplier."""
    credit, text, rule, seller = d.credit, d.text, d.rule, SELLER
    # --- Swedish national rules (SE-R, for a Swedish supplier) -----------------------------------
    vat = text(f"{seller}/cac:PartyTaxScheme[cac:TaxScheme/cbc:ID='VAT']/cbc:CompanyID")
    org = text(f"{seller}/cac:PartyLegalEntity/cbc:CompanyID")
    rule("SE-R-001", lambda: len(vat) == 14)
    rule("SE-R-002", lambda: vat[2:].isdigit())
    rule("SE-R-003", lambda: org.isdigit())
    rule("SE-R-004", lambda: len(org) == 10)
    rule("SE-R-013", lambda: luhn_valid(org))
    if not credit:
        account = text("cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:ID")
        branch = text("cac:PaymentMeans/cac:PayeeFinancialAccount/cac:FinancialInstitutionBranch/cbc:ID")
        rule("SE-R-008", lambda: branch != "SE:BANKGIRO" or account.isdigit())
        rule("SE-R-009", lambda: branch != "SE:BANKGIRO" or len(account) in (7, 8))
        rule("SE-R-011", lambda: branch != "SE:BANKGIRO" or text("cac:PaymentMeans/cbc:PaymentMeansCode") == "30")
        rule("SE-R-012", lambda: text("cac:PaymentMeans/cbc:PaymentMeansCode") == "30")


def _line_rules(ln: etree._Element, qty_tag: str) -> list[str]:
    """The line-level rules of one line."""

    def first(path: str) -> etree._Element | None:
        found = ln.xpath(path, namespaces=NS)
        return found[0] if found else None

    quantity, net, price = first(qty_tag), first("cbc:LineExtensionAmount"), first("cac:Price/cbc:PriceAmount")
    percent = first("cac:Item/cac:ClassifiedTaxCategory/cbc:Percent")
    checks = {
        "BR-21": bool(ln.xpath("cbc:ID/text()", namespaces=NS)),
        "BR-22": quantity is not None,
        "BR-23": quantity is not None and bool(quantity.get("unitCode")),
        "BR-24": net is not None,
        "BR-25": bool(ln.xpath("cac:Item/cbc:Name/text()", namespaces=NS)),
        "BR-26": price is not None,
        "BR-27": price is not None and _d(price) >= 0,
        "BR-E-05": percent is not None and _d(percent) == 0,
        # Peppol: the line net amount is the quantity times the price (these lines have no
        # allowance, charge or base quantity), within the rule's own slack of 0.02: a listing's
        # weighted points (7 505,075) times its price is rounded to the öre on the underlag.
        "PEPPOL-EN16931-R120": None not in (quantity, net, price) and abs(_d(net) - _d(quantity) * _d(price)) <= SLACK,
    }
    return [rule_id for rule_id, ok in checks.items() if not ok]
