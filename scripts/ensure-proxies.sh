#!/usr/bin/env bash
# Installs the reverse proxies the deploy-bluegreen tests drive: Debian's nginx and
# haproxy, when missing. Idempotent; run as root (CI, the development machines).
#
# The system services are never what the tests use: every test starts its own nginx
# (`-p <tempdir> -c <tempdir>/nginx.conf`, `daemon off`) and haproxy (`-f <cfg> -db`) on
# free 127.0.0.1 ports. Installing does not start the system services either (a
# temporary policy-rc.d forbids it), so nothing listens on port 80.
#
# Usage: scripts/ensure-proxies.sh        (prints the versions found on stderr)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

apt_ensure_no_start nginx haproxy

command -v nginx >/dev/null || die "nginx is missing after installation (apt-get install nginx)"
command -v haproxy >/dev/null || die "haproxy is missing after installation (apt-get install haproxy)"
step "proxies: $(nginx -v 2>&1 | sed 's/^nginx version: //'), $(haproxy -v | head -n 1 | cut -d' ' -f1-3)"
