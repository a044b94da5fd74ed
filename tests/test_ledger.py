"""The ledger and intake, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import cli, file_name, make_file
from sqlalchemy import select, text

from filespec.calendar import parse_instant
from vardfil.cli import main
from vardfil.ledger import FileKey, Ledger, newest_usable
from vardfil.ledger.tables import Base, ReceivedFile
from vardfil.month.dispens import grant_dispens
from vardfil.month.intake import submit

EXAMPLE = Path(__file__).parent / "data" / "region_example"
EXPECTED = json.loads((EXAMPLE / "expected.json").read_text(encoding="utf-8"))


def test_migrated_schema_matches_the_models(app):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    ledger = app.ledger
    with ledger.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diffs == []


def test_region_month_through_submit(app_env):
    """Every submission of the region's test month through ``vardfil submit``: the exact kvittens,
    F09 from the ledger's history, and the byte-identical copy answered with the earlier kvittens."""
    by_index = {}
    for sub in EXPECTED["submissions"]:
        code, out = cli(
            "submit",
            str(EXAMPLE / sub["file"]),
            "--received-at",
            sub["received_at"],
            "--reference",
            str(EXAMPLE / "reference"),
        )
        kv = json.loads(out)
        assert code == (1 if sub["kvittens"]["status"] == "AVVISAD" else 0)
        for key, value in sub["kvittens"].items():
            assert kv[key] == value, (sub["index"], key)
        assert [[f["row"], f["rule"], f["field"]] for f in kv["findings"]] == sub["findings_row_rule_field"][:1000]
        by_index[sub["index"]] = kv
        if sub["byte_identical_copy_of"]:
            assert kv == by_index[sub["byte_identical_copy_of"]]

    ledger = Ledger(app_env.database_url)
    assert len({f.sha256 for f in _all_files(ledger)}) == len(_all_files(ledger)) == 29
    copies = [e for e in ledger.audit_entries() if e.action == "copy_received"]
    assert len(copies) == 1

    code, out = cli("status", "2026-09", "--reference", str(EXAMPLE / "reference"), "--json")
    units = {(u["unit_hsaid"][-3:], u["file_type"]): u["gallande"] for u in json.loads(out)["units"]}
    assert units[("101", "VGP")]["file_name"].endswith("_02.csv") and units[("101", "VGP")]["on_time"] is False
    assert units[("102", "VGP")]["file_name"].endswith("_01.csv")  # _02 was AVVISAD (F02)
    assert units[("202", "REH")]["file_name"].endswith("_03.csv")
    assert units[("201", "REH")]["file_name"].endswith("_02.csv") and units[("201", "REH")]["on_time"] is True
    assert ("204", "REH") not in units  # not active in 2026-09
    deadline = parse_instant("2026-10-05T15:00:00+02:00")
    at_deadline = ledger.files.gallande(
        FileKey(unit_hsaid="SE2321000131-E000000000101", file_type="VGP", period="2026-09"), received_before=deadline
    )
    assert at_deadline.file_name.endswith("_01.csv")
    # The close chooses every slot's file from one query: the same file as gallande, slot by slot,
    # at the deadline, before it and after it (resubmissions, an AVVISAD file, a late one).
    slots = ledger.files.files_of_period("2026-09")
    seen: set[int | None] = set()
    assert sum(len(fs) for fs in slots.values()) == len([f for f in _all_files(ledger) if f.period == "2026-09"])
    for when in (
        None,
        deadline,
        parse_instant("2026-10-01T12:00:00+02:00"),
        parse_instant("2026-11-30T00:00:00+01:00"),
    ):
        for key, files in slots.items():
            for before in (deadline, None):
                chosen = newest_usable(files, received_before=before, as_of=when)
                expected = ledger.files.gallande(key, received_before=before, as_of=when)
                assert _id(chosen) == _id(expected), (key, before, when)
                seen.add(_id(chosen))
    assert len(seen) > len(slots)  # the instants chose different files of some slots
    ledger.dispose()


def _id(f: ReceivedFile | None) -> int | None:
    return f.id if f is not None else None


