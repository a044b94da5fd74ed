"""Running ``vardfil`` as a real server process for the browser and burst tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sample_data import SAMPLE_DIR


def server_env(tmp_path: Path, now: str, **extra: str) -> tuple[dict[str, str], Path]:
    """The environment of a server process: a fresh home, the sample reference data (named: it is
    never a default), the test clock at ``now``; and the clock file (write it to move time)."""
    clock = tmp_path / "clock"
    clock.write_text(now)
    env = {
        **os.environ,
        "VARDFIL_HOME": str(tmp_path / "home"),
        "VARDFIL_CLOCK_FILE": str(clock),
        "VARDFIL_REFERENCE": str(SAMPLE_DIR / "reference"),
        **extra,
    }
    for var in ("VARDFIL_DATABASE_URL", "VARDFIL_STORE", "VARDFIL_OUTPUT"):
        env.pop(var, None)
    return env, clock


def free_port() -> int:
    """A port on the loopback nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(env: dict[str, str], *args: str, port: int | None = None, log: Path | None = None) -> Iterator[str]:
    """``vardfil serve`` in its own process until the block ends; its base URL, once it answers
    (its workers import pandera and polars first). ``port``: when the address must be known first
    (the IdP is told vardfil's callback before vardfil starts); ``log``: a file for its output."""
    port = port or free_port()
    out = log.open("w") if log else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-m", "vardfil.cli", "serve", "--port", str(port), *args], env=env, stdout=out, stderr=out
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.25)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        if log:
            out.close()  # type: ignore[union-attr]


def token_for(env: dict[str, str], unit: str, name: str) -> str:
    """An API token for one unit, made with ``vardfil token create`` in the server's environment."""
    return subprocess.run(
        [sys.executable, "-m", "vardfil.cli", "token", "create", unit, "--name", name],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout.strip()
