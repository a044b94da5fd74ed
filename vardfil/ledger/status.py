"""Where a period stands, per active unit and filtyp: the one answer to "which file counts, and
was it on time?".

The CLI's ``status``, the portal's month board, the region workbook and the reminders all read
:func:`period_status`. It reads the period's files and dispens once and applies the gällande rule
(:func:`~vardfil.ledger.database.newest_usable`) per unit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import Enum
from typing import Any

from filespec import Reference, Unit
from filespec.calendar import STOCKHOLM, Period
from vardfil.ledger.database import Ledger, newest_usable
from vardfil.ledger.tables import ReceivedFile


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

    period: str
    deadline: dt.datetime
    as_of: dt.datetime | None
    units: list[UnitStatus]

    def missing(self) -> list[UnitStatus]:
        """Units with no usable file."""
        return [u for u in self.units if u.gallande is None]

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``vardfil status --json`` (the region's tooling reads these keys)."""
        return {
            "period": self.period,
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
    ledger: Ledger, reference: Reference, period: str, *, as_of: dt.datetime | None = None
) -> PeriodStatus:
    """Every unit active in ``period`` (from the unit register), with its gällande file as of
    ``as_of`` (None: everything received so far), its on-time file and its dispens."""
    p = Period.parse(period)
    deadline = p.deadline
    files: dict[tuple[str | None, str | None], list[ReceivedFile]] = {}
    for f in ledger.files_for_period(str(p)):
        files.setdefault((f.unit_hsaid, f.file_type), []).append(f)
    dispens = ledger.dispens_for_period(str(p))
    units = []
    for unit in sorted(reference.units.values(), key=lambda u: (u.filtyp, u.hsaid)):
        if not unit.active_in(p):
            continue
        mine = files.get((unit.hsaid, unit.filtyp), [])
        own_deadline = dispens.get(unit.hsaid) or deadline
        units.append(
            UnitStatus(
                unit=unit,
                deadline=own_deadline,
                dispens=dispens.get(unit.hsaid),
                files_received=len(mine),
                gallande=newest_usable(mine, as_of=as_of),
                on_time_file=newest_usable(mine, received_before=own_deadline, as_of=as_of),
            )
        )
    return PeriodStatus(period=str(p), deadline=deadline, as_of=as_of, units=units)
