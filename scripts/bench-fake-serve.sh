#!/usr/bin/env bash
# Calls per second of the serving fake Odoo with its records in memory against the same
# fake serving from PostgreSQL (odoo-fake -d DB --db_host ...), on databases of 100 and
# 10,000 partners (BENCH_LARGE). One client on one keep-alive connection, BENCH_CALLS
# (300) calls of each kind after a warm-up call (the first call checks the password
# hash): `search_read` of 10 partners, `read` of one, and `write` of one. Written between
# the bench-fake-serve markers of BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

calls=${BENCH_CALLS:-300}
large=${BENCH_LARGE:-10000}
eval "$(bash scripts/ensure-postgres.sh)"
step "building odoo-fake (release)"
cargo build -q --release -p odoo-fixtures --bin odoo-fake
fake=target/release/odoo-fake
pg_parts
psql_db() { psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$pg_host" -p "$pg_port" -U "$pg_user" -d "$1" -c "$2"; }
data=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$data"' EXIT

# Python's standard library only: one keep-alive connection, bounded loops.
measure() { # URL DB -> "search_read read write" calls per second
    python3 - "$1" "$2" "$calls" <<'PY'
import http.client, json, sys, time
from urllib.parse import urlparse
url, db, n = urlparse(sys.argv[1]), sys.argv[2], int(sys.argv[3])
conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
def kw(model, method, args, kwargs=None):
    body = json.dumps({"jsonrpc": "2.0", "method": "call", "id": 1, "params": {
        "service": "object", "method": "execute_kw",
        "args": [db, 2, "admin", model, method, args, kwargs or {}]}})
    conn.request("POST", "/jsonrpc", body, {"Content-Type": "application/json"})
    out = json.loads(conn.getresponse().read())
    if "error" in out:
        raise SystemExit(f"{method}: {out['error']['data']['message']}")
    return out["result"]
ids = kw("res.partner", "search", [[]], {"limit": 1})
rates = []
for call in (lambda i: kw("res.partner", "search_read", [[]], {"fields": ["name", "email"], "limit": 10}),
             lambda i: kw("res.partner", "read", [ids, ["name", "email"]]),
             lambda i: kw("res.partner", "write", [ids, {"comment": f"run {i}"}])):
    start = time.perf_counter()
    for i in range(n):
        call(i)
    rates.append(f"{n / (time.perf_counter() - start):.0f}")
print(" ".join(rates))
PY
}

start_fake() { # LOG ARGS...
    local log=$1; shift
    ODOO_FAKE_PASSWORD=admin "$fake" --listen 127.0.0.1:0 --odoo-version 17.0 --no-websocket "$@" >"$log" 2>&1 &
    pid=$!
    wait_listening "$pid" "$log" 1200
}
stop_fake() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=; }

rows=""
for partners in 100 "$large"; do
    step "memory, $partners partners"
    url=$(start_fake target/bench-fake-serve-memory.log --db demo --seed-partners "$partners")
    memory=$(measure "$url" demo)
    stop_fake
    db="bench_fake_serve_$$"
    step "PostgreSQL, $partners partners"
    "$fake" --odoo-version 17.0 --db_host "$pg_host" --db_port "$pg_port" --db_user "$pg_user" \
        -d "$db" -D "$data" --stop-after-init 2>/dev/null
    psql_db "$db" "INSERT INTO res_partner (name, complete_name, email, type, active, commercial_partner_id) SELECT 'Partner ' || g, 'Partner ' || g, 'partner' || g || '@example.com', 'contact', true, NULL FROM generate_series(1, $partners) g; UPDATE res_partner SET commercial_partner_id = id;" >/dev/null
    psql_db "$db" "VACUUM ANALYZE res_partner" >/dev/null
    url=$(start_fake target/bench-fake-serve-pg.log -d "$db" --db_host "$pg_host" --db_port "$pg_port" \
        --db_user "$pg_user" -D "$data" --max-cron-threads 0)
    pg=$(measure "$url" "$db")
    stop_fake
    psql_db postgres "DROP DATABASE \"$db\" WITH (FORCE)"
    read -r m_sr m_r m_w <<<"$memory"
    read -r p_sr p_r p_w <<<"$pg"
    rows+="| $partners | memory | $m_sr | $m_r | $m_w |"$'\n'
    rows+="| $partners | PostgreSQL | $p_sr | $p_r | $p_w |"$'\n'
done
printf '%s' "$rows"

pg_version=$(psql_db postgres "SHOW server_version")
section="<!-- bench-fake-serve:start -->
## The serving fake: calls per second, memory against PostgreSQL

\`scripts/bench-fake-serve.sh\`: one client on one keep-alive connection, $calls calls of
each kind through \`/jsonrpc\` \`execute_kw\` after a warm-up call: \`search_read\` of 10
partners, \`read\` of one, \`write\` of one. In PostgreSQL mode every request that touches
records takes the database's advisory lock, reads every table the fake serves (the
whole of \`res_partner\`) and writes back what changed in one transaction: simple and
always right whoever else wrote, and its cost grows with the database, which the second
size shows. PostgreSQL $pg_version on 127.0.0.1, release build, 2 cores,
$(date -u +%Y-%m-%d).

| partners | records in | search_read/s | read/s | write/s |
|---|---|---|---|---|
${rows}<!-- bench-fake-serve:end -->"
write_bench_section bench-fake-serve "$section"
