#!/usr/bin/env bash
# The fake Odoo's database side on PostgreSQL: the time of `-i` and then `-u` of 10
# modules on a database with 100,000 partners (BENCH_PARTNERS), BENCH_RUNS (3) times,
# each on a fresh database. Each module adds a column to res_partner and fills it for
# every partner (what a stored computed field costs at install); version 1.1 of each has
# a post migration that rewrites it (what an upgrade script costs). Written between the
# bench-fake-db markers of BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

runs=${BENCH_RUNS:-3}
partners=${BENCH_PARTNERS:-100000}
eval "$(bash scripts/ensure-postgres.sh)"
step "building odoo-fake (release)"
cargo build -q --release -p odoo-fixtures --bin odoo-fake
fake=target/release/odoo-fake
pg_parts
psql_db() { psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$pg_host" -p "$pg_port" -U "$pg_user" -d "$1" -c "$2"; }

addons=$(mktemp -d)
trap 'rm -rf "$addons"' EXIT
write_modules() { # version
    local version=$1 i
    for i in $(seq 1 10); do
        local m=bench_m$i
        mkdir -p "$addons/$m/data" "$addons/$m/migrations/1.1"
        printf "{'name': 'Bench %s', 'version': '%s', 'depends': ['base'], 'data': ['data/fill.sql'], 'license': 'LGPL-3'}\n" "$i" "$version" >"$addons/$m/__manifest__.py"
        printf '[[column]]\ntable = "res_partner"\nname = "x_%s"\ntype = "varchar"\n' "$m" >"$addons/$m/__fake__.toml"
        printf "UPDATE res_partner SET x_%s = 'v' || id WHERE x_%s IS NULL;\n" "$m" "$m" >"$addons/$m/data/fill.sql"
        printf "UPDATE res_partner SET x_%s = 'w' || id;\n" "$m" >"$addons/$m/migrations/1.1/post-rewrite.sql"
    done
}
modules=$(seq -s, -f 'bench_m%g' 1 10)
odoo() { "$fake" --odoo-version 17.0 --db_host "$pg_host" --db_port "$pg_port" --db_user "$pg_user" --addons-path "$addons" "$@"; }
seconds() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$2"; }

rows=""
for run in $(seq 1 "$runs"); do
    db="bench_fake_db_${run}_$$"
    write_modules 1.0
    step "run $run of $runs: database $db with $partners partners"
    odoo -d "$db" --stop-after-init 2>/dev/null
    psql_db "$db" "INSERT INTO res_partner (name, complete_name, email, type, active) SELECT 'Partner ' || g, 'Partner ' || g, 'p' || g || '@example.com', 'contact', true FROM generate_series(1, $partners) g;"
    psql_db "$db" "VACUUM ANALYZE res_partner"
    start=$(date +%s.%N)
    odoo -d "$db" -i "$modules" --stop-after-init 2>target/bench-fake-db-install.log \
        || { tail -n 20 target/bench-fake-db-install.log >&2; die "-i failed"; }
    install=$(seconds "$start" "$(date +%s.%N)")
    write_modules 1.1
    start=$(date +%s.%N)
    odoo -d "$db" -u "$modules" --stop-after-init 2>target/bench-fake-db-update.log \
        || { tail -n 20 target/bench-fake-db-update.log >&2; die "-u failed"; }
    update=$(seconds "$start" "$(date +%s.%N)")
    states=$(psql_db "$db" "SELECT count(*) FROM ir_module_module WHERE name LIKE 'bench_m%' AND state = 'installed' AND latest_version = '17.0.1.1'")
    [ "$states" = 10 ] || die "run $run: $states of 10 modules updated"
    psql_db postgres "DROP DATABASE \"$db\" WITH (FORCE)"
    rows+="| $run | $partners | $install s | $update s |"$'\n'
done
printf '%s' "$rows"

pg_version=$(psql_db postgres "SHOW server_version")
section="<!-- bench-fake-db:start -->
## The fake Odoo's database side: \`-i\` and \`-u\` of 10 modules

\`scripts/bench-fake-db.sh\`: \`odoo-fake -d DB -i bench_m1,...,bench_m10 --stop-after-init\`
on a fresh database with $partners partners, then the same with \`-u\` after each manifest
went from 1.0 to 1.1. Each module adds a column to \`res_partner\` and fills it for every
partner in its data file (what a stored computed field costs at install); 1.1 has a post
migration that rewrites it. Each module is its own transaction, as in Odoo. The time
includes the process start, the scan of the addons path and the module list update.
PostgreSQL $pg_version on 127.0.0.1, release build, 2 cores, $(date -u +%Y-%m-%d).

| run | partners | \`-i\` 10 modules | \`-u\` 10 modules |
|---|---|---|---|
${rows}
Calls per second of the serving fake on PostgreSQL against memory: the bench-fake-serve
section.
<!-- bench-fake-db:end -->"
write_bench_section bench-fake-db "$section"
step "BENCHMARKS.md: bench-fake-db section written"
