"""Watched at 15:00 (docs/operations.md): one /metrics over every server process that adds up to
what was sent and to the ledger, /readyz that sees a stopped lane, log lines as JSON with the
request id of the header and the audit log, no personnummer in any line or metric, and
``vardfil verify`` naming a changed raw file and a changed workbook. Real servers, real processes;
no timed assertion."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
from conftest import cli
from prometheus_client.parser import text_string_to_metric_families
from server_support import running_server, server_env, token_for

from sample_data.generate import generate_visits, kva_list, to_csv

ROOT = Path(__file__).resolve().parent.parent
UNIT = "SE2321000131-E000000001001"
EXAMPLE = Path(__file__).parent / "data" / "region_example"
EXPECTED = json.loads((EXAMPLE / "expected.json").read_text(encoding="utf-8"))
# A personnummer in every form the region writes: none may reach a log line or a metric.
PNR_FORMS = ("198112189876", "19811218-9876", "811218-9876", "8112189876", "19811218 9876", "811218 9876")


def _token(env: dict[str, str], unit: str = UNIT) -> str:
    return token_for(env, unit, "watched")


def _file(seq: int, rows: int = 40) -> tuple[str, bytes]:
    cols = generate_visits(file_type="VGP", hsaid=UNIT, period="2026-10", rows=rows, seed=seq, kva_codes=kva_list(2026))
    return f"VGP_{UNIT}_202610_{seq:02d}.csv", to_csv(cols)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by name and labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _sum(samples: dict, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in samples.items() if n == name and all((k, v_) in ls for k, v_ in labels.items()))


def _lines(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def test_one_scrape_adds_up_every_server_process(tmp_path):
    env, _ = server_env(tmp_path, "2026-11-04T14:30:00+01:00", VARDFIL_POOL_WORKERS="1")
    token = _token(env)
    log = tmp_path / "server.log"
    sent, served_by = 0, set()
    with running_server(env, "--workers", "2", log=log) as base:
        # A new connection a file, until both server processes have taken some (the kernel
        # decides which process accepts a connection).
        for seq in range(1, 41):
            name, body = _file(seq)
            with httpx.Client() as client:
                resp = client.post(
                    base + "/api/v1/filer",
                    headers={"Authorization": f"Bearer {token}", "X-Request-ID": f"watched-{seq:04d}"},
                    files={"file": (name, body)},
                    timeout=120,
                )
            assert resp.status_code == 200, resp.text
            assert resp.headers["x-request-id"] == f"watched-{seq:04d}"
            sent += 1
            served_by = {
                line["pid"]
                for line in _lines(log)
                if line.get("route") == "/api/v1/filer" and line.get("status") == 200
            }
            if len(served_by) >= 2 and sent >= 6:
                break
        assert len(served_by) == 2, f"every file went to one process ({served_by}): the test proved nothing"
        samples = _samples(httpx.get(base + "/metrics", timeout=60).text)
    # The counters of both processes (and of their lanes' workers) in one scrape...
    assert _sum(samples, "vardfil_files_received_total", source="api", file_type="VGP") == sent
    assert _sum(samples, "vardfil_http_requests_total", route="/api/v1/filer", status="200") == sent
    assert _sum(samples, "vardfil_kvittens_latency_seconds_count", source="api") == sent
    assert _sum(samples, "vardfil_worker_wait_seconds_count", lane="small") == sent
    assert _sum(samples, "vardfil_validation_duration_seconds_count") == sent
    # ...and the ledger's own count, read at the scrape, agree.
    assert _sum(samples, "vardfil_files") == sent
    assert _sum(samples, "vardfil_period_closed", period="2026-10") == 0
    assert _sum(samples, "vardfil_window_open") == 1
    # Every line is JSON with the fixed fields; the request id of the header is in the access
    # line and in the audit entries the request made.
    lines = _lines(log)
    assert all({"time", "level", "logger", "event", "pid"} <= set(line) for line in lines)
    assert {line["request_id"] for line in lines if line.get("route") == "/api/v1/filer"} >= {"watched-0001"}
    from vardfil.app import open_app
    from vardfil.settings import load_settings

    with open_app(load_settings(env)) as app:
        ids = {e.request_id for e in app.ledger.audit_entries()}
    assert "watched-0001" in ids


def test_a_stopped_lane_is_not_ready_and_its_queue_grows(tmp_path):
    env, _ = server_env(tmp_path, "2026-11-04T14:30:00+01:00", VARDFIL_POOL_WORKERS="1")
    token = _token(env)
    with running_server(env) as base:
        ready = httpx.get(base + "/readyz", timeout=60)
        assert ready.status_code == 200, ready.text
        (worker,) = ready.json()["checks"]["lanes"]["small"]["pids"]
        os.kill(worker, signal.SIGSTOP)
        answers: list[int] = []

        def send(seq: int) -> None:
            name, body = _file(seq)
            resp = httpx.post(
                base + "/api/v1/filer",
                headers={"Authorization": f"Bearer {token}"},
                files={"file": (name, body)},
                timeout=300,
            )
            answers.append(resp.status_code)

        senders = [threading.Thread(target=send, args=(seq,)) for seq in (1, 2)]
        try:
            for t in senders:
                t.start()
            depth = 0.0
            for _ in range(240):  # until both files are handed to the stopped lane
                depth = _sum(_samples(httpx.get(base + "/metrics", timeout=60).text), "vardfil_worker_queue_depth")
                if depth >= 2:
                    break
                time.sleep(0.25)
            assert depth >= 2
            stopped = httpx.get(base + "/readyz", timeout=60)
            assert stopped.status_code == 503
            checks = stopped.json()["checks"]
            assert checks["lanes"]["small"]["alive"] is False and checks["lanes"]["large"]["alive"] is True
            assert checks["ledger"]["ok"] and checks["store"]["ok"]
        finally:
            os.kill(worker, signal.SIGCONT)
            for t in senders:
                t.join(timeout=300)
        assert answers == [200, 200]
        assert httpx.get(base + "/readyz", timeout=60).status_code == 200
        assert _sum(_samples(httpx.get(base + "/metrics", timeout=60).text), "vardfil_worker_queue_depth") == 0


def test_a_lane_whose_worker_died_is_started_anew(tmp_path):
    env, _ = server_env(tmp_path, "2026-11-04T14:30:00+01:00", VARDFIL_POOL_WORKERS="1")
    token = _token(env)
    with running_server(env) as base:
        (worker,) = httpx.get(base + "/readyz", timeout=60).json()["checks"]["lanes"]["small"]["pids"]
        os.kill(worker, signal.SIGKILL)
        for _ in range(40):  # until the pool has noticed
            if httpx.get(base + "/readyz", timeout=60).status_code == 503:
                break
            time.sleep(0.25)
        else:
            pytest.fail("/readyz never saw the dead worker")
        name, body = _file(1)
        resp = httpx.post(
            base + "/api/v1/filer",
            headers={"Authorization": f"Bearer {token}"},
            files={"file": (name, body)},
            timeout=300,
        )
        assert resp.status_code == 200, resp.text
        ready = httpx.get(base + "/readyz", timeout=60)
        assert ready.status_code == 200 and ready.json()["checks"]["lanes"]["small"]["pids"] != [worker]


def test_no_personnummer_reaches_a_log_line_or_a_metric(tmp_path):
    from conftest import file_name, make_file

    env, _ = server_env(tmp_path, "2026-11-04T14:30:00+01:00", VARDFIL_POOL_WORKERS="1")
    token = _token(env)
    log = tmp_path / "server.log"
    auth = {"Authorization": f"Bearer {token}"}
    pnr = "19811218-9876"
    with running_server(env, log=log) as base:
        # The number as a patient (accepted and rejected rows) and where no id belongs.
        body = make_file(
            rows=[
                {"patient_id": "198112189876"},
                {"patient_id": pnr, "besoksdatum": "2026-13-45"},
                {"diagnos_2": pnr},
                {"yrkeskategori": "811218 9876"},
            ]
        )
        resp = httpx.post(base + "/api/v1/filer", headers=auth, files={"file": (file_name(), body)}, timeout=120)
        assert resp.status_code == 200 and resp.json()["rows"]["rejected"] >= 1
        # In the file name (F01), in the path, in a request id, as a user name at sign-in, in a
        # body that is not a file at all, and in the path of an unknown route.
        for form in PNR_FORMS:
            httpx.post(base + "/api/v1/filer", headers=auth, files={"file": (f"VGP_{form}_202610_01.csv", b"x;y\n")})
            httpx.get(base + f"/kvittens/{form}", headers={"X-Request-ID": f"req{form.replace(' ', '')}"})
            httpx.get(base + f"/api/v1/kvittenser/{form}", headers=auth)
            httpx.get(base + f"/enhet/{form}")
            httpx.post(base + "/login", data={"username": form, "password": "fel"})
            httpx.post(base + f"/nowhere/{form}", content=form.encode())
        httpx.post(
            base + "/api/v1/filer",
            headers={**auth, "Content-Type": "multipart/form-data; boundary=x"},
            content=f"--x\r\n{pnr}".encode(),
        )
        metrics = httpx.get(base + "/metrics", timeout=60).text
    text = log.read_text()
    assert '"route": "/api/v1/filer"' in text and '"route": "other"' in text  # the lines were written
    for form in PNR_FORMS:
        assert form not in text, f"{form!r} in the log"
        assert form not in metrics, f"{form!r} in /metrics"


@pytest.fixture
def closed_month(app_env):
    """The region's example month taken in, 2026-09 closed and its workbooks written."""
    ref = str(EXAMPLE / "reference")
    close = next(c for c in EXPECTED["closes"] if c["period"] == "2026-09")
    for sub in EXPECTED["submissions"]:
        if sub["index"] <= close["after_submission"]:
            assert cli("submit", str(EXAMPLE / sub["file"]), "--received-at", sub["received_at"], "--reference", ref)[
                0
            ] in (0, 1)
    assert cli("close", "2026-09", "--at", close["at"], "--reference", ref)[0] == 0
    code, out = cli("report", "2026-09", "--reference", ref)
    assert code == 0
    return app_env, [Path(p) for p in out.split()]


