#!/usr/bin/env bash
# The portal on the sample data (run scripts/sample.sh first for a closed month to look at).
# Creates two demo accounts the first time — `enhet` (unit SE2321000131-E000000001001) and
# `analytiker` — with the password in $VARDFIL_PASSWORD, or a random one printed here.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export VARDFIL_HOME="${VARDFIL_HOME:-$PWD/var}"
# The demo judges against the sample unit register, named here: vardfil itself has no such default.
export VARDFIL_REFERENCE="${VARDFIL_REFERENCE:-$PWD/sample_data/reference}"
if [ ! -f "$VARDFIL_HOME/.demo-accounts" ]; then
  export VARDFIL_PASSWORD="${VARDFIL_PASSWORD:-$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(12))')}"
  .venv/bin/vardfil user add enhet --role unit --hsaid SE2321000131-E000000001001 --actor job:serve.sh
  .venv/bin/vardfil user add analytiker --role analyst --actor job:serve.sh
  mkdir -p "$VARDFIL_HOME" && touch "$VARDFIL_HOME/.demo-accounts"
  echo "demo accounts: enhet / analytiker, password: $VARDFIL_PASSWORD"
fi
exec .venv/bin/vardfil serve --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}"
