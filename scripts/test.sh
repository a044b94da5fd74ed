#!/usr/bin/env bash
# The whole test suite. `.ci/run` calls exactly this.
# The ledger tests run on SQLite and on a real PostgreSQL server: this script starts one (or
# installs it from Debian's packages) when none answers; where that is impossible (no root) the
# PostgreSQL variants are skipped with the reason, except in CI, where they must run. LibreOffice
# (to open every workbook as a person would) is installed the same way.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
if url=$(bash scripts/ensure-postgres.sh); then
  export VARDFIL_TEST_PG_URL="${VARDFIL_TEST_PG_URL:-$url}" VARDFIL_REQUIRE_PG=1
elif [ "${CI:-}" = "true" ]; then
  echo "test.sh: CI needs PostgreSQL for the ledger tests" >&2; exit 1
fi
if bash scripts/ensure-tools.sh; then
  export VARDFIL_REQUIRE_LIBREOFFICE=1 VARDFIL_REQUIRE_BROWSER=1 VARDFIL_REQUIRE_PROMTOOL=1
elif [ "${CI:-}" = "true" ]; then
  echo "test.sh: CI needs LibreOffice, chromium and promtool" >&2; exit 1
fi
if bash scripts/ensure-node.sh; then
  export VARDFIL_REQUIRE_OIDC=1  # the test IdP (node oidc-provider) can run: its tests must
elif [ "${CI:-}" = "true" ]; then
  echo "test.sh: CI needs Node.js for the test IdP" >&2; exit 1
fi
if bash scripts/ensure-daemons.sh; then
  export VARDFIL_REQUIRE_SLAPD=1 VARDFIL_REQUIRE_NGINX=1
elif [ "${CI:-}" = "true" ]; then
  echo "test.sh: CI needs slapd and nginx" >&2; exit 1
fi
export VARDFIL_REQUIRE_AIRFLOW=1  # bootstrap installed it: the DAG tests must run
exec .venv/bin/python -m pytest "$@"
