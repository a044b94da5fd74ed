"""The ledger: what arrived when, what the system answered, and every decision, on record.

:class:`Ledger` is the core (``vardfil.ledger.core``: engines, transactions, migrations, the audit
log) with its parts, each a focused set of the queries and writes asked in the month's words:

- ``ledger.files``: received files, their kvittens, the gällande file of a slot (``files``);
- ``ledger.closes``: closes, published lines, settlements, the period's state (``closes``);
- ``ledger.decisions``: dispens, approvals and disputes, the finalisation (``decisions``);
- ``ledger.outbox``: the messages sent (``outbox``);
- ``ledger.accounts``: accounts, sessions, tokens, grants, sign-ins (``accounts``);
- ``ledger.systems``: journal systems, the catalogue's syncs (``systems``);
- ``ledger.figures``: the health figures ``/metrics`` reads at each scrape (``figures``);
- ``ledger.accesses``, ``ledger.retention``: the access log and its follow-ups, gallring (``accesses``).

Rows come back detached (``expire_on_commit=False``): callers read their attributes and never see
a session.
"""

from __future__ import annotations

from typing import Any

from vardfil.ledger.accesses import Accesses, Retention
from vardfil.ledger.accounts import Accounts
from vardfil.ledger.closes import Closes
from vardfil.ledger.core import Core, FileKey, utcnow
from vardfil.ledger.decisions import Decisions
from vardfil.ledger.figures import Figures
from vardfil.ledger.files import Files, newest_usable
from vardfil.ledger.outbox import Outbox
from vardfil.ledger.systems import Systems

__all__ = ["FileKey", "Ledger", "newest_usable", "utcnow"]


class Ledger(Core):
    """One ledger database. Cheap to share within a process; open one per process."""

    def __init__(self, url: str, *, migrate: bool = True, connect_args: dict[str, Any] | None = None):
        super().__init__(url, migrate=migrate, connect_args=connect_args)
        self.files = Files(self)
        self.closes = Closes(self)
        self.decisions = Decisions(self)
        self.outbox = Outbox(self)
        self.accounts = Accounts(self)
        self.systems = Systems(self)
        self.figures = Figures(self)
        self.accesses = Accesses(self)
        self.retention = Retention(self)
