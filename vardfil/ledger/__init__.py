"""The ledger package: the only code that talks to the database.

- ``tables``: the SQLAlchemy tables (rows come back to callers as plain, detached records);
- ``migrations``: Alembic, run at open;
- ``database``: :class:`Ledger` — transactions, every query and write, the gällande rule;
- ``accounts``: portal accounts and sessions (storage only; the rules are ``vardfil.accounts``);

Outside this package no module imports SQLAlchemy or Alembic (an import-linter contract in
``pyproject.toml`` checks it).
"""

from vardfil.ledger.database import FileKey, Ledger, newest_usable, utcnow
from vardfil.ledger.tables import (
    AccessEntry,
    Approval,
    AuditLog,
    Dispens,
    GallringDecision,
    LogReview,
    PeriodClose,
    PeriodState,
    ReceivedFile,
    Settlement,
    UnderlagLineRow,
)

__all__ = [
    "AccessEntry",
    "Approval",
    "AuditLog",
    "Dispens",
    "FileKey",
    "GallringDecision",
    "Ledger",
    "LogReview",
    "PeriodClose",
    "PeriodState",
    "ReceivedFile",
    "Settlement",
    "UnderlagLineRow",
    "newest_usable",
    "utcnow",
]
