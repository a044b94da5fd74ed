"""The month's rules of delivery, in one place: a unit's own deadline, whether a period may be
closed, which file counts and whether it came in time, which units have none and why, and the
unit a file name claims.

Everything that decides or shows these reads them here: the close, ``vardfil status``, the
month board, the unit page, the API and the portal's upload, the reminders and the mails, the
region workbook. :func:`period_status` reads a period's files and dispens once and applies the
gällande rule (:func:`~vardfil.ledger.database.newest_usable`) per unit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from filespec import FILE_TYPES, Reference, Unit
from filespec.calendar import STOCKHOLM, Period
from validators import parse_file_name
from vardfil.errors import CloseTooEarly, DispensOpen
from vardfil.ledger.database import Ledger, newest_usable
from vardfil.ledger.tables import ReceivedFile

__all__ = [
    "FILE_TYPES",
    "Delivery",
    "PeriodStatus",
    "UnitStatus",
    "claimed_unit",
    "close_due",
    "ensure_closable",
    "ensure_no_open_dispens",
    "last_dispens_end",
    "may_close",
    "on_time_file",
    "open_dispens",
    "period_status",
    "unit_deadline",
]


def unit_deadline(period: Period, dispens: dt.datetime | None) -> dt.datetime:
    """A unit's own deadline for a period: its dispens if it has one, else the period's."""
    return dispens or period.deadline


def deadline_of(ledger: Ledger, unit_hsaid: str, period: Period) -> dt.datetime:
    """``unit_deadline`` of one unit, its dispens read from the ledger."""
    return unit_deadline(period, ledger.decisions.dispens_deadline(unit_hsaid, period))


def may_close(period: Period, at: dt.datetime) -> bool:
    """Whether a period may be closed at ``at``: from its deadline on."""
    return at >= period.deadline


def ensure_closable(period: Period, at: dt.datetime) -> None:
    """:class:`CloseTooEarly` (Swedish) before the period's deadline."""
    if not may_close(period, at):
        raise CloseTooEarly(
            f"perioden {period} kan stängas först vid tidsgränsen "
            f"{period.deadline.astimezone(STOCKHOLM):%Y-%m-%d %H:%M} ({period.deadline.isoformat()})"
        )


def open_dispens(ledger: Ledger, period: Period, at: dt.datetime) -> dict[str, dt.datetime]:
    """The units whose dispens for ``period`` is still open at ``at`` (unit -> until): a close
    now would leave out the file they were promised time for."""
    return {u: until for u, until in sorted(ledger.decisions.dispens_for_period(period).items()) if until > at}


def ensure_no_open_dispens(ledger: Ledger, period: Period, at: dt.datetime) -> None:
    """:class:`DispensOpen` naming the units and their dispens, unless there are none."""
    still = open_dispens(ledger, period, at)
    if still:
        named = ", ".join(f"{u} (till {until.astimezone(STOCKHOLM):%Y-%m-%d %H:%M})" for u, until in still.items())
        raise DispensOpen(
            f"perioden {period} har öppen dispens för {named}: stäng efter dispensen, eller bekräfta att "
            "perioden ska stängas ändå (--despite-dispens; enhetens fil betalas då som rättelse)"
        )


def last_dispens_end(ledger: Ledger, period: Period) -> dt.datetime | None:
    """When the period's last dispens ends (None: it has none)."""
    ends = ledger.decisions.dispens_for_period(period).values()
    return max(ends, default=None)


def close_due(ledger: Ledger, period: Period) -> dt.datetime:
    """When the period's close is due, and the instant it is as of: its deadline, or the end of
    its last dispens when that is later (a close never falls inside a unit's open dispens)."""
    last = last_dispens_end(ledger, period)
    return max(period.deadline, last) if last else period.deadline


def on_time_file(
    files: Iterable[ReceivedFile], deadline: dt.datetime, *, as_of: dt.datetime | None = None
) -> ReceivedFile | None:
    """The file a close takes: the newest usable one received before the unit's own deadline
    (and not after ``as_of``). A later file is settled as a RATTELSE in a later close."""
    return newest_usable(list(files), received_before=deadline, as_of=as_of)


def claimed_unit(file_name: str) -> str | None:
    """The HSA-id a file name claims, even when the rest of the name is wrong (F01): a sender may
    send only for its own units, so a name that claims another is refused before it is stored.
    A valid name is read by the one parser of names (``validators.parse_file_name``)."""
    parsed = parse_file_name(file_name)
    if parsed is not None:
        return str(parsed.unit_hsaid)
    parts = file_name.split("_")
    return parts[1] if len(parts) >= 2 and parts[1].startswith("SE") else None


