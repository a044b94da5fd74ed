"""The one rule for skips: a test may skip only for a missing optional tool, and only while the
tool's ``VARDFIL_REQUIRE_*`` variable is unset. ``scripts/test.sh`` sets each variable once it has
installed (or found) the tool, and CI runs that script, so in CI a missing tool fails the run
instead of hiding the tests that need it. Core dependencies (the project's own and its ``test``
extra: fastapi, httpx, aiosmtpd, hypothesis …) are imported plainly, never skipped.
"""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path
from types import ModuleType

import pytest

# The optional tools and the variable that makes each one required.
BROWSER = "VARDFIL_REQUIRE_BROWSER"  # Debian's chromium, playwright driving it, axe-core
LIBREOFFICE = "VARDFIL_REQUIRE_LIBREOFFICE"
POSTGRES = "VARDFIL_REQUIRE_PG"
AIRFLOW = "VARDFIL_REQUIRE_AIRFLOW"
OIDC = "VARDFIL_REQUIRE_OIDC"  # Node.js and the test IdP (node oidc-provider, tests/oidc)
SLAPD = "VARDFIL_REQUIRE_SLAPD"  # Debian's slapd and ldap-utils (the catalogue)
NGINX = "VARDFIL_REQUIRE_NGINX"  # Debian's nginx (mutual TLS in front of vardfil)
PROMTOOL = "VARDFIL_REQUIRE_PROMTOOL"  # Debian's prometheus package (promtool tests the alert rules)

CHROMIUM = Path("/usr/bin/chromium")


def missing(variable: str, reason: str) -> None:
    """Skip for a missing tool, or fail when ``variable`` says the tool must be there."""
    if os.environ.get(variable):
        pytest.fail(f"{reason} ({variable} is set: this run needs it)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def optional_import(module: str, variable: str) -> ModuleType:
    """``module``, imported; a skip (or, when required, a failure) if it cannot be."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        missing(variable, f"{module} cannot be imported: {e}")
        raise  # not reached: missing() raises


def need_chromium() -> Path:
    """Debian's chromium (scripts/ensure-tools.sh installs it)."""
    if not CHROMIUM.exists():
        missing(BROWSER, "Debian's chromium is not installed (scripts/ensure-tools.sh installs it)")
    return CHROMIUM


def need_program(names: tuple[str, ...], variable: str, what: str) -> str:
    """The first of ``names`` on PATH."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    missing(variable, f"{what} is not installed (scripts/test.sh installs it)")
    raise AssertionError("not reached")
