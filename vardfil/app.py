"""The composition root: the one place that builds the application from its settings.

The CLI, the portal, every DAG task, the sample job and the benchmarks start with
:func:`open_app` and pass the :class:`App` on. Its parts are built when first used, so a command
that records nothing (``vardfil validate``) never opens a database, and one that does opens it
once per process.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from filespec import Reference, load_reference
from filespec.calendar import STOCKHOLM, parse_instant
from vardfil.ledger import Ledger
from vardfil.settings import Settings, load_settings
from vardfil.store import RawStore

if TYPE_CHECKING:
    from vardfil.oidc import RelyingParty


@dataclass(eq=False)
class App:
    """The ledger, raw store, reference data and output folder of one process."""

    settings: Settings
    migrate: bool = True
    _opened: list[str] = field(default_factory=list, repr=False)

    @cached_property
    def ledger(self) -> Ledger:
        """The ledger (opened and migrated on first use)."""
        self._opened.append("ledger")
        return Ledger(self.settings.database_url, migrate=self.migrate)

    @cached_property
    def store(self) -> RawStore:
        """The content-addressed raw store."""
        return RawStore(self.settings.store)

    @cached_property
    def reference(self) -> Reference:
        """The reference data (unit register, KVÅ lists); ReferenceDataError when unusable."""
        return load_reference(self.settings.reference)

    @cached_property
    def oidc(self) -> RelyingParty | None:
        """The relying party of the region's IdP, when ``VARDFIL_OIDC_ISSUER`` names one."""
        s = self.settings
        if not s.oidc_issuer:
            return None
        from vardfil.oidc import OidcSettings, RelyingParty

        return RelyingParty(
            OidcSettings(
                issuer=s.oidc_issuer,
                client_id=s.oidc_client_id,
                client_secret=s.oidc_client_secret,
                private_key=s.oidc_private_key,
                acr_values=s.oidc_acr_values,
                purposes=s.oidc_purposes,
                claim_names=dict(s.oidc_claims),
                redirect_uri=f"{s.base_url}/oidc/callback",
                post_logout_redirect_uri=f"{s.base_url}/login?utloggad=1",
            )
        )

    @property
    def output(self) -> Path:
        """Where closes publish: one folder per period."""
        return self.settings.output

    @cached_property
    def pseudonym_key(self) -> bytes:
        """The HMAC key of patient pseudonyms: ``VARDFIL_PSEUDONYM_KEY`` when set, else a key file
        made once under the home (mode 0600), so pseudonyms stay stable from close to close."""
        if self.settings.pseudonym_key:
            return self.settings.pseudonym_key.encode()
        path = self.settings.home / "pseudonym.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".tmp-{secrets.token_hex(4)}-pseudonym.key")
            tmp.write_text(secrets.token_hex(32))
            tmp.chmod(0o600)
            try:
                # link, not rename: two processes making the key at once must not replace each
                # other's, or one close would pseudonymise with a key that is then lost.
                path.hardlink_to(tmp)
            except FileExistsError:
                pass
            finally:
                tmp.unlink(missing_ok=True)
        return path.read_text().strip().encode()

    def close(self) -> None:
        """Release the database connections (safe to call more than once)."""
        if "ledger" in self._opened:
            self.ledger.dispose()

    def __enter__(self) -> App:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def make_clock(clock_file: Path | None) -> Callable[[], dt.datetime]:
    """The application's clock (the portal's "now", the instant ``vardfil gallra`` judges ages by). A clock file (``VARDFIL_CLOCK_FILE``: demos, tests and the burst
    benchmark only) holds the current instant, so a test can cross a deadline; or
    ``INSTANT EPOCH RATE``: the clock showed INSTANT at Unix time EPOCH and runs RATE times as
    fast as real time (the benchmark replays 14:00–15:00 in two minutes). Else the real time."""
    if clock_file is None:
        return lambda: dt.datetime.now(dt.UTC).astimezone(STOCKHOLM)

    def read() -> dt.datetime:
        instant, *moving = clock_file.read_text().split()
        at = parse_instant(instant)
        if moving:
            epoch, rate = float(moving[0]), float(moving[1])
            at += dt.timedelta(seconds=(time.time() - epoch) * rate)
        return at

    return read


def open_app(settings: Settings | None = None, *, reference: Path | None = None, migrate: bool = True) -> App:
    """The application on ``settings`` (default: the environment's), with another reference
    folder if given. ``migrate=False`` for worker processes whose parent has migrated already."""
    s = (settings or load_settings()).with_reference(reference)
    # Everything vardfil writes (the ledger, received files, kvittenser, underlag) carries health
    # data: readable by the service's own account only (files 0600, folders 0700).
    os.umask(0o077)
    configure_polars()
    return App(settings=s, migrate=migrate)


def configure_polars() -> None:
    """polars' in-memory engine for queries that do not name one, unless the operator chose.

    polars 2 runs ``collect()`` on its streaming engine by default; setting up its pipeline cost
    ~100–150 µs a query more than the in-memory engine here. A month file's validation runs ~100
    small queries (the rules, pandera's dozen collects per failing check, the findings): ~12 % of
    its time, 7 % of its instructions. The large queries gained nothing from streaming either (a 1 M-row file, the close at
    10×: measured in benchmarks/RESULTS.md). ``POLARS_ENGINE_AFFINITY`` set in the environment
    wins, and spawned workers inherit the choice through it.
    """
    if "POLARS_ENGINE_AFFINITY" not in os.environ:
        import polars as pl

        pl.Config.set_engine_affinity("in-memory")
