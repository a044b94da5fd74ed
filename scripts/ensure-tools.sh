#!/usr/bin/env bash
# Debian tools the tests use to check deliverables the way people meet them: LibreOffice (opens
# every workbook) with the Carlito font, poppler (PDF pages to PNG), promtool (the alert rules' tests) and chromium (Playwright drives it for the portal). Installed when missing and root is available;
# exit 1 when they are missing and cannot be installed.
set -uo pipefail
need=()
command -v libreoffice >/dev/null 2>&1 || need+=(libreoffice-calc)
command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)
[ -x /usr/bin/chromium ] || need+=(chromium)
# Carlito has Calibri's metrics (the workbooks' default font): LibreOffice then lays a sheet out
# as Excel does, and the print tests measure what a person printing from Excel gets.
fc-list 2>/dev/null | grep -qi carlito || need+=(fonts-crosextra-carlito)
# promtool (in Debian's prometheus package) runs the alert rules' unit tests.
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
[ ${#need[@]} -eq 0 ] && exit 0
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi; }
echo "ensure-tools: installing ${need[*]} from Debian's packages" >&2
as_root apt-get update -qq >/dev/null && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
