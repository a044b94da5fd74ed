"""Swedish presentation of what a person reads, from the CLDR data (Babel ``sv_SE``), never by hand:
``1 004 878,50 kr``, ``5,8 %``, ``1 200``, ``2026-11-03 16:40`` in Europe/Stockholm, statuses and
components by their Swedish names. Machines keep the plain values and the codes (JSON, Parquet,
CSV); these functions are for the portal, the mails, the CLI's tables and the workbooks' text.

Babel writes the thousands separator as a no-break space (U+00A0), as CLDR says Swedish does: an
amount is never broken over two lines. Tests that compare with typed text replace it by a space.
"""

from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal
from typing import Any

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.numbers import NumberPattern, parse_pattern

from filespec.calendar import STOCKHOLM, Period, parse_instant
from reports.underlag import COMPONENT_LABELS, line_label
from validators.kvittens import Status

LOCALE = "sv_SE"

# A period's state as the analysts' board and the CLI say it (the ledger keeps the codes).
PERIOD_STATES = {"OPEN": "Öppen", "CLOSED": "Stängd", "FINALISED": "Fastställd"}
ROLES = {"unit": "enhet", "unit_admin": "enhetens administratör", "analyst": "analytiker", "auditor": "logggranskare"}


# Babel's format_decimal parses its pattern and looks the locale up on every call (~36 µs; a
# kvittens mail formats dozens of numbers, ~2 ms of every received file): both are done once.
_SV = Locale.parse(LOCALE)


@functools.lru_cache(maxsize=32)
def _pattern(text: str) -> NumberPattern:
    return parse_pattern(text)


def _decimal(value: Decimal, pattern: str) -> str:
    return str(_pattern(pattern).apply(value, _SV))


def kronor(amount: Decimal | str | float | int) -> str:
    """An amount as a Swede writes it: ``1 004 878,50 kr``."""
    return f"{_decimal(Decimal(str(amount)), '#,##0.00')} kr"


def whole_kronor(amount: Decimal | str | float | int) -> str:
    """An amount rounded to whole kronor, for a chart's axis: ``16 000 000 kr``."""
    return f"{_decimal(Decimal(str(amount)).quantize(Decimal(1)), '#,##0')} kr"


def percent(share: float) -> str:
    """A share as a percentage with one decimal: ``5,8 %``."""
    return f"{_decimal(Decimal(str(round(share * 100, 1))), '0.0')} %"


def number(value: Decimal | str | float | int) -> str:
    """A count or quantity with the decimals it has: ``1 200``, ``1 032,40``, ``0,06``."""
    d = Decimal(str(value))
    places = max(0, -int(d.as_tuple().exponent)) if d.is_finite() else 0
    return _decimal(d, "#,##0" + ("." + "0" * places if places else ""))


def local_time(instant: dt.datetime | str, *, seconds: bool = False) -> str:
    """An instant in Swedish local time (Europe/Stockholm), CLDR's short form: ``2026-11-03 16:40``."""
    value = parse_instant(instant) if isinstance(instant, str) else instant
    if value.tzinfo is None:  # the ledger's SQLite columns come back naive, in UTC
        value = value.replace(tzinfo=dt.UTC)
    pattern = "yyyy-MM-dd HH:mm:ss" if seconds else "short"
    return format_datetime(value, pattern, tzinfo=STOCKHOLM, locale=LOCALE)


def excel_time(instant: dt.datetime | str) -> dt.datetime:
    """An instant as the naive Stockholm wall time a spreadsheet cell holds (Excel has no zones)."""
    value = parse_instant(instant) if isinstance(instant, str) else instant
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(STOCKHOLM).replace(tzinfo=None)


def month(period: Period | str) -> str:
    """A period (``2025-01``) as a month in words: ``januari 2025`` (the templates give a row's text)."""
    return format_date(Period.parse(period).first_day, "LLLL y", locale=LOCALE)


def status(code: str) -> str:
    """A file status by its Swedish name: ``Delvis godkänd``."""
    try:
        return Status(code).label
    except ValueError:
        return code


def component(code: str) -> str:
    """An underlag component by its Swedish name."""
    return COMPONENT_LABELS.get(code, code)


def line(ln: Any, period: Period | str) -> str:
    """An underlag line's label: its component, and for a per-visit price the profession behind it."""
    code = getattr(ln.component, "value", ln.component)
    return line_label(str(code), ln.unit_price, period)


def role(code: str) -> str:
    """An account's role by its Swedish name."""
    return ROLES.get(code, code)


def period_state(code: str) -> str:
    """A period's state by its Swedish name: ``Stängd``."""
    return PERIOD_STATES.get(code, code)
