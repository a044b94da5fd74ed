"""The drill (both backends): submit and close, back up, go on submitting, destroy the home,
restore — every file and kvittens up to the backup byte-identical, the closes reproducible to the
öre, nothing after the backup half-present; a restore refuses a home that is not empty and a
backup that does not match its manifest."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
from conftest import cli, underlag_key
from ledger_support import drop_schema

EXAMPLE = Path(__file__).parent / "data" / "region_example"
EXPECTED = json.loads((EXAMPLE / "expected.json").read_text(encoding="utf-8"))
REF = str(EXAMPLE / "reference")


def _submit(sub: dict) -> dict:
    code, out = cli("submit", str(EXAMPLE / sub["file"]), "--received-at", sub["received_at"], "--reference", REF)
    assert code in (0, 1), out
    return json.loads(out)


def _state(app_env) -> dict:
    """Everything a restore must bring back: every file's record and kvittens, every stored byte."""
    from vardfil.app import open_app

    with open_app(app_env) as app:
        files = {
            f.receipt_id: (f.sha256, f.kvittens_json, f.status, f.on_time) for f in app.ledger.files.stored_files()
        }
        stored = {
            p.relative_to(app.store.root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in app.store.root.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        }
        closes = {p: app.ledger.closes.close_of(p).total for p in app.ledger.closes.closed_periods()}
    return {"files": files, "stored": stored, "closes": closes}


def _destroy(app_env) -> None:
    """The home, the store, the outputs and the ledger database are gone (an empty one is left
    where PostgreSQL had the ledger's schema: the restore's target)."""
    shutil.rmtree(app_env.home)
    url = app_env.database_url
    if url.startswith("sqlite"):
        for suffix in ("", "-wal", "-shm"):
            Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
        return
    from ledger_support import PG_URL
    from sqlalchemy import create_engine, text

    drop_schema(url)
    schema = url.rsplit("search_path%3D", 1)[-1]
    eng = create_engine(PG_URL)
    with eng.begin() as c:
        c.execute(text(f"CREATE SCHEMA {schema}"))
    eng.dispose()


def test_the_drill(app_env, tmp_path):
    closes = {c["after_submission"]: c for c in EXPECTED["closes"]}
    first = next(c for c in EXPECTED["closes"] if c["period"] == "2026-09")
    subs = EXPECTED["submissions"]
    before = [s for s in subs if s["index"] <= first["after_submission"]]
    after = [s for s in subs if s["index"] > first["after_submission"]]
    for sub in before:
        _submit(sub)
    assert cli("close", "2026-09", "--at", first["at"], "--reference", REF)[0] == 0
    assert cli("report", "2026-09", "--reference", REF)[0] == 0
    backup_dir = tmp_path / "backup"
    code, out = cli("backup", str(backup_dir))
    assert code == 0, out
    assert json.loads(out)["received_files"] == len(_state(app_env)["files"])
    at_backup = _state(app_env)
    # Life goes on: more files and the next close, none of it in the backup.
    late = [_submit(s)["receipt_id"] for s in after]
    second = closes[max(closes)]
    assert cli("close", second["period"], "--at", second["at"], "--reference", REF)[0] == 0
    # A home that is not empty is refused.
    assert cli("restore", str(backup_dir))[0] == 2
    _destroy(app_env)
    assert cli("backup", "--verify", str(backup_dir))[0] == 0
    code, out = cli("restore", str(backup_dir))
    assert code == 0, out
    restored = _state(app_env)
    # Every file and kvittens up to the backup, byte for byte; nothing after it, not even half.
    assert restored["files"] == at_backup["files"]
    assert restored["stored"] == at_backup["stored"]
    assert not set(late) & set(restored["files"])
    assert restored["closes"] == at_backup["closes"] == {"2026-09": restored["closes"]["2026-09"]}
    # The close reads as it was, and is reproducible to the öre: the next close after the restore
    # pays 2026-10 exactly as the region's example says once the late files are sent again.
    code, summary = cli("close", "2026-09", "--at", first["at"], "--reference", REF)
    table = pq.read_table(json.loads(summary)["underlag_parquet"])
    assert [underlag_key(r) for r in table.to_pylist()] == [underlag_key(r) for r in first["underlag_lines"]]
    for sub in after:
        _submit(sub)
    code, out = cli("close", second["period"], "--at", second["at"], "--reference", REF)
    lines = pq.read_table(json.loads(out)["underlag_parquet"]).to_pylist()
    assert [underlag_key(r) for r in lines] == [underlag_key(r) for r in second["underlag_lines"]]
    assert cli("verify")[0] == 0


def test_a_backup_that_does_not_match_its_manifest_is_not_restored(app_env, tmp_path):
    _submit(EXPECTED["submissions"][0])
    backup_dir = tmp_path / "backup"
    assert cli("backup", str(backup_dir))[0] == 0
    raw = next(p for p in (backup_dir / "store" / "raw").rglob("*") if p.is_file())
    raw.write_bytes(raw.read_bytes() + b"x")
    code, out = cli("backup", "--verify", str(backup_dir))
    report = json.loads(out)
    assert code == 1 and report["problems"] == [{"file": raw.relative_to(backup_dir).as_posix(), "state": "changed"}]
    _destroy(app_env)
    assert cli("restore", str(backup_dir))[0] == 2
    assert not (app_env.home / "store").exists()  # nothing written
