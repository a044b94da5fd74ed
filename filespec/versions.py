"""Versioned data files: load every version of a kind, and pick the one valid for a period."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol, TypeVar

from filespec.calendar import Period


class Versioned(Protocol):
    """A versioned data file: valid from a first day (``YYYY-MM-DD``) on."""

    @property
    def valid_from(self) -> str: ...


T = TypeVar("T", bound=Versioned)


def load_all(folder: Path, load: Callable[[Path], T]) -> tuple[T, ...]:
    """Every ``*.toml`` of a folder, loaded, oldest ``valid_from`` first."""
    return tuple(sorted((load(p) for p in folder.glob("*.toml")), key=lambda v: v.valid_from))


def valid_for(versions: Iterable[T], period: str | Period, what: str) -> T:
    """The version valid on the first day of ``period`` ("YYYY-MM"): the newest not starting later."""
    first_day = Period.parse(period).first_day.isoformat()
    chosen = None
    for v in versions:
        if v.valid_from <= first_day:
            chosen = v
    if chosen is None:
        raise LookupError(f"no {what} valid for period {period}")
    return chosen
