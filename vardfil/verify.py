"""``vardfil verify``: is everything the ledger says was kept still there, byte for byte?

It re-hashes every stored raw file (named by its SHA-256), every findings file and accepted-rows
file (their hashes recorded at intake, from ledger 0012), every published file (Parquet,
workbooks: recorded when written) and checks that each close's snapshot names files the ledger and
the store still hold. A problem is a file **missing** or **changed**; the report names each by its
place in the store or the output folder and what it belongs to (a receipt id, a period), never by
content. The result goes to the audit log (``verify``), where ``/metrics`` reads it
(``vardfil_verify_problems``, ``vardfil_verify_last_run_timestamp_seconds``); the nightly DAG runs
it. What to do about a problem: ``docs/operations.md``, "VardfilVerifyFailed".
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vardfil.actors import Actor
from vardfil.app import App
from vardfil.ledger import utcnow
from vardfil.store import sha256_of

KINDS = {
    "raw": "råfil",
    "findings": "fellista",
    "accepted": "godkända rader",
    "published": "publicerad fil",
    "snapshot": "stängningens ögonblicksbild",
}


@dataclass(frozen=True)
class Problem:
    """One file missing or changed."""

    kind: str  # raw | findings | accepted | published | snapshot
    state: str  # missing | changed
    path: str  # relative to the store or the output folder
    about: str  # the receipt id or the period it belongs to

    def line(self) -> str:
        """As the operator reads it."""
        state = {"missing": "SAKNAS", "changed": "ÄNDRAD"}[self.state]
        return f"{state}  {KINDS[self.kind]}  {self.path}  ({self.about})"


def verify(app: App, *, actor: Actor) -> dict[str, Any]:
    """Check every kept file; the report (``checked`` per kind, ``problems``), also audited."""
    checked: Counter[str] = Counter()
    problems: list[Problem] = []
    store, output = app.store, app.output
    raw_ok: dict[str, bool] = {}

    def check(kind: str, path: Path, shown: str, about: str, sha: str | None) -> bool:
        checked[kind] += 1
        if not path.is_file():
            problems.append(Problem(kind, "missing", shown, about))
            return False
        if sha is not None and sha256_of(path) != sha:
            problems.append(Problem(kind, "changed", shown, about))
            return False
        return True

    receipts: dict[str, str] = {}
    gallrade: set[str] = set()
    for f in app.ledger.files.stored_files():
        receipts[f.receipt_id] = f.sha256
        if f.gallrad_at is not None:  # its bytes were removed under a decision: nothing to find
            gallrade.add(f.receipt_id)
            continue
        if f.sha256 not in raw_ok:  # the same bytes recorded twice (2026.2) are one stored file
            raw = store.raw_path(f.sha256)
            raw_ok[f.sha256] = check("raw", raw, store.relative(raw), f.receipt_id, f.sha256)
        check("findings", store.resolve(f.findings_path), f.findings_path, f.receipt_id, f.findings_sha256)
        if f.accepted_path:
            check("accepted", store.resolve(f.accepted_path), f.accepted_path, f.receipt_id, f.accepted_sha256)
    for pf in app.ledger.closes.published_files():
        check("published", output / pf.path, pf.path, pf.period, pf.sha256)
    for pc in app.ledger.closes.recent_closes(limit=10_000):
        checked["snapshot"] += 1
        for entry in json.loads(pc.snapshot)["files"]:
            rid, sha = entry.get("receipt_id"), entry.get("sha256")
            if rid is None or rid in gallrade:
                continue
            if receipts.get(rid) != sha:
                problems.append(Problem("snapshot", "changed" if rid in receipts else "missing", rid, pc.period))
            elif not raw_ok.get(sha, False):
                problems.append(Problem("snapshot", "missing", store.relative(store.raw_path(sha)), pc.period))
    report: dict[str, Any] = {
        "at": utcnow().isoformat(),
        "checked": dict(sorted(checked.items())),
        "problems": [asdict(p) for p in problems],
        "ok": not problems,
    }
    app.ledger.add_audit(
        actor=actor,
        action="verify",
        subject=f"{len(problems)} problems",
        detail={"problems": len(problems), "checked": report["checked"], "found": report["problems"][:100]},
    )
    return report


def lines(report: dict[str, Any]) -> list[str]:
    """The report as the operator reads it (Swedish)."""
    from vardfil.swedish import number

    checked = report["checked"]
    counts = ", ".join(f"{KINDS[k]} {number(n)}" for k, n in checked.items())
    head = f"Kontrollerat: {counts or 'inga filer'}"
    if report["ok"]:
        return [f"{head}: allt stämmer."]
    return [
        f"{head}: {number(len(report['problems']))} saknas eller är ändrade.",
        *(Problem(**p).line() for p in report["problems"]),
    ]
