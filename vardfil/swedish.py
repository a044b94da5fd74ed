"""Swedish presentation of figures, from the CLDR data (Babel ``sv_SE``), never by hand:
``1 004 878,50 kr``, ``5,8 %``. Machines keep the plain values (JSON, Parquet, CSV)."""

from __future__ import annotations

from decimal import Decimal

from babel.numbers import format_decimal


def kronor(amount: Decimal | str | float) -> str:
    """An amount as a Swede writes it: ``1 004 878,50 kr``."""
    return f"{format_decimal(Decimal(str(amount)), format='#,##0.00', locale='sv_SE')} kr"


def percent(share: float) -> str:
    """A share as a percentage with one decimal: ``5,8 %``."""
    return f"{format_decimal(Decimal(str(round(share * 100, 1))), format='0.0', locale='sv_SE')} %"
