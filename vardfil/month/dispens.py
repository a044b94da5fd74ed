"""Dispens: an extended deadline for one unit and one period (ERSATTNINGSMODELL.md section 1).

A dispens is an analyst's promise to one unit: your file counts as on time until this hour. The
rules are here once, for the CLI and the portal alike:

- granted for a unit of the register active in the period, after the period's ordinary deadline
  (a dispens extends, never shortens), with a reason;
- **before the close only**: a closed period can no longer take a file, and its late file is
  settled as a correction at the next close (the ledger checks it in the transaction that writes);
- extended by granting again (the newest is in force), or withdrawn, each with its reason, every
  change in the audit log.

A close inside an open dispens is refused unless the analyst confirms (``vardfil.delivery``).
"""

from __future__ import annotations

import datetime as dt

from filespec.calendar import Period
from vardfil.app import App
from vardfil.errors import DispensRefused
from vardfil.ledger import Dispens


def grant_dispens(app: App, *, unit_hsaid: str, period: Period, until: dt.datetime, reason: str, actor: str) -> Dispens:
    """Grant or extend the dispens, or :class:`DispensRefused` with the reason in Swedish."""
    p = Period.parse(period)
    _unit_of(app, unit_hsaid, p)
    if until.tzinfo is None:
        raise DispensRefused("tidpunkten måste ha en tidszon")
    if until <= p.deadline:
        raise DispensRefused("en dispens måste sluta efter den ordinarie tidsgränsen")
    if not reason.strip():
        raise DispensRefused("en dispens behöver ett skäl")
    return app.ledger.decisions.add_dispens(
        unit_hsaid=unit_hsaid, period=p, deadline=until, reason=reason.strip(), actor=actor
    )


def withdraw_dispens(app: App, *, unit_hsaid: str, period: Period, reason: str, actor: str) -> Dispens:
    """Withdraw the dispens in force (before the close), with the reason why."""
    p = Period.parse(period)
    _unit_of(app, unit_hsaid, p)
    if not reason.strip():
        raise DispensRefused("ett återkallande behöver ett skäl")
    if app.ledger.decisions.dispens_deadline(unit_hsaid, p) is None:
        raise DispensRefused(f"vårdenheten {unit_hsaid} har ingen dispens för {p}")
    return app.ledger.decisions.add_dispens(
        unit_hsaid=unit_hsaid, period=p, deadline=p.deadline, reason=reason.strip(), actor=actor, withdrawn=True
    )


def _unit_of(app: App, unit_hsaid: str, p: Period) -> None:
    unit = app.reference.units.get(unit_hsaid)
    if unit is None or not unit.active_in(p):
        raise DispensRefused(f"vårdenheten {unit_hsaid} finns inte som aktiv enhet i perioden {p}")
