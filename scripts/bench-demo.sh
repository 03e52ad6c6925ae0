#!/usr/bin/env bash
# The demo's own figures: runs scripts/demo.sh (release binaries) BENCH_RUNS times (3)
# and writes, between the bench-demo markers of BENCHMARKS.md, per run and proxy: the
# requests the keep-alive load sent and the failed ones during deploy, deploy and
# rollback, the time of each proxy's part and of the whole demo after the build.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

command -v docker >/dev/null && docker info >/dev/null 2>&1 || die "the demo's figures need the Docker engine"
runs=${BENCH_RUNS:-3}
step "building odoo-bluegreen and odoo-rollback (release) and the fake Odoo image"
cargo build -q --release -p odoo-deploy --bin odoo-bluegreen --bin odoo-rollback
image=$(bash scripts/build-fake-image.sh)
mkdir -p target/bench
rows=""
for run in $(seq 1 "$runs"); do
    step "demo run $run of $runs"
    out=target/bench/demo-$run.out
    err=target/bench/demo-$run.err
    start=$(date +%s.%N)
    DEMO_BIN_DIR=target/release DEMO_IMAGE="$image" timeout 600 bash scripts/demo.sh >"$out" 2>"$err" \
        || { tail -n 30 "$err" >&2; die "the demo failed in run $run"; }
    total=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$start" "$(date +%s.%N)")
    while IFS= read -r line; do
        # "<proxy>: deploy demo-1, ...: F failed of N requests (blue=B green=G), T s"
        proxy=${line%%:*}
        failed=$(sed -n 's/.*under load: \([0-9]*\) failed of.*/\1/p' <<<"$line")
        sent=$(sed -n 's/.* failed of \([0-9]*\) requests.*/\1/p' <<<"$line")
        slots=$(sed -n 's/.*requests (\(.*\)), .*/\1/p' <<<"$line")
        took=$(sed -n 's/.*), \([0-9]*\) s$/\1/p' <<<"$line")
        rows+="| $run | $proxy | $sent | $failed | $slots | $took s | $total s |"$'\n'
    done < <(grep -E '^(haproxy|nginx): deploy demo-1' "$out")
done
printf '%s' "$rows"

nginx_version=$(nginx -v 2>&1 | sed 's/^nginx version: //')
haproxy_version=$(haproxy -v | head -n 1 | cut -d' ' -f1-3)
docker_version=$(docker version --format '{{.Server.Version}}')
full="<!-- bench-demo:start -->
## The demo (\`scripts/demo.sh\`)

Command: \`scripts/bench-demo.sh\` ($(date -u +%Y-%m-%d); 2 cores; release binaries; $nginx_version,
$haproxy_version, Docker $docker_version). Each run does, for HAProxy and then nginx
(reload-free): \`init\`, start the proxy from the generated file, deploy \`demo-1\`, then
with a keep-alive load of 4 connections through the proxy (\`scripts/demo-load.py\`)
deploy \`demo-2\` and roll back to \`demo-1\`. Target: zero failed requests, the whole demo
under two minutes after the build.

| run | proxy | requests sent | failed | answered by | that proxy's part | whole demo |
|---|---|---|---|---|---|---|
${rows}
The load runs only from just before the second deploy to just after the rollback, so
its count measures those two switches (and a drain) rather than throughput.
<!-- bench-demo:end -->"
write_bench_section bench-demo "$full"
step "BENCHMARKS.md updated"