def _all_files(ledger: Ledger) -> list[ReceivedFile]:
    with ledger.reading() as s:
        return list(s.scalars(select(ReceivedFile)))


def test_audit_log_is_append_only(app):
    ledger = app.ledger
    with ledger.transaction() as s:
        ledger.audit(s, actor="job:t", action="test", subject="x")
    for stmt in ("UPDATE audit_log SET actor = 'y'", "DELETE FROM audit_log"):
        with pytest.raises(Exception, match="append-only"):
            with ledger.transaction() as s:
                s.execute(text(stmt))
    assert [e.actor for e in ledger.audit_entries()] == ["job:t"]


def test_dispens_makes_a_late_file_on_time(app):
    ledger = app.ledger
    late = parse_instant("2026-11-05T10:00:00+01:00")
    data = make_file()
    grant_dispens(
        app,
        unit_hsaid="SE2321000131-E000000001001",
        period="2026-10",
        until=parse_instant("2026-11-06T15:00:00+01:00"),
        reason="systembyte hos enheten",
        actor="job:analytiker",
    )
    sub = submit(data, file_name=file_name(), received_at=late, app=app)
    assert sub.kvittens["on_time"] is True
    assert sub.kvittens["deadline"] == "2026-11-06T15:00:00+01:00"
    other = submit(
        make_file(rows=[{"besok_id": "Z9"}]),
        file_name=file_name(seq="02"),
        received_at=parse_instant("2026-11-06T15:00:00+01:00"),
        app=app,
    )
    assert other.kvittens["on_time"] is False
    assert [e.action for e in ledger.audit_entries()].count("dispens_granted") == 1


def test_sequence_rule_uses_the_ledger_history(app):
    at = parse_instant("2026-11-02T10:00:00+01:00")
    first = submit(make_file(), file_name=file_name(seq="03"), received_at=at, app=app)
    lower = submit(make_file(rows=[{"besok_id": "B2"}]), file_name=file_name(seq="02"), received_at=at, app=app)
    assert first.kvittens["status"] == "GODKAND"
    assert lower.kvittens["counts_by_rule"] == {"F09": 1}


def test_concurrent_submissions_lose_and_double_nothing(app_env):
    """20 submissions at once, each with its own engine: 10 distinct files, each sent twice."""
    from vardfil.app import open_app

    at = parse_instant("2026-11-02T10:00:00+01:00")
    distinct = [(make_file(rows=[{"besok_id": f"C{i}"}]), file_name(seq=f"{i + 1:02d}")) for i in range(5)]
    distinct += [
        (make_file("REH", rows=[{"besok_id": f"D{i}"}]), file_name("REH", seq=f"{i + 1:02d}")) for i in range(5)
    ]
    jobs = distinct + distinct

    def one(job):
        data, name = job
        with open_app(app_env) as own:
            return submit(data, file_name=name, received_at=at, app=own)

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(one, jobs))
    ledger = Ledger(app_env.database_url)
    files = _all_files(ledger)
    assert len(files) == 10
    assert sum(r.new for r in results) == 10
    by_sha = {f.sha256: f.receipt_id for f in files}
    for (data, _), r in zip(jobs, results, strict=True):
        assert by_sha[hashlib.sha256(data).hexdigest()] == r.receipt_id
    ledger.dispose()


@pytest.mark.parametrize(
    "hostile",
    [
        "../../../tmp/VGP_SE2321000131-E000000001001_202610_01.csv",
        "sub/VGP_SE2321000131-E000000001001_202610_01.csv",
        "VGP_SE2321000131-E000000001001_202610_01.csv\x00.exe",
        "A" * 5000 + ".csv",
        "..",
        "",
    ],
)
def test_hostile_names_get_f01_and_touch_nothing_outside_the_store(app, tmp_path, hostile):
    store = app.store
    before = set(tmp_path.rglob("*"))
    sub = submit(make_file(), file_name=hostile, received_at=parse_instant("2026-11-02T10:00:00+01:00"), app=app)
    assert sub.kvittens["counts_by_rule"] == {"F01": 1}
    assert "\x00" not in sub.kvittens["file_name"] and len(sub.kvittens["file_name"]) <= 255
    new = set(tmp_path.rglob("*")) - before
    inside = [
        p
        for p in new
        if p == store.root or store.root in p.parents or p in store.root.parents or p.name.startswith("ledger.sqlite3")
    ]
    assert sorted(new) == sorted(inside)


