"""Every exception vardfil raises on purpose, in one tree.

Findings about a received file are data (its kvittens), never exceptions. An exception is either a
request that cannot be carried out as asked, a fault of the configuration, or a passing fault of
the surroundings that is worth a retry::

    VardfilError                       filespec.errors: the root
    ├── InvalidPeriod                  not a YYYY-MM month (also a ValueError)
    ├── ReferenceDataError             filespec: a reference file is missing or malformed
    ├── SpecError                      validators: the spec or reference data cannot support a rule
    ├── ContentError                   validators: F02/F05, never leaves validate_file
    ├── Refused                        a request that cannot be carried out as asked
    │   ├── CloseTooEarly              before the period's deadline
    │   ├── NotClosed                  the period has no close (workbooks, approval)
    │   ├── ApprovalRefused            finalised period, missing comment, unknown action
    │   ├── DispensRefused             unknown unit, ends before the deadline, no reason, period closed
    │   ├── DispensOpen                a close inside a unit's open dispens, unconfirmed
    │   ├── AccountRefused             duplicate name, short password, not the unit's account
    │   ├── CopyOfAnotherUnit          the bytes of a file its sender may not read (HTTP 409)
    │   └── UsageError                 (vardfil.cli) arguments a command cannot work with
    ├── LedgerConfigError              the database URL or schema cannot be used
    └── Transient                      retryable: the same call may succeed later
        ├── HistoryChanged             another file of the same slot was recorded meanwhile
        ├── DatabaseBusy               the database did not answer or was locked
        └── StoreError                 the raw store cannot be written

(``vardfil.web.body.BadUpload``, a body that is no multipart form with a file, and
``vardfil.web.middleware.BodyTooLarge`` are not in the tree on purpose: the web front doors answer
them (400, 413) where they arise, and nothing else sees them. ``BodyTooLarge``: it is the body limit's
signal from inside an ASGI ``receive``, caught by the same middleware, never seen elsewhere.)

The CLI answers ``Refused`` (and reference-data faults) with exit 2 and ``Transient`` with exit 3
("nothing was recorded, run it again"); the portal answers ``Refused`` with 400; the DAG tasks
retry ``Transient`` only and fail every other exception at once (``vardfil.airflow.tasks``).
"""

from __future__ import annotations

from pathlib import Path

from filespec.errors import InvalidPeriod, VardfilError
from filespec.reference import ReferenceDataError

# SpecError and ContentError (validators.rules, validators.reader) belong to the tree too; they are
# not re-exported here because importing them loads pandera and polars, and the ledger, the CLI's
# argument parsing and the Airflow scheduler import this module.

__all__ = [
    "AccountRefused",
    "ApprovalRefused",
    "CloseTooEarly",
    "CopyOfAnotherUnit",
    "DatabaseBusy",
    "DispensOpen",
    "DispensRefused",
    "HistoryChanged",
    "InvalidPeriod",
    "LedgerConfigError",
    "NotClosed",
    "ReferenceDataError",
    "Refused",
    "StoreError",
    "Transient",
    "VardfilError",
]


class Refused(VardfilError):
    """A request that cannot be carried out as asked; the message says why, to a person."""


class CloseTooEarly(Refused):
    """The instant of a close is before the period's deadline."""


class NotClosed(Refused):
    """The period has no recorded close (no workbooks, no answers to give)."""


class ApprovalRefused(Refused):
    """An approval, dispute or finalisation that cannot be taken."""


class DispensRefused(Refused):
    """A dispens that cannot be granted."""


class AccountRefused(Refused):
    """An account that cannot be created."""


class CopyOfAnotherUnit(Refused):
    """A byte-identical copy of a file its sender may not read: answered without a byte of that
    file's kvittens (nothing recorded, the arrival audited)."""


class DispensOpen(Refused):
    """A close whose instant falls inside a unit's open dispens (the units and times are named):
    the analyst closes after the dispens, or confirms."""


class LedgerConfigError(VardfilError):
    """The database cannot be opened or migrated (a person must fix the configuration)."""


class Transient(VardfilError):
    """A passing fault of the surroundings: nothing was recorded and the call may be repeated."""

    retryable = True


class HistoryChanged(Transient):
    """Another file of the same unit, filtyp and period was recorded while this one was validated."""


class DatabaseBusy(Transient):
    """The database was unreachable, locked past its timeout, or dropped the connection."""


class StoreError(Transient):
    """The store cannot be written (full disk, unwritable or unmounted folder)."""

    def __init__(self, message: str, *, path: Path | None = None):
        super().__init__(message)
        self.path = path
