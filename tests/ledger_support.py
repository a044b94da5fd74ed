"""Backends for the ledger tests: the embedded SQLite, and a real PostgreSQL server.

PostgreSQL comes from ``VARDFIL_TEST_PG_URL`` (default: the project machines' server on
127.0.0.1:5432, trust auth, database ``test``). Each test gets a schema of its own. When the
server cannot be reached the PostgreSQL tests are skipped — except when ``VARDFIL_REQUIRE_PG`` is
set (``scripts/test.sh`` sets it once it has made sure a server runs), where that is a failure.
"""

from __future__ import annotations

import os
import uuid
from urllib.parse import quote

from optional import POSTGRES, missing
from sqlalchemy import create_engine, text

PG_URL = os.environ.get("VARDFIL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def pg_available() -> str | None:
    """None when reachable, else the reason."""
    try:
        eng = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with eng.connect() as c:
            c.execute(text("select 1"))
        eng.dispose()
        return None
    except Exception as e:  # noqa: BLE001 - any failure means "not reachable"
        return f"{type(e).__name__}: {e}"


def database_url(backend: str, tmp_path) -> str:
    """A fresh, empty ledger database URL for one test."""
    if backend == "sqlite":
        return f"sqlite:///{(tmp_path / 'ledger.sqlite3').as_posix()}"
    reason = pg_available()
    if reason:
        missing(POSTGRES, f"PostgreSQL not reachable at {PG_URL}: {reason}")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    eng = create_engine(PG_URL)
    with eng.begin() as c:
        c.execute(text(f"CREATE SCHEMA {schema}"))
    eng.dispose()
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options={quote(f'-csearch_path={schema}')}"


def drop_schema(url: str) -> None:
    """Remove a test's PostgreSQL schema."""
    if not url.startswith("postgresql"):
        return
    schema = url.rsplit("search_path%3D", 1)[-1]
    eng = create_engine(PG_URL)
    with eng.begin() as c:
        c.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    eng.dispose()
