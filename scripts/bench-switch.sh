#!/usr/bin/env bash
# Benchmark of the blue-green traffic switch and of the orchestrator (deploy-bluegreen,
# odoo-bluegreen).
#
# Measures, with a release build:
#   1. under keep-alive load through the proxy (wrk from Debian's packages, 50 connections,
#      or a Rust client loop when wrk is missing), for nginx's plain reload procedure,
#      nginx's reload-free state file and HAProxy's runtime API: requests sent, requests
#      failed, and the switch latency (from the switch call until every new request
#      reaches the new slot; targets: HAProxy under 10 ms, nginx under 500 ms);
#   2. through the release-built odoo-bluegreen, with real containers of the fake Odoo
#      image behind HAProxy and nginx: the orchestration overhead of a deploy beyond
#      container start and gate time (target under 2 s), and the rollback command time,
#      process start to exit (target under 1 s).
# Writes the figures into BENCHMARKS.md between the bench-switch markers (other sections
# are kept) and prints them. Every loop is bounded in count and time; all traffic stays
# on 127.0.0.1; containers are removed at the end.
#
# Settings (environment): BENCH_SWITCHES (6), BENCH_GAP_MS (1500), BENCH_CONNECTIONS (50),
# BENCH_RUNS (3), BENCH_NO_WRK=1 to use the Rust client loop even when wrk is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

command -v python3 >/dev/null || die "python3 is missing (apt-get install python3)"
command -v docker >/dev/null || die "docker is missing: install Docker Engine and start it"
docker info >/dev/null 2>&1 || die "the Docker engine does not answer: start it (dockerd)"
bash scripts/ensure-proxies.sh

wrk_path=
if [ -z "${BENCH_NO_WRK:-}" ]; then
    if ! command -v wrk >/dev/null && [ "$(id -u)" -eq 0 ]; then
        apt_ensure wrk || true
    fi
    wrk_path=$(command -v wrk || true)
    [ -n "$wrk_path" ] || step "wrk is missing (apt-get install wrk): using the Rust client loop"
fi

step "building the fake Odoo image"
image=$(bash scripts/build-fake-image.sh)
step "building odoo-bluegreen and the benchmark driver (release)"
cargo build -q --release -p odoo-deploy --bin odoo-bluegreen
cargo build -q --release -p deploy-bluegreen --example bench_switch

mkdir -p target/bench
out=target/bench/switch.md
step "running (about a minute)"
BENCH_WRK="$wrk_path" BENCH_CLI="$PWD/target/release/odoo-bluegreen" BLUEGREEN_TEST_IMAGE="$image" \
    timeout 900 target/release/examples/bench_switch >"$out" \
    || die "the benchmark driver failed (see above)"
section=$(cat "$out")
printf '%s\n' "$section"

nginx_version=$(nginx -v 2>&1 | sed 's/^nginx version: //')
haproxy_version=$(haproxy -v | head -n 1 | cut -d' ' -f1-3)
docker_version=$(docker version --format '{{.Server.Version}}')
full="<!-- bench-switch:start -->
## Traffic switch and orchestration (\`deploy-bluegreen\`, \`odoo-bluegreen\`)

Command: \`scripts/bench-switch.sh\` ($(date -u +%Y-%m-%d); $nginx_version, $haproxy_version, Docker $docker_version).

$section
<!-- bench-switch:end -->"
write_bench_section bench-switch "$full"
step "BENCHMARKS.md updated"
