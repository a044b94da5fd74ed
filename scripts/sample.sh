#!/usr/bin/env bash
# The main job on the sample data with embedded defaults (local folders under $VARDFIL_HOME, default ./var).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/vardfil sample "$@"
