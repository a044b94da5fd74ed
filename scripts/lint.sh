#!/usr/bin/env bash
# Style, types and the dependency direction; `.ci/run` runs it before the tests.
#   ruff check          lint (rules in pyproject.toml)
#   ruff format --check formatting
#   mypy                types; strict on filespec, validators, reports
#   lint-imports        filespec <- validators <- reports <- vardfil; only vardfil.ledger imports
#                       SQLAlchemy/Alembic; the libraries never import Airflow, the web or the ledger
# The DAG files are checked by tests/test_dags.py (their top-level imports stay light).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
status=0
run() { echo "lint: $*"; "$@" || status=1; }
run .venv/bin/ruff check .
run .venv/bin/ruff format --check .
run .venv/bin/mypy
run .venv/bin/lint-imports
[ "$status" -eq 0 ] && echo "lint: all passed" || echo "lint: FAILED" >&2
exit "$status"
