"""The README's first hour, run as written (issue 32): after ``bash scripts/sample.sh`` every
command of the block "The first hour after the sample" exits 0 without a traceback, from the same
environment and with no new flags; with the reference folder gone, each command either still
works or says which setting and which flag would fix it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from optional import AIRFLOW, optional_import

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## The first hour after the sample"


def readme_block() -> list[str]:
    """The commands of the section's first bash block, one a line, comments left to the shell."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index(SECTION) :]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "the README lost its first-hour block"
    return [line for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VARDFIL_") or k.startswith("VARDFIL_REQUIRE")}
    env.update(VARDFIL_HOME=str(home), VARDFIL_POOL_WORKERS="0")
    return env


def _run(line: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", line], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def sampled(tmp_path_factory) -> Path:
    """A home after the README's first command, exactly as written."""
    optional_import("airflow", AIRFLOW)
    home = tmp_path_factory.mktemp("first-hour")
    done = _run("bash scripts/sample.sh", _env(home))
    assert done.returncode == 0, done.stderr[-3000:]
    return home


def test_every_command_of_the_first_hour_works_after_the_sample(sampled):
    lines = readme_block()
    assert len(lines) >= 8 and lines[-1].startswith("bash scripts/sample.sh")
    for line in lines:
        done = _run(line, _env(sampled))
        out = done.stdout + done.stderr
        assert done.returncode == 0 and "Traceback" not in out, (line, out[-2000:])
        if line.startswith("bash scripts/sample.sh"):
            assert "Inget nytt" in out, out[-2000:]  # the second run says it found nothing new


def test_without_the_reference_each_command_names_the_setting_and_the_flag(sampled, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(sampled, home, symlinks=True)
    shutil.rmtree(home / "reference")
    told = []
    for line in readme_block()[:-1]:  # (the sample itself brings the reference back)
        done = _run(line, _env(home))
        out = done.stdout + done.stderr
        assert "Traceback" not in out, (line, out[-2000:])
        if done.returncode != 0:
            assert done.returncode == 2 and "VARDFIL_REFERENCE" in out and "--reference" in out, (line, out[-2000:])
            told.append(line.split()[1] if line.startswith(".venv/bin/vardfil") else line)
    assert {"status", "deviations", "validate"} <= set(told), told


def test_the_documents_link_only_what_is_in_the_repository():
    """Every relative link and every backticked repository path of the README and docs/ names a
    file or folder that is here (issue 32: the README pointed to a FILSPECIFIKATION.md it lacked)."""
    broken = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        text = doc.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if re.match(r"[a-z]+:", target):  # http:, mailto: …
                continue
            if not (doc.parent / target).exists():
                broken.append((doc.relative_to(ROOT).as_posix(), target))
        for path in re.findall(
            r"`((?:docs|scripts|benchmarks|tests|deploy|dags)/[\w./-]+\.(?:md|sh|py|conf|toml))`", text
        ):
            if not (ROOT / path).exists():
                broken.append((doc.relative_to(ROOT).as_posix(), path))
    assert not broken, broken