def test_verify_names_a_changed_raw_file_and_a_changed_workbook(closed_month):
    from vardfil.app import open_app

    settings, books = closed_month
    code, out = cli("verify", "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"] and report["problems"] == []
    assert report["checked"]["raw"] >= 3 and report["checked"]["published"] >= len(books) + 3
    # One received file's bytes changed on disk, one published workbook changed.
    with open_app(settings) as app:
        victim = app.ledger.files.stored_files()[0]
        raw = app.store.raw_path(victim.sha256)
    raw.chmod(0o600)
    raw.write_bytes(raw.read_bytes() + b"x")
    region = next(b for b in books if b.name.startswith("region_"))
    region.write_bytes(region.read_bytes()[:-10])
    code, out = cli("verify", "--json")
    report = json.loads(out)
    assert code == 1 and not report["ok"]
    found = {(p["kind"], p["state"], p["path"]) for p in report["problems"]}
    assert ("raw", "changed", f"raw/{victim.sha256[:2]}/{victim.sha256[2:4]}/{victim.sha256}") in found
    assert ("published", "changed", "2026-09/region_2026-09.xlsx") in found
    # The close's snapshot names the changed file too; nothing else is reported.
    assert {k for k, _, _ in found} <= {"raw", "published", "snapshot"}
    code, text = cli("verify")
    assert code == 1 and "ÄNDRAD  råfil" in text and "ÄNDRAD  publicerad fil  2026-09/region_2026-09.xlsx" in text
    # The result is on record for /metrics.
    with open_app(settings) as app:
        from vardfil.metrics import LedgerCollector

        families = {m.name: m for m in LedgerCollector(app, _now()).collect()}
    assert families["vardfil_verify_problems"].samples[0].value == len(report["problems"])


def _now():
    import datetime as dt

    return dt.datetime.now(dt.UTC)


def test_the_manifest_probes_what_the_server_serves():
    import yaml

    from vardfil import settings
    from vardfil.cli import build_parser

    deployment, service = yaml.safe_load_all((ROOT / "deploy" / "kubernetes" / "vardfil.yaml").read_text())
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pod["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
    # The command is vardfil's own, with flags it has; every setting named is one vardfil reads.
    assert container["args"][:2] == ["vardfil", "serve"]
    assert build_parser().parse_args(container["args"][1:]).workers == 2
    named = {e["name"] for e in container["env"]}
    assert named - {"PROMETHEUS_MULTIPROC_DIR"} <= set(re.findall(r"VARDFIL_[A-Z_]+", settings.__doc__ or ""))
    assert service["spec"]["ports"][0]["targetPort"] == "http"
