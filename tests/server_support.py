"""Running ``vardfil`` as a real server process for the browser and burst tests."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager


def free_port() -> int:
    """A port on the loopback nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(env: dict[str, str], *args: str) -> Iterator[str]:
    """``vardfil serve`` in its own process until the block ends; its base URL, once it answers
    (its workers import pandera and polars first)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vardfil.cli", "serve", "--port", str(port), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
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
