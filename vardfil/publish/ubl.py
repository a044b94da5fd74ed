"""Peppol BIS Billing 3 self-billing documents (UBL 2.1) as UTBETALNING.md section 3 fixes them,
built with lxml element by element in the order the UBL 2.1 schema's sequences require.

An ``Invoice`` (type 389) for a positive total, a ``CreditNote`` (type 261) for a negative one,
its amounts written as positive credits and every line's sign turned. Amounts are ``Decimal``s
from the recorded underlag lines, written to the öre; nothing is computed in floating point.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from lxml import etree

NS = {
    "invoice": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    "creditnote": "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
CUSTOMIZATION = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:selfbilling:3.0"
PROFILE = "urn:fdc:peppol.eu:2017:poacc:selfbilling:01:1.0"
CURRENCY = "SEK"
EXEMPTION_CODE, EXEMPTION_REASON = "VATEX-EU-132-1C", "Momsfri sjukvård"
ORE = Decimal("0.01")


@dataclass(frozen=True, kw_only=True)
class Party:
    """A seller (the provider) or the buyer (the region)."""

    orgnr: str
    name: str
    street: str
    postcode: str
    city: str
    vat: str | None = None  # the seller's momsregistreringsnummer


@dataclass(frozen=True, kw_only=True)
class Line:
    """One document line, as the underlag line gives it (signs as on an invoice)."""

    quantity: Decimal
    price: Decimal  # never negative (EN 16931 BR-27)
    amount: Decimal  # = quantity × price, to the öre
    name: str
    code: str  # the component code (the seller's item identification)


@dataclass(frozen=True, kw_only=True)
class Document:
    """Everything one self-billing document says."""

    id: str
    issue_date: dt.date
    due_date: dt.date
    buyer_reference: str
    note: str
    period_start: dt.date
    period_end: dt.date
    seller: Party
    buyer: Party
    bankgiro: str
    lines: tuple[Line, ...]

    @property
    def total(self) -> Decimal:
        """The sum of the lines (negative: a credit note)."""
        return sum((ln.amount for ln in self.lines), Decimal("0.00"))

    @property
    def credit(self) -> bool:
        """A negative total is written as a credit note."""
        return self.total < 0

    @property
    def type_code(self) -> str:
        """389 (self-billed invoice) or 261 (self-billed credit note)."""
        return "261" if self.credit else "389"


def _money(value: Decimal) -> str:
    return str(value.quantize(ORE))


def _price(value: Decimal) -> str:
    # A unit price as the price list has it (471.0000 → 471.00; a price with more decimals keeps
    # them: rounding it would make quantity × price disagree with the recorded amount).
    return _money(value) if value == value.quantize(ORE) else f"{value.normalize():f}"


def _qty(value: Decimal) -> str:
    # Quantities are counts (or ±1): written without a needless fraction.
    normal = value.normalize()
    return f"{normal:f}"


class _Builder:
    def __init__(self, root: etree._Element):
        self.root = root

    def cbc(self, parent: etree._Element, name: str, text: str, **attrs: str) -> etree._Element:
        el = etree.SubElement(parent, f"{{{NS['cbc']}}}{name}", attrs)
        el.text = text
        return el

    def cac(self, parent: etree._Element, name: str) -> etree._Element:
        return etree.SubElement(parent, f"{{{NS['cac']}}}{name}")

    def amount(self, parent: etree._Element, name: str, value: Decimal) -> etree._Element:
        return self.cbc(parent, name, _money(value), currencyID=CURRENCY)


def build(doc: Document) -> bytes:
    """The document's XML (UTF-8, with its declaration; the same bytes for the same document)."""
    kind = "creditnote" if doc.credit else "invoice"
    root_name = "CreditNote" if doc.credit else "Invoice"
    root = etree.Element(f"{{{NS[kind]}}}{root_name}", nsmap={None: NS[kind], "cac": NS["cac"], "cbc": NS["cbc"]})
    b = _Builder(root)
    sign = Decimal(-1) if doc.credit else Decimal(1)
    b.cbc(root, "CustomizationID", CUSTOMIZATION)
    b.cbc(root, "ProfileID", PROFILE)
    b.cbc(root, "ID", doc.id)
    b.cbc(root, "IssueDate", doc.issue_date.isoformat())
    if not doc.credit:
        b.cbc(root, "DueDate", doc.due_date.isoformat())  # UBL 2.1's CreditNote has no DueDate
        b.cbc(root, "InvoiceTypeCode", doc.type_code)
    else:
        b.cbc(root, "CreditNoteTypeCode", doc.type_code)
    b.cbc(root, "Note", doc.note)
    b.cbc(root, "DocumentCurrencyCode", CURRENCY)
    b.cbc(root, "BuyerReference", doc.buyer_reference)
    period = b.cac(root, "InvoicePeriod")
    b.cbc(period, "StartDate", doc.period_start.isoformat())
    b.cbc(period, "EndDate", doc.period_end.isoformat())
    _party(b, b.cac(root, "AccountingSupplierParty"), doc.seller, seller=True)
    _party(b, b.cac(root, "AccountingCustomerParty"), doc.buyer, seller=False)
    if not doc.credit:
        means = b.cac(root, "PaymentMeans")
        b.cbc(means, "PaymentMeansCode", "30")
        b.cbc(means, "PaymentID", doc.id)
        account = b.cac(means, "PayeeFinancialAccount")
        b.cbc(account, "ID", doc.bankgiro)
        branch = b.cac(account, "FinancialInstitutionBranch")
        b.cbc(branch, "ID", "SE:BANKGIRO")
    total = doc.total * sign
    tax = b.cac(root, "TaxTotal")
    b.amount(tax, "TaxAmount", Decimal("0.00"))
    sub = b.cac(tax, "TaxSubtotal")
    b.amount(sub, "TaxableAmount", total)
    b.amount(sub, "TaxAmount", Decimal("0.00"))
    category = b.cac(sub, "TaxCategory")
    b.cbc(category, "ID", "E")
    b.cbc(category, "Percent", "0")
    b.cbc(category, "TaxExemptionReasonCode", EXEMPTION_CODE)
    b.cbc(category, "TaxExemptionReason", EXEMPTION_REASON)
    _vat(b, category)
    totals = b.cac(root, "LegalMonetaryTotal")
    for name in ("LineExtensionAmount", "TaxExclusiveAmount", "TaxInclusiveAmount", "PayableAmount"):
        b.amount(totals, name, total)
    line_name, qty_name = ("CreditNoteLine", "CreditedQuantity") if doc.credit else ("InvoiceLine", "InvoicedQuantity")
    for n, ln in enumerate(doc.lines, start=1):
        el = b.cac(root, line_name)
        b.cbc(el, "ID", str(n))
        b.cbc(el, qty_name, _qty(ln.quantity * sign), unitCode="C62")
        b.amount(el, "LineExtensionAmount", ln.amount * sign)
        item = b.cac(el, "Item")
        b.cbc(item, "Name", ln.name)
        seller_id = b.cac(item, "SellersItemIdentification")
        b.cbc(seller_id, "ID", ln.code)
        classified = b.cac(item, "ClassifiedTaxCategory")
        b.cbc(classified, "ID", "E")
        b.cbc(classified, "Percent", "0")
        _vat(b, classified)
        price = b.cac(el, "Price")
        b.cbc(price, "PriceAmount", _price(ln.price), currencyID=CURRENCY)
    xml: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return xml


def _vat(b: _Builder, parent: etree._Element) -> None:
    scheme = b.cac(parent, "TaxScheme")
    b.cbc(scheme, "ID", "VAT")


def _party(b: _Builder, parent: etree._Element, p: Party, *, seller: bool) -> None:
    party = b.cac(parent, "Party")
    b.cbc(party, "EndpointID", p.orgnr, schemeID="0007")
    address = b.cac(party, "PostalAddress")
    b.cbc(address, "StreetName", p.street)
    b.cbc(address, "CityName", p.city)
    b.cbc(address, "PostalZone", p.postcode)
    country = b.cac(address, "Country")
    b.cbc(country, "IdentificationCode", "SE")
    if seller and p.vat:
        tax = b.cac(party, "PartyTaxScheme")
        b.cbc(tax, "CompanyID", p.vat)
        _vat(b, tax)
    legal = b.cac(party, "PartyLegalEntity")
    b.cbc(legal, "RegistrationName", p.name)
    b.cbc(legal, "CompanyID", p.orgnr, schemeID="0007")
