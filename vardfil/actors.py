"""Who did something: a kind and an id the system issued — never a name a person typed.

Every actor recorded anywhere (the audit log, a received file, a dispens, an answer, a close) is
one of these; the ledger refuses any other string (``Ledger.audit``):

``person:<account id>``   a portal account (``person:<HSA-id>`` once people sign in through the IdP)
``token:<token id>``      a journal system's API token
``system:<HSA-id>``       a journal system identified by its SITHS function certificate
``job:<what>``            a run nobody signs in for: ``job:dag:vardfil_close``, ``job:cli:close``,
                          ``job:sample``, ``job:test`` …

Access follows the id: who may read a file that names no unit (F01) is decided by comparing the
file's actor with the asker's (``may_read_file``), so an account named like a job, a token or
another person gains nothing by its name. Names are for people to read; the audit page shows them
beside the id (``describe``).
"""

from __future__ import annotations

import re
from typing import Protocol

KINDS = ("person", "token", "system", "job")
# The id part: what the system issues (numbers, HSA-ids, job names), nothing a person types.
_ID = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._:-]{0,100})")
_HSAID = re.compile(r"SE[0-9]{10}-[A-Za-z0-9]{1,20}")


class Actor(str):
    """A typed actor, ``kind:id`` (a ``str``, so it is stored and compared as text)."""

    __slots__ = ()

    def __new__(cls, value: str) -> Actor:
        if not is_typed(value):
            raise ValueError(f"not a typed actor (kind:id with kind one of {KINDS}): {value[:40]!r}")
        return super().__new__(cls, value)

    @property
    def kind(self) -> str:
        """``person``, ``token``, ``system`` or ``job``."""
        return self.partition(":")[0]

    @property
    def id(self) -> str:
        """What follows the kind."""
        return self.partition(":")[2]


def is_typed(value: object) -> bool:
    """Whether ``value`` is a typed actor."""
    if not isinstance(value, str) or len(value) > 128:
        return False
    kind, sep, rest = value.partition(":")
    return sep == ":" and kind in KINDS and _ID.fullmatch(rest) is not None


def person(account: int | str) -> Actor:
    """A portal account by its id, or a person by their HSA-id."""
    if isinstance(account, str) and not _HSAID.fullmatch(account):
        raise ValueError(f"a person is an account id or an HSA-id: {account[:40]!r}")
    return Actor(f"person:{account}")


def token(token_id: int) -> Actor:
    """A journal system's API token by its id."""
    return Actor(f"token:{int(token_id)}")


def system(hsaid: str) -> Actor:
    """A journal system by the HSA-id of its function certificate."""
    if not _HSAID.fullmatch(hsaid):
        raise ValueError(f"not an HSA-id: {hsaid[:40]!r}")
    return Actor(f"system:{hsaid}")


def job(name: str) -> Actor:
    """A run nobody signed in for (a DAG, a CLI command, the sample, a test)."""
    return Actor(f"job:{name}")


JOB_NAMES = ("airflow", "cli", "dag", "sample", "portal", "intake", "bench", "test", "system", "job")


class Asker(Protocol):
    """Who asks to read a file: the units they act for (None: every unit) and their actor."""

    @property
    def actor(self) -> Actor: ...

    def may_see_unit(self, hsaid: str | None) -> bool: ...


class _FileLike(Protocol):
    @property
    def unit_hsaid(self) -> str | None: ...

    @property
    def actor(self) -> str: ...


def may_read_file(asker: Asker, f: _FileLike) -> bool:
    """Whether ``asker`` may read a received file: one of its units' files, or a file that names
    no unit (F01) which this very actor sent. The one rule, for the portal and the API."""
    if f.unit_hsaid is not None:
        return asker.may_see_unit(f.unit_hsaid)
    return asker.may_see_unit(None) or f.actor == asker.actor


def describe(actor: str, names: dict[str, str]) -> str:
    """The actor for a person to read: the name behind the id where one is known (``names``:
    actor → account or token name), the kind in Swedish; a legacy (untyped) actor as it was."""
    if not is_typed(actor):
        return f"{actor} (äldre post)"
    a = Actor(actor)
    label = {"person": "konto", "token": "API-nyckel", "system": "system", "job": "körning"}[a.kind]
    name = names.get(actor)
    return f"{name} ({label} {a.id})" if name else f"{label} {a.id}"
