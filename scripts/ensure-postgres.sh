#!/usr/bin/env bash
# Make sure a PostgreSQL server answers on 127.0.0.1:5432 with trust auth and a database `test`,
# for the ledger tests. Starts the cluster when it is installed but stopped; installs it from
# Debian's packages when absent (needs root). Prints the URL to use on success; exit 1 otherwise.
set -uo pipefail

HOST=127.0.0.1 PORT=5432 DB=test
ready() { pg_isready -q -h "$HOST" -p "$PORT" 2>/dev/null || python3 - <<PY
import socket, sys
s = socket.socket(); s.settimeout(1)
sys.exit(0 if s.connect_ex(("$HOST", $PORT)) == 0 else 1)
PY
}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi; }

if ! ready; then
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "ensure-postgres: installing PostgreSQL from Debian's packages" >&2
    as_root apt-get update -qq >/dev/null && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null || {
      echo "ensure-postgres: cannot install PostgreSQL (no root or no apt-get)" >&2; exit 1; }
  fi
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  [ -n "$version" ] || { echo "ensure-postgres: no cluster found under /etc/postgresql" >&2; exit 1; }
  hba=/etc/postgresql/$version/main/pg_hba.conf
  if ! grep -q "vardfil-test" "$hba" 2>/dev/null; then
    as_root sed -i "1i host all all 127.0.0.1/32 trust # vardfil-test" "$hba"
  fi
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || as_root pg_ctlcluster "$version" main start || true
  for _ in $(seq 1 30); do ready && break; sleep 1; done
  ready || { echo "ensure-postgres: server did not come up" >&2; exit 1; }
fi

# The database `test` (created when missing).
if command -v psql >/dev/null 2>&1 && ! psql -h "$HOST" -p "$PORT" -U postgres -d "$DB" -Atc 'select 1' >/dev/null 2>&1; then
  psql -h "$HOST" -p "$PORT" -U postgres -d postgres -c "CREATE DATABASE $DB" >/dev/null 2>&1 || true
fi
echo "postgresql+psycopg://postgres@$HOST:$PORT/$DB"
