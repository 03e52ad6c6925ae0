#!/usr/bin/env bash
# Benchmark of module updates inside `odoo-bluegreen deploy`: for each strategy
# (maintenance, online), an update of 1, 10 and all installed modules on a database with
# 100,000 partners (BENCH_PARTNERS), under a keep-alive JSON-RPC load through HAProxy
# (BENCH_TASKS tasks, each on its own connection): the requests answered 503 by the
# maintenance page, those failed any other way (target 0), the maintenance window (no
# release serves), the update's own time and the whole deploy; and, as the anchor, the
# runbook's way (stop the old container, run the update, start the new one: every request
# fails meanwhile). Target: the maintenance window within 10 % of the update's own time.
# The slots are the fake Odoo image serving from the test cluster through its Unix socket.
# Writes the figures between the bench-update markers of BENCHMARKS.md. All traffic stays
# on 127.0.0.1; every loop is bounded; containers and images are removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

command -v docker >/dev/null || die "docker is missing: install Docker Engine and start it"
docker info >/dev/null 2>&1 || die "the Docker engine does not answer: start it (dockerd)"
bash scripts/ensure-proxies.sh
eval "$(bash scripts/ensure-postgres.sh)"
partners=${BENCH_PARTNERS:-100000}
tasks=${BENCH_TASKS:-4}

step "building the fake Odoo image"
image=$(bash scripts/build-fake-image.sh)
step "building odoo-bluegreen and the benchmark driver (release)"
cargo build -q --release -p odoo-deploy --bin odoo-bluegreen --example bench_update

mkdir -p target/bench
out=target/bench/update.md
step "running (several minutes: each database gets $partners partners and ten modules)"
BENCH_PARTNERS="$partners" BENCH_TASKS="$tasks" BENCH_CLI="$PWD/target/release/odoo-bluegreen" \
    BLUEGREEN_TEST_IMAGE="$image" \
    timeout 3600 target/release/examples/bench_update >"$out" \
    || die "the benchmark driver failed (see above)"
table=$(cat "$out")
printf '%s\n' "$table"

haproxy_version=$(haproxy -v | head -n 1 | cut -d' ' -f1-3)
docker_version=$(docker version --format '{{.Server.Version}}')
pg_version=$(psql -X -A -t -d "$DEPLOY_TEST_PG" -c "SHOW server_version" 2>/dev/null || echo "?")
section="<!-- bench-update:start -->
## Module updates in a deploy, per strategy (\`odoo-bluegreen deploy\` with \`[update]\`)

Command: \`scripts/bench-update.sh\` ($(date -u +%Y-%m-%d); $haproxy_version, PostgreSQL
$pg_version, Docker $docker_version; release build, 2 cores). A database with $partners
partners and ten custom modules, each adding a column to \`res_partner\` and rewriting it
for every partner in a post migration of each new version; the slots are the fake Odoo
image serving that database. Under load: $tasks tasks, each on its own keep-alive
connection, sending JSON-RPC calls (\`POST /web/webclient/version_info\`) through HAProxy
back to back for the whole deploy. Each deploy first takes the pre-deploy backup
(\`pg_dump\`), then updates; \"1\" changes one module, \"10\" all ten, \"all installed\" is
\`modules = \"all\"\` (Odoo's \`-u all\`: every installed module, \`base\` included).

- *maintenance window*: from the proxy answering 503 to the proxy routing to the new
  release (the report's \`maintenance.window_ms\`); for the runbook, from stopping the old
  container until requests through the proxy are answered again.
- *the update's own time*: the one-off \`odoo -u\` container, start to exit.
- *failed otherwise*: transport errors and any status but 200 that is not the
  maintenance page. \`online\` has no window: the old release serves during the update
  (for changes declared safe for the old code).
- \`clone\` (update a copy while the original serves) is not built yet.

$table
<!-- bench-update:end -->"
write_bench_section bench-update "$section"
step "BENCHMARKS.md: bench-update section written"
