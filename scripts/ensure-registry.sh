#!/usr/bin/env bash
# Installs what the registry tests need, when missing: Debian's docker-registry (the
# distribution registry) and apache2-utils (htpasswd, for its users). Idempotent; run as
# root (CI, the development machines).
#
# The system service is never what the tests use (nor started by installing): every
# test starts its own `docker-registry serve` on a free 127.0.0.1 port, with its storage
# in a temp dir. The engine pulls from 127.0.0.0/8 registries without TLS.
#
# Usage: scripts/ensure-registry.sh        (prints the version found on stderr)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

apt_ensure_no_start docker-registry apache2-utils
command -v docker-registry >/dev/null || die "docker-registry is missing after installation (apt-get install docker-registry)"
command -v htpasswd >/dev/null || die "htpasswd is missing after installation (apt-get install apache2-utils)"
step "registry: $(docker-registry --version 2>&1 | head -n 1)"