class Delivery(str, Enum):
    """How a unit delivered for a period."""

    ON_TIME = "i tid"  # a usable file arrived before the unit's deadline (or its dispens)
    LATE = "sen"  # only after it
    MISSING = "saknas"  # none at all

    @property
    def label(self) -> str:
        """As a person reads it."""
        return {"i tid": "I tid", "sen": "Sen", "saknas": "Saknas"}[self.value]


@dataclass(frozen=True, kw_only=True)
class UnitStatus:
    """One active unit and filtyp in a period."""

    unit: Unit
    deadline: dt.datetime  # the unit's own: its dispens if granted, else the period's
    dispens: dt.datetime | None
    files_received: int
    gallande: ReceivedFile | None  # the newest usable file (as of the status's instant)
    on_time_file: ReceivedFile | None  # the newest usable file received before the unit's deadline

    @property
    def delivery(self) -> Delivery:
        """On time, late or missing."""
        if self.on_time_file is not None:
            return Delivery.ON_TIME
        return Delivery.LATE if self.gallande is not None else Delivery.MISSING

    @property
    def counted_file(self) -> ReceivedFile | None:
        """The file a close at the deadline would take, else the late one a correction would."""
        return self.on_time_file or self.gallande


@dataclass(frozen=True, kw_only=True)
class PeriodStatus:
    """Every unit active in a period, with its delivery."""

    period: Period
    deadline: dt.datetime
    as_of: dt.datetime | None
    units: list[UnitStatus]

    def missing(self) -> list[UnitStatus]:
        """Units with no usable file at all (``Delivery.MISSING``)."""
        return [u for u in self.units if u.delivery is Delivery.MISSING]

    def late(self) -> list[UnitStatus]:
        """Units whose only usable files came after their deadline (``Delivery.LATE``): the close
        takes no file for them; the late one is paid as a correction at a later close."""
        return [u for u in self.units if u.delivery is Delivery.LATE]

    def without_file_in_time(self) -> list[UnitStatus]:
        """Units a close at the deadline takes no file for: missing or late."""
        return [u for u in self.units if u.delivery is not Delivery.ON_TIME]

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``vardfil status --json`` (the region's tooling reads these keys)."""
        return {
            "period": str(self.period),
            "deadline": self.deadline.isoformat(),
            "units": [
                {
                    "unit_hsaid": u.unit.hsaid,
                    "namn": u.unit.namn,
                    "file_type": u.unit.filtyp,
                    "files_received": u.files_received,
                    "gallande": None
                    if u.gallande is None
                    else {
                        "receipt_id": u.gallande.receipt_id,
                        "file_name": u.gallande.file_name,
                        "status": u.gallande.status,
                        "on_time": u.gallande.on_time,
                        "received_at": u.gallande.received_at.astimezone(STOCKHOLM).isoformat(),
                        "rows_accepted": u.gallande.rows_accepted,
                        "rows_rejected": u.gallande.rows_rejected,
                    },
                }
                for u in self.units
            ],
        }


def period_status(
    ledger: Ledger, reference: Reference, period: Period, *, as_of: dt.datetime | None = None
) -> PeriodStatus:
    """Every unit active in ``period`` (from the unit register), with its gällande file as of
    ``as_of`` (None: everything received so far), its on-time file and its dispens."""
    p = Period.parse(period)
    deadline = p.deadline
    files: dict[tuple[str | None, str | None], list[ReceivedFile]] = {}
    for f in ledger.files.files_for_period(p):
        files.setdefault((f.unit_hsaid, f.file_type), []).append(f)
    dispens = ledger.decisions.dispens_for_period(p)
    units = []
    for unit in sorted(reference.units.values(), key=lambda u: (u.filtyp, u.hsaid)):
        if not unit.active_in(p):
            continue
        mine = files.get((unit.hsaid, unit.filtyp), [])
        own_deadline = unit_deadline(p, dispens.get(unit.hsaid))
        units.append(
            UnitStatus(
                unit=unit,
                deadline=own_deadline,
                dispens=dispens.get(unit.hsaid),
                files_received=len(mine),
                gallande=newest_usable(mine, as_of=as_of),
                on_time_file=on_time_file(mine, own_deadline, as_of=as_of),
            )
        )
    return PeriodStatus(period=p, deadline=deadline, as_of=as_of, units=units)
