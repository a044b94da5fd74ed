"""Settings: embedded defaults, overridable by environment variables.

| variable | default | meaning |
|---|---|---|
| ``VARDFIL_HOME`` | ``./var`` | where the embedded default keeps its ledger, raw store and outputs |
| ``VARDFIL_DATABASE_URL`` | ``sqlite:///$VARDFIL_HOME/ledger.sqlite3`` | the ledger (``postgresql+psycopg://…`` in production) |
| ``VARDFIL_STORE`` | ``$VARDFIL_HOME/store`` | the content-addressed raw store (shared or object storage when scaled out) |
| ``VARDFIL_REFERENCE`` | the sample reference data | the reference data folder |
| ``VARDFIL_OUTPUT`` | ``$VARDFIL_HOME/underlag`` | underlag, Parquet datasets and workbooks, one folder per period |
| ``VARDFIL_PSEUDONYM_KEY`` | a random key made once in ``$VARDFIL_HOME/pseudonym.key`` | the HMAC key of patient pseudonyms |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sample_data import SAMPLE_REFERENCE


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Resolved settings of one process."""

    home: Path
    reference: Path
    database_url: str
    store: Path
    output: Path
    pseudonym_key: str | None


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Settings from the environment (``os.environ`` by default)."""
    env = os.environ if environ is None else environ
    home = Path(env.get("VARDFIL_HOME", "var")).resolve()
    return Settings(
        home=home,
        reference=Path(env.get("VARDFIL_REFERENCE", str(SAMPLE_REFERENCE))).resolve(),
        database_url=env.get("VARDFIL_DATABASE_URL") or f"sqlite:///{(home / 'ledger.sqlite3').as_posix()}",
        store=Path(env.get("VARDFIL_STORE", str(home / "store"))).resolve(),
        output=Path(env.get("VARDFIL_OUTPUT", str(home / "underlag"))).resolve(),
        pseudonym_key=env.get("VARDFIL_PSEUDONYM_KEY") or None,
    )
