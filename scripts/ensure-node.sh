#!/usr/bin/env bash
# Node.js and npm (Debian's packages) and the test IdP's pinned packages (tests/oidc: node
# oidc-provider, from package-lock.json with `npm ci`), for the tests that sign in through a real
# OpenID provider. Installed when missing and root is available; exit 1 when they cannot be.
set -uo pipefail
cd "$(dirname "$0")/.."
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi; }
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "ensure-node: installing nodejs npm from Debian's packages" >&2
  as_root apt-get update -qq >/dev/null && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null || exit 1
fi
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' || { echo "ensure-node: oidc-provider needs Node.js >= 20" >&2; exit 1; }
want=$(sha256sum tests/oidc/package-lock.json | cut -d' ' -f1)
stamp=tests/oidc/node_modules/.vardfil-installed
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  (cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || exit 1
  echo "$want" > "$stamp"
fi
