"""The record of what was published: each file a close or a workbook writer put in the output
folder, with its SHA-256 as written, so ``vardfil verify`` can tell a file changed or lost since."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from filespec.calendar import Period
from vardfil.app import App
from vardfil.store import sha256_of


def record_published(app: App, period: Period, paths: Iterable[Path], *, replace: bool = True) -> None:
    """Record ``paths`` (under the output folder) as published for ``period``, hashed now, just
    after they were written. ``replace=False``: a rerun that found the files in place records only
    what is not on record yet (never re-records a file it did not write, which might have changed)."""
    root = app.output
    files = [(p.relative_to(root).as_posix(), sha256_of(p), p.stat().st_size) for p in paths if p.is_file()]
    app.ledger.closes.record_published(period, files, replace=replace)
