"""The alert rules and their promtool unit tests (issue 33): ``promtool test rules`` passes on the
rules as shipped, and fails when a threshold is loosened or a ``for`` lengthened, because every
alert is tested just past and just short of its threshold."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from optional import PROMTOOL, need_program

RULES = Path(__file__).resolve().parent.parent / "deploy" / "prometheus"

# (what, the text in alerts.yml, the wrong way to change it)
LOOSENED = [
    ("the close half an hour late", "> 1800)", "> 3600)"),
    ("the kvittens p95 over a second", "[5m]))) > 1\n", "[5m]))) > 2\n"),
    (
        "the kvittens alert's five minutes",
        "        for: 5m\n        labels:\n          severity: warning",
        "        for: 15m\n        labels:\n          severity: warning",
    ),
    ("the queue's ten minutes", "for: 10m", "for: 20m"),
    ("the oldest unsent mail's hour", "> 3600", "> 7200"),
    ("the nightly run's 26 hours", "26 * 3600", "48 * 3600"),
    ("the store's 10 % free", "< 0.10", "< 0.05"),
    ("verify's problems", "vardfil_verify_problems > 0", "vardfil_verify_problems > 5"),
    ("the portal's two minutes", "for: 2m", "for: 10m"),
]


def _promtool(folder: Path) -> subprocess.CompletedProcess[str]:
    tool = need_program(("promtool",), PROMTOOL, "promtool (Debian's prometheus)")
    return subprocess.run(
        [tool, "test", "rules", "alerts_test.yml"], cwd=folder, capture_output=True, text=True, timeout=120
    )


def test_the_rules_pass_their_tests():
    done = _promtool(RULES)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(("what", "text", "loosened"), LOOSENED, ids=[w for w, _, _ in LOOSENED])
def test_a_threshold_changed_the_wrong_way_fails_the_tests(tmp_path, what, text, loosened):
    for name in ("alerts.yml", "alerts_test.yml"):
        shutil.copy(RULES / name, tmp_path / name)
    rules = (tmp_path / "alerts.yml").read_text(encoding="utf-8")
    assert rules.count(text) == 1, what  # the rule still reads as this test knows it
    (tmp_path / "alerts.yml").write_text(rules.replace(text, loosened), encoding="utf-8")
    done = _promtool(tmp_path)
    assert done.returncode != 0, f"{what}: loosened and the tests still pass"
