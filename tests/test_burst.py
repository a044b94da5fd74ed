"""The 15:00 burst against a real server (``vardfil serve``, worker processes): a small file is
answered while a large one is still being validated, and the server keeps answering. Ordering,
not timing: the machine is shared, so no test here asserts a number of milliseconds (the
figures are ``benchmarks/bench_burst.py``'s)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
from server_support import running_server, server_env, token_for

from sample_data.generate import generate_visits, kva_list, to_csv

UNIT = "SE2321000131-E000000001001"


@pytest.fixture
def running(tmp_path):
    env, _ = server_env(tmp_path, "2026-11-04T14:30:00+01:00", VARDFIL_POOL_WORKERS="1")
    token = token_for(env, UNIT, "burst")
    with running_server(env) as base:
        yield base, token


def _file(tmp: Path, seq: int, rows: int) -> Path:
    cols = generate_visits(file_type="VGP", hsaid=UNIT, period="2026-10", rows=rows, seed=seq, kva_codes=kva_list(2026))
    path = tmp / f"VGP_{UNIT}_202610_{seq:02d}.csv"
    path.write_bytes(to_csv(cols))
    return path


def test_a_small_file_is_answered_while_a_large_one_validates(running, tmp_path):
    base, token = running
    # The large file is the unit's second (it is recorded last: with a lower number it would be F09).
    large = _file(tmp_path, 2, 250_000)  # ~27 MB: the large lane
    small = _file(tmp_path, 1, 2_500)
    assert large.stat().st_size > 20 * 1024 * 1024 > small.stat().st_size
    auth = {"Authorization": f"Bearer {token}"}
    done: dict[str, float] = {}

    def send(path: Path, key: str) -> None:
        with path.open("rb") as fh:
            resp = httpx.post(base + "/api/v1/filer", headers=auth, files={"file": (path.name, fh)}, timeout=300)
        assert resp.status_code == 200, resp.text
        done[key] = time.monotonic()
        done[key + "_kv"] = resp.json()  # type: ignore[assignment]

    big = threading.Thread(target=send, args=(large, "large"))
    big.start()
    # Wait until the large file has been received: it is in the store's staging folder or beyond.
    home = tmp_path / "home"
    for _ in range(600):
        if list((home / "store").rglob(".upload-*")) or "large" in done:
            break
        time.sleep(0.05)
    send(small, "small")
    health = httpx.get(base + "/healthz", timeout=30)
    still_validating = "large" not in done
    big.join(timeout=300)
    assert health.status_code == 200
    assert still_validating, "the large file was done before the small one was sent: the test proved nothing"
    assert done["small"] < done["large"]
    assert done["small_kv"]["on_time"] is True and done["large_kv"]["status"] in ("GODKAND", "DELVIS_GODKAND")
