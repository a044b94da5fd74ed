#!/usr/bin/env bash
# The sample month through the vardfil_close DAG under Airflow's CeleryExecutor: Redis as broker,
# PostgreSQL for Airflow's metadata and vardfil's ledger, two Celery workers (issue 7, scale-out).
# Installs the `celery` extra; starts or installs PostgreSQL and Redis when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/python -m pip install -q -e ".[celery]" 2>&1 | grep -v -i "^warning" || true
pg=$(bash scripts/ensure-postgres.sh)
redis_up() { .venv/bin/python -c "import redis,sys; redis.Redis(host='127.0.0.1', port=6379, socket_timeout=1).ping()" 2>/dev/null; }
if ! redis_up; then
  as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi; }
  command -v redis-server >/dev/null || { as_root apt-get update -qq >/dev/null && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }
  redis-server --port 6379 --bind 127.0.0.1 --save "" --daemonize yes
  for _ in $(seq 1 20); do redis_up && break; sleep 0.5; done
fi
exec .venv/bin/python scripts/celery_trial.py --pg "${pg%/*}/postgres" "$@"
