"""``vardfil backup DIR``, ``vardfil backup --verify DIR``, ``vardfil restore DIR``.

A backup is a folder: the ledger's consistent copy (``vardfil.ledger.backup``), every file of the
store the ledger refers to (raw files, findings, accepted rows), every published file on record
(Parquet, datasets, workbooks), the pseudonym key (without it a later close would pseudonymise
with another key), and ``manifest.json`` with each file's SHA-256 and size. The ledger is copied
first and the files after it: the store only grows, so every file the copy names is there (a file
recorded after the copy is not in it, and not named by it either).

A restore goes into an empty home only (no ledger rows, nothing in the store or the output
folder), checks every file against the manifest before it writes anything, and refuses a backup
whose ledger is newer than this vardfil's schema. The folder holds patient data and the
pseudonym key: keep it as the store is kept (encrypted, access logged). RPO and RTO:
``docs/operations.md``, "Backup and restore".
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from vardfil.app import App
from vardfil.errors import Refused
from vardfil.ledger import utcnow
from vardfil.ledger.backup import BackupError, check, dump, is_empty, restore, rows
from vardfil.settings import Settings
from vardfil.store import sha256_of

MANIFEST = "manifest.json"
FORMAT = 1


def backup(app: App, target: Path) -> dict[str, Any]:
    """Write a backup of ``app`` into the empty or new folder ``target``; its manifest."""
    if target.exists() and any(target.iterdir()):
        raise Refused(f"säkerhetskopians mapp är inte tom: {target}")
    target.mkdir(parents=True, exist_ok=True)
    started = utcnow()
    ledger_copy = dump(app.ledger, target)
    files: dict[str, dict[str, Any]] = {}

    def copy(source: Path, name: str) -> None:
        out = target / name
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, out)
        files[name] = {"sha256": sha256_of(out), "size": out.stat().st_size}

    store, output = app.store, app.output
    for f in app.ledger.files.stored_files():
        if f.gallrad_at is not None:
            continue  # its bytes are gone on purpose: nothing to copy
        for rel in (store.relative(store.raw_path(f.sha256)), f.findings_path, f.accepted_path):
            if rel and f"store/{rel}" not in files:
                copy(store.resolve(rel), f"store/{rel}")
    for pf in app.ledger.closes.published_files():
        if (output / pf.path).is_file():
            copy(output / pf.path, f"underlag/{pf.path}")
    key = app.settings.home / "pseudonym.key"
    if not app.settings.pseudonym_key and key.is_file():
        copy(key, "pseudonym.key")
    manifest = {
        "format": FORMAT,
        "started_at": started.isoformat(),
        "finished_at": utcnow().isoformat(),
        "ledger": {
            "file": ledger_copy.name,
            "dialect": app.ledger.dialect,
            "sha256": sha256_of(ledger_copy),
            "size": ledger_copy.stat().st_size,
        },
        "files": dict(sorted(files.items())),
        "received_files": rows(app.ledger, "received_file"),
        "closes": rows(app.ledger, "period_close"),
    }
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
    app.ledger.add_audit(
        actor="job:backup",
        action="backup",
        subject=str(target)[:255],
        detail={"files": len(files), "received_files": manifest["received_files"], "closes": manifest["closes"]},
    )
    return manifest


def verify_backup(source: Path) -> dict[str, Any]:
    """Check a backup without restoring it: every file against the manifest, the ledger copy
    readable. The problems found (none: the backup can be restored)."""
    manifest = _manifest(source)
    problems: list[dict[str, str]] = []
    entries = {manifest["ledger"]["file"]: manifest["ledger"], **manifest["files"]}
    for name, want in entries.items():
        path = source / name
        if not path.is_file():
            problems.append({"file": name, "state": "missing"})
        elif path.stat().st_size != want["size"] or sha256_of(path) != want["sha256"]:
            problems.append({"file": name, "state": "changed"})
    ledger = source / manifest["ledger"]["file"]
    contents: dict[str, int] = {}
    if ledger.is_file():
        try:
            contents = check(ledger)
        except BackupError as e:
            problems.append({"file": ledger.name, "state": f"unreadable: {e}"})
    return {"ok": not problems, "problems": problems, "files": len(manifest["files"]), "ledger": contents}


def restore_backup(settings: Settings, source: Path) -> dict[str, Any]:
    """Restore a checked backup into the empty home of ``settings``."""
    from vardfil.ledger import Ledger

    checked = verify_backup(source)
    if not checked["ok"]:
        named = ", ".join(f"{p['file']} ({p['state']})" for p in checked["problems"][:10])
        raise Refused(f"säkerhetskopian stämmer inte med sitt manifest och återställs inte: {named}")
    manifest = _manifest(source)
    dialect = "sqlite" if settings.database_url.startswith("sqlite") else "postgresql"
    if manifest["ledger"]["dialect"] != dialect:
        raise Refused(f"säkerhetskopian är av en {manifest['ledger']['dialect']}-databas, målet är {dialect}")
    _ensure_empty(settings)
    started = utcnow()
    restore(settings.database_url, source / manifest["ledger"]["file"])
    roots = {"store": settings.store, "underlag": settings.output}
    for name in manifest["files"]:
        top, _, rel = name.partition("/")
        out = roots[top] / rel if top in roots else settings.home / name
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, out)
        if name == "pseudonym.key":
            os.chmod(out, 0o600)
    # Opened and migrated: a backup of an older vardfil is brought to this schema now.
    ledger = Ledger(settings.database_url)
    try:
        restored = {"received_files": rows(ledger, "received_file"), "closes": rows(ledger, "period_close")}
    finally:
        ledger.dispose()
    return {
        "restored_from": str(source),
        "backup_finished_at": manifest["finished_at"],
        "files": len(manifest["files"]),
        **restored,
        "seconds": round((utcnow() - started).total_seconds(), 2),
    }


def _manifest(source: Path) -> dict[str, Any]:
    path = source / MANIFEST
    if not path.is_file():
        raise Refused(f"ingen säkerhetskopia i {source} ({MANIFEST} saknas)")
    manifest: dict[str, Any] = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise Refused(f"okänt format på säkerhetskopian: {manifest.get('format')}")
    return manifest


def _ensure_empty(settings: Settings) -> None:
    """Refused unless the home has no ledger rows and nothing in the store or the output."""
    from vardfil.ledger import Ledger

    for folder in (settings.store, settings.output):
        if folder.exists() and any(p.is_file() for p in folder.rglob("*")):
            raise Refused(f"återställning görs bara till ett tomt hem: {folder} innehåller filer")
    if settings.database_url.startswith("sqlite"):
        path = Path(settings.database_url.removeprefix("sqlite:///"))
        if path.exists() and path.stat().st_size > 0:
            raise Refused(f"återställning görs bara till ett tomt hem: liggaren finns redan ({path})")
        return
    ledger = Ledger(settings.database_url, migrate=False)
    try:
        if not is_empty(ledger):
            raise Refused("återställning görs bara till en tom databas: liggaren har redan tabeller")
    finally:
        ledger.dispose()