def test_binary_and_zip_renamed_csv_are_rejected_and_kept(app):
    import zipfile

    store = app.store
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("data.csv", make_file())
    for i, data in enumerate([buf.getvalue(), bytes(range(256)) * 40]):
        sub = submit(
            data,
            file_name=file_name(seq=f"{i + 1:02d}"),
            received_at=parse_instant("2026-11-02T10:00:00+01:00"),
            app=app,
        )
        assert sub.kvittens["status"] == "AVVISAD"
        assert any(code in sub.kvittens["counts_by_rule"] for code in ("F02", "F04", "F05"))
        assert store.raw_path(sub.kvittens["sha256"]).read_bytes() == data


def test_same_content_as_another_units_file_is_answered_as_a_copy(app):
    ledger = app.ledger
    at = parse_instant("2026-11-02T10:00:00+01:00")
    data = make_file()
    a = submit(data, file_name=file_name(), received_at=at, app=app)
    b = submit(data, file_name=file_name(unit="SE2321000131-E000000001002"), received_at=at, app=app)
    assert (a.new, b.new) == (True, False) and a.receipt_id == b.receipt_id
    copy = next(e for e in ledger.audit_entries() if e.action == "copy_received")
    assert json.loads(copy.detail)["same_name"] is False


def test_oversized_file_is_stored_and_rejected_without_reading_it(app, tmp_path):
    store = app.store
    path = tmp_path / file_name()
    with open(path, "wb") as fh:
        fh.truncate(200 * 1024 * 1024 + 1)
    sub = submit(path, file_name=path.name, received_at=parse_instant("2026-11-02T10:00:00+01:00"), app=app)
    assert sub.kvittens["counts_by_rule"] == {"F06": 1}
    assert store.raw_path(sub.kvittens["sha256"]).stat().st_size == path.stat().st_size
    store.raw_path(sub.kvittens["sha256"]).unlink()  # 200 MB: not kept after the test


def test_unwritable_store_gives_a_clear_error_and_records_nothing(app_env, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("VARDFIL_STORE", str(blocker / "store"))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / file_name()).write_bytes(make_file())
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["intake", str(inbox)])
    assert code == 3 and "nothing was recorded" in err.getvalue()
    assert (inbox / file_name()).exists()
    ledger = Ledger(app_env.database_url)
    assert _all_files(ledger) == []
    ledger.dispose()


def test_full_disk_gives_a_clear_error_and_records_nothing(app, monkeypatch):
    import errno
    import os

    from vardfil.errors import StoreError

    ledger, store = app.ledger, app.store

    def no_space(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("vardfil.store.os.fsync", no_space)
    with pytest.raises(StoreError, match="No space left"):
        submit(make_file(), file_name=file_name(), received_at=parse_instant("2026-11-02T10:00:00+01:00"), app=app)
    assert _all_files(ledger) == []
    assert not any(p.name.startswith(".tmp-") for p in store.root.rglob("*"))


def test_inbox_uses_the_transfer_time_and_empties_the_folder(app_env, tmp_path):
    import os

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    path = inbox / file_name()
    path.write_bytes(make_file())
    on_time = parse_instant("2026-11-04T14:59:00+01:00").timestamp()
    os.utime(path, (on_time, on_time))
    (inbox / ".partial-upload.csv").write_bytes(b"in progress")
    code, out = cli("intake", str(inbox))
    assert code == 0 and "on_time=True" in out
    assert sorted(p.name for p in inbox.iterdir()) == [".partial-upload.csv"]
    ledger = Ledger(app_env.database_url)
    (f,) = _all_files(ledger)
    assert f.received_at == dt.datetime.fromtimestamp(on_time, dt.UTC) and f.source == "inbox"
    ledger.dispose()
