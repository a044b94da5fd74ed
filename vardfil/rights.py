"""What a person signed in through the region's IdP may do: from their commissions
(medarbetaruppdrag) and the roles granted inside vardfil.

- A person is their HSA-id (``employeeHsaId``), never a user name.
- The level of assurance (``acr``) must be one the region accepts (SITHS: LoA 3).
- A commission whose purpose (ändamål) is accepted, on a care unit in the unit register, makes the
  person a unit user there for as long as the commission lasts (the IdP releases only commissions
  in force; between sign-ins the catalogue sync ends them).
- ``unit_admin`` of a unit and ``analyst`` are granted inside vardfil to an HSA-id; a grant gives
  something only beside a commission: ``unit_admin`` of U needs a commission on U, ``analyst`` a
  commission with an accepted purpose (the region's own offices are not care units in the
  register).

Pure: the caller hands in the claims, the register and the grants.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from filespec import Unit

HSAID = re.compile(r"SE[0-9]{10}-[A-Za-z0-9]{1,20}")


@dataclass(frozen=True, kw_only=True)
class Commission:
    """One medarbetaruppdrag as the IdP released it."""

    hsaid: str | None
    name: str | None
    purpose: str | None
    unit_hsaid: str | None
    provider_hsaid: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        """For the audit log."""
        return {"hsaid": self.hsaid, "name": self.name, "purpose": self.purpose, "unit": self.unit_hsaid}


@dataclass(frozen=True, kw_only=True)
class Grant:
    """A role granted inside vardfil (``vardfil grant``)."""

    role: str  # analyst | unit_admin | auditor
    unit_hsaid: str | None = None


@dataclass(frozen=True, kw_only=True)
class Person:
    """A person allowed in, and what they may do."""

    hsa_id: str
    name: str
    email: str | None
    role: str  # unit | unit_admin | analyst | auditor
    units: frozenset[str]
    admin_units: frozenset[str]
    commissions: tuple[Commission, ...]  # the ones that gave rights
    acr: str
    amr: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Refusal:
    """Why a person is not let in: a code (audit, tests) and Swedish text that says what to do."""

    code: str
    title: str
    message: str


def commissions_of(claims: Mapping[str, Any], claim: Any) -> list[Commission]:
    """The commissions in the claims: ``allCommissions`` (a list, or JSON text of one), or the one
    the person chose at the IdP (``commissionHsaId`` …). ``claim`` maps our claim names to the IdP's."""
    many = claims.get(claim("allCommissions"))
    if isinstance(many, str):
        try:
            many = json.loads(many)
        except ValueError:
            many = None
    found = []
    if isinstance(many, list):
        for c in many:
            if isinstance(c, Mapping):
                found.append(
                    Commission(
                        hsaid=_text(c.get("commissionHsaId")),
                        name=_text(c.get("commissionName")),
                        purpose=_text(c.get("commissionPurpose")),
                        unit_hsaid=_text(c.get("healthCareUnitHsaId")),
                        provider_hsaid=_text(c.get("healthCareProviderHsaId")),
                    )
                )
    one = Commission(
        hsaid=_text(claims.get(claim("commissionHsaId"))),
        name=_text(claims.get(claim("commissionName"))),
        purpose=_text(claims.get(claim("commissionPurpose"))),
        unit_hsaid=_text(claims.get(claim("healthCareUnitHsaId"))),
        provider_hsaid=_text(claims.get(claim("healthCareProviderHsaId"))),
    )
    if (one.hsaid or one.unit_hsaid) and one not in found:
        found.append(one)
    return found


def _text(value: Any) -> str | None:
    if isinstance(value, list) and len(value) == 1:  # some IdPs release one-valued lists
        value = value[0]
    return value.strip() if isinstance(value, str) and value.strip() else None


def decide(
    claims: Mapping[str, Any],
    *,
    accepted_acr: Collection[str],
    purposes: Collection[str],
    units: Mapping[str, Unit],
    grants: Collection[Grant],
    claim: Any = lambda name: name,
) -> Person | Refusal:
    """Let the person in with their rights, or say why not."""
    acr = str(claims.get("acr") or "")
    if acr not in accepted_acr:
        return Refusal(
            code="loa",
            title="Din inloggning har för låg tillitsnivå",
            message=(
                "vardfil tar emot patientuppgifter och kräver inloggning med SITHS eID (tillitsnivå 3). "
                "Logga in med ditt SITHS-kort eller SITHS eID i mobilen. Ett reservkort räcker inte; "
                "kontakta din SITHS-administratör om du saknar kort."
            ),
        )
    hsa_id = _text(claims.get(claim("employeeHsaId")))
    if hsa_id is None or not HSAID.fullmatch(hsa_id):
        return Refusal(
            code="no_person",
            title="Ditt HSA-id saknas",
            message=(
                "Inloggningstjänsten lämnade inget HSA-id för dig. Du behöver en giltig personpost i "
                "katalogen (KIV/HSA); kontakta din HSA-administratör."
            ),
        )
    found = commissions_of(claims, claim)
    if not found:
        return Refusal(
            code="no_commission",
            title="Du har inget medarbetaruppdrag",
            message=(
                "För att använda vardfil behöver du ett medarbetaruppdrag på din vårdenhet i katalogen "
                "(KIV/HSA). Be din HSA-administratör lägga upp uppdraget och logga sedan in igen."
            ),
        )
    accepted = [c for c in found if c.purpose in purposes]
    if not accepted:
        shown = ", ".join(sorted({c.purpose or "inget ändamål" for c in found}))
        return Refusal(
            code="purpose",
            title="Ditt medarbetaruppdrag ger inte behörighet till vardfil",
            message=(
                f"Uppdragets ändamål ({shown}) ger inte åtkomst till vardfil, som kräver ändamålet "
                f"{' eller '.join(sorted(purposes))}. Välj ett annat uppdrag vid inloggningen, eller be din "
                "HSA-administratör om ett uppdrag med rätt ändamål."
            ),
        )
    on_units = [c for c in accepted if c.unit_hsaid in units]
    unit_ids = frozenset(c.unit_hsaid for c in on_units if c.unit_hsaid)
    analyst = any(g.role == "analyst" for g in grants)
    auditor = any(g.role == "auditor" for g in grants)
    if not unit_ids and not analyst and not auditor:
        return Refusal(
            code="unit",
            title="Din vårdenhet finns inte i vårdvalets enhetsregister",
            message=(
                "Ditt medarbetaruppdrag gäller en enhet som inte är ansluten till VG Primärvård eller "
                "Vårdval Rehab i vardfil. Välj uppdraget på din vårdcentral eller rehabenhet vid "
                "inloggningen; saknas enheten i registret, kontakta regionens vårdvalsenhet."
            ),
        )
    admin = frozenset(g.unit_hsaid for g in grants if g.role == "unit_admin" and g.unit_hsaid in unit_ids)
    given, family = _text(claims.get(claim("given_name"))), _text(claims.get(claim("family_name")))
    return Person(
        hsa_id=hsa_id,
        name=" ".join(x for x in (given, family) if x) or hsa_id,
        email=_text(claims.get(claim("email"))),
        role="analyst" if analyst else ("auditor" if auditor else ("unit_admin" if admin else "unit")),
        units=unit_ids,
        admin_units=admin,
        commissions=tuple(on_units or accepted),
        acr=acr,
        amr=tuple(str(a) for a in claims.get("amr") or ()),
    )
