"""A consistent copy of the ledger database, and its restore into an empty one.

SQLite: the online backup API (a page-by-page copy under a read transaction: consistent while
writers go on, WAL included). PostgreSQL: ``pg_dump -Fc`` of the ledger's schema (one snapshot
transaction) and ``pg_restore`` into an empty database or schema; the client tools must be on the
PATH (Debian's ``postgresql-client``). The files the ledger refers to are copied by the caller
(``vardfil.backup``) after the dump: the store is content-addressed and only ever grows, so every
file the dump names is there.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

from sqlalchemy import inspect, text

from vardfil.errors import Refused

if TYPE_CHECKING:
    from vardfil.ledger.core import Core


class BackupError(Refused):
    """The database could not be dumped, restored or checked (the tool's own words included)."""


def libpq_url(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as the client tools take it (without the driver)."""
    return "postgresql://" + url.split("://", 1)[1]


def schema_of(url: str) -> str:
    """The schema the ledger's URL puts first on its search path (``public`` when none is set)."""
    options = parse_qs(urlsplit(url).query).get("options", [""])[0]
    for part in unquote(options).split():
        if part.startswith("-csearch_path="):
            return part.removeprefix("-csearch_path=").split(",")[0]
    return "public"


def dump(ledger: Core, target: Path) -> Path:
    """A consistent copy of the ledger at ``target`` (``ledger.sqlite3`` or ``ledger.pgdump``)."""
    if ledger.dialect == "sqlite":
        out = target / "ledger.sqlite3"
        with ledger.engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            dst = sqlite3.connect(out)
            try:
                raw.backup(dst)  # type: ignore[union-attr]
            finally:
                dst.close()
        return out
    out = target / "ledger.pgdump"
    url = str(ledger.engine.url.render_as_string(hide_password=False))
    _run(["pg_dump", "-Fc", "--no-owner", "-n", schema_of(url), "-f", str(out), libpq_url(url)])
    return out


def is_empty(ledger: Core) -> bool:
    """Whether the ledger has no vardfil tables yet (a restore's target must be empty)."""
    with ledger.engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
    return not tables & {"received_file", "audit_log", "alembic_version"}


def restore(url: str, dumped: Path) -> None:
    """Restore a dump into the empty database ``url`` names (SQLite: the file must not exist)."""
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        if path.exists() and path.stat().st_size > 0:
            raise BackupError(f"the ledger file exists already: {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(dumped, path)
        return
    _run(["pg_restore", "--no-owner", "--clean", "--if-exists", "--exit-on-error", "-d", libpq_url(url), str(dumped)])


def check(dumped: Path) -> dict[str, int]:
    """Read a dump without restoring it: SQLite's integrity check and the rows of its tables;
    a PostgreSQL dump's table of contents. Raises :class:`BackupError` for a broken one."""
    if dumped.suffix == ".sqlite3":
        db = sqlite3.connect(f"file:{dumped}?mode=ro", uri=True)
        try:
            if db.execute("PRAGMA integrity_check").fetchone() != ("ok",):
                raise BackupError(f"{dumped.name}: SQLite's integrity check failed")
            return {
                t: db.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in ("received_file", "period_close")
            }
        except sqlite3.DatabaseError as e:
            raise BackupError(f"{dumped.name}: {e}") from e
        finally:
            db.close()
    listing = _run(["pg_restore", "--list", str(dumped)])
    return {"entries": sum(1 for line in listing.splitlines() if line and not line.startswith(";"))}


def rows(ledger: Core, table: str) -> int:
    """The rows of one table (a restore's report)."""
    with ledger.engine.connect() as conn:
        return int(conn.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one())


def _run(cmd: list[str]) -> str:
    if shutil.which(cmd[0]) is None:
        raise BackupError(f"{cmd[0]} is not installed (Debian: postgresql-client)")
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"{cmd[0]} failed: {done.stderr.strip()[-500:]}")
    return done.stdout
