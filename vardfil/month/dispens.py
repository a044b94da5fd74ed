"""Dispens: an extended deadline for one unit and one period (ERSATTNINGSMODELL.md section 1).

The rules are here once, for the CLI and the portal alike: the unit must exist in the register
with that period active, the new deadline must lie after the period's ordinary deadline (a dispens
extends, never shortens), and an analyst must say why. The newest grant is the one in force.
"""

from __future__ import annotations

import datetime as dt

from filespec.calendar import Period
from vardfil.app import App
from vardfil.errors import DispensRefused
from vardfil.ledger import Dispens


def grant_dispens(app: App, *, unit_hsaid: str, period: str, until: dt.datetime, reason: str, actor: str) -> Dispens:
    """Grant the dispens, or :class:`DispensRefused` with the reason in Swedish."""
    p = Period.parse(period)
    unit = app.reference.units.get(unit_hsaid)
    if unit is None or not unit.active_in(p):
        raise DispensRefused(f"vårdenheten {unit_hsaid} finns inte som aktiv enhet i perioden {p}")
    if until.tzinfo is None:
        raise DispensRefused("tidpunkten måste ha en tidszon")
    if until <= p.deadline:
        raise DispensRefused("en dispens måste sluta efter den ordinarie tidsgränsen")
    if not reason.strip():
        raise DispensRefused("en dispens behöver ett skäl")
    return app.ledger.decisions.add_dispens(
        unit_hsaid=unit_hsaid, period=str(p), deadline=until, reason=reason.strip(), actor=actor
    )
