#!/usr/bin/env bash
# The servers some tests start as processes of their own, in a temporary folder on a free port:
# slapd (the region's LDAP catalogue, with ldap-utils for its schema tools) and nginx (mutual TLS
# in front of vardfil). Installed from Debian's packages when missing and root is available, with
# the packages' own services kept from starting (policy-rc.d): the tests run their own.
# Exit 1 when they are missing and cannot be installed.
set -uo pipefail
need=()
[ -x /usr/sbin/slapd ] || need+=(slapd)
command -v ldapadd >/dev/null 2>&1 || need+=(ldap-utils)
[ -x /usr/sbin/nginx ] || need+=(nginx-light)
[ ${#need[@]} -eq 0 ] && exit 0
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi; }
echo "ensure-daemons: installing ${need[*]} from Debian's packages" >&2
policy=/usr/sbin/policy-rc.d
made=0
if [ ! -e "$policy" ]; then
  as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod +x $policy" && made=1
fi
as_root apt-get update -qq >/dev/null && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
status=$?
[ "$made" = 1 ] && as_root rm -f "$policy"
exit $status
