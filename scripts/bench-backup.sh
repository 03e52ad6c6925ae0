#!/usr/bin/env bash
# Backup and restore benchmark of deploy-rollback against plain pg_dump / pg_restore.
#
# On the throwaway cluster of scripts/ensure-postgres.sh it builds (once, then reuses)
# a pgbench database of at least 1 GB (pgbench -i -s $BENCH_SCALE, default 70), then
# times on the same data:
#   1. backup:  `pg_dump -Fc` to a file  vs  BackupStore::create (pg_dump streamed,
#               hashed, pg_restore --list verified, manifest, atomic rename);
#   2. restore: `createdb` + `pg_restore` vs  restore() (checksum verify, createdb,
#               pg_restore, table check, rename swap);
#   3. unavailability of the live database: the rename swap (measured by restore())
#      vs drop-and-restore (dropdb + createdb + pg_restore of the live name).
# Each backup is run twice, alternating, and the faster run kept; restores once.
# Results go to BENCHMARKS.md between the bench-backup markers (other sections kept).
#
# Usage: scripts/bench-backup.sh   (env: BENCH_SCALE, BENCH_DIR, PG_TEST_PORT, PG_TEST_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

step "PostgreSQL test cluster"
eval "$(scripts/ensure-postgres.sh)"
: "${DEPLOY_TEST_PG:?ensure-postgres.sh did not set DEPLOY_TEST_PG}"
BIN=${DEPLOY_TEST_PG_BIN:?ensure-postgres.sh did not set DEPLOY_TEST_PG_BIN}
SCALE=${BENCH_SCALE:-70}
WORK=${BENCH_DIR:-$PWD/target/bench-backup}
HOSTPORT=${DEPLOY_TEST_PG#postgres://postgres@}
HOSTPORT=${HOSTPORT%%/*}
export PGHOST=${HOSTPORT%%:*} PGPORT=${HOSTPORT##*:} PGUSER=postgres PGDATABASE=postgres
SRC=bench_src
rm -rf "$WORK"
mkdir -p "$WORK"

sql() { "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -tA -d "${2:-postgres}" -c "$1"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
json() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(d'"$1"')'; }
drop() { sql "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)"; }
cleanup() {
    [ -n "${holder:-}" ] && kill "$holder" 2>/dev/null || true
    for db in $(sql "SELECT datname FROM pg_database WHERE datname LIKE 'bench\_live%' OR datname LIKE 'bench\_plain%'"); do
        drop "$db" || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

step "building the driver (release)"
cargo build --release -q -p deploy-rollback --example backup_restore
DRIVER=target/release/examples/backup_restore

# The source database: >= 1 GB, built once and kept in the throwaway cluster.
min_bytes=$((1000 * 1000 * 1000))
size=$(sql "SELECT coalesce((SELECT pg_database_size(datname) FROM pg_database WHERE datname = '$SRC'), 0)")
if [ "$size" -lt "$min_bytes" ]; then
    step "building $SRC with pgbench -i -s $SCALE (one time, a few minutes)"
    drop "$SRC"
    sql "CREATE DATABASE $SRC"
    t=$(now)
    "$BIN/pgbench" -i -q -s "$SCALE" "$SRC" >&2
    echo "pgbench -i took $(elapsed "$t") s" >&2
    size=$(sql "SELECT pg_database_size('$SRC')")
    [ "$size" -ge "$min_bytes" ] || die "$SRC is only $size bytes: raise BENCH_SCALE"
fi
size_pretty=$(sql "SELECT pg_size_pretty(pg_database_size('$SRC'))")
rows=$(sql "SELECT count(*) FROM pgbench_accounts" "$SRC")
step "$SRC: $size_pretty, $rows rows in pgbench_accounts"

# Runs a command (stdout to $1), prints "WALL CPU": wall seconds, and the user+system CPU
# seconds of the command and its children (pg_dump, pg_restore), which the other
# processes on a shared machine do not disturb.
measure() {
    local out=$1
    shift
    python3 - "$out" "$@" <<'PY'
import resource, subprocess, sys, time
out, cmd = sys.argv[1], sys.argv[2:]
t = time.monotonic()
with open(out, "w") as f:
    subprocess.run(cmd, stdout=f, check=True)
wall = time.monotonic() - t
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{wall:.2f} {ru.ru_utime + ru.ru_stime:.2f}")
PY
}
best() { printf '%s\n' "$@" | sort -n -k1,1 | head -n 1; }
wall() { echo "${1%% *}"; }
cpu() { echo "${1##* }"; }

plain_backup() {
    rm -f "$WORK/plain.dump"
    measure /dev/null "$BIN/pg_dump" -Fc -f "$WORK/plain.dump" "$SRC"
}
ours_backup() {
    rm -rf "$WORK/store"
    measure "$WORK/ours-backup.json" "$DRIVER" backup --store "$WORK/store" \
        --url "postgres://postgres@$HOSTPORT/$SRC" --pg-bin "$BIN"
}

step "backup: plain pg_dump -Fc vs ours (three runs each, alternating)"
p1=$(plain_backup); o1=$(ours_backup); o2=$(ours_backup); p2=$(plain_backup); p3=$(plain_backup); o3=$(ours_backup)
echo "plain (wall cpu): $p1 / $p2 / $p3; ours: $o1 / $o2 / $o3" >&2
plain_b=$(best "$p1" "$p2" "$p3"); ours_b=$(best "$o1" "$o2" "$o3")
plain_dump_bytes=$(stat -c %s "$WORK/plain.dump")
ours_dump_bytes=$(json "['dump_bytes']" <"$WORK/ours-backup.json")
id=$(json "['id']" <"$WORK/ours-backup.json")

plain_restore() {
    sql "CREATE DATABASE bench_plain_live"
    measure /dev/null bash -c "
        '$BIN/psql' -X -q -v ON_ERROR_STOP=1 -d postgres -c 'DROP DATABASE bench_plain_live WITH (FORCE)' &&
        '$BIN/psql' -X -q -v ON_ERROR_STOP=1 -d postgres -c 'CREATE DATABASE bench_plain_live' &&
        '$BIN/pg_restore' --no-owner --exit-on-error -d bench_plain_live '$WORK/plain.dump'"
    drop bench_plain_live
}
ours_restore() {
    # A session held on the live database: the swap must close it.
    "$BIN/psql" -X -q -d bench_live -c "SELECT pg_sleep(600)" >/dev/null 2>&1 &
    holder=$!
    sleep 1
    measure "$WORK/ours-restore.json" "$DRIVER" restore --store "$WORK/store" \
        --url "postgres://postgres@$HOSTPORT/postgres" --live bench_live --id "$id" \
        --pg-bin "$BIN" --probe "SELECT count(*) FROM pgbench_accounts"
    wait "$holder" 2>/dev/null || true
    holder=
    cat "$WORK/ours-restore.json" >>"$WORK/ours-restores.json"
    sleep 1 # the next restore gets other dated names
}

step "restore: drop-and-restore (dropdb + createdb + pg_restore) vs ours (verify, restore beside, rename swap); twice each"
drop bench_plain_live
drop bench_live
sql "CREATE DATABASE bench_live"
sql "CREATE TABLE marker AS SELECT 1 AS x" bench_live
: >"$WORK/ours-restores.json"
pr1=$(plain_restore); or1=$(ours_restore); or1_json=$(cat "$WORK/ours-restore.json")
or2=$(ours_restore); or2_json=$(cat "$WORK/ours-restore.json"); pr2=$(plain_restore)
echo "plain (wall cpu): $pr1 / $pr2; ours: $or1 / $or2" >&2
plain_r=$(best "$pr1" "$pr2"); ours_r=$(best "$or1" "$or2")
probe=$(json "['verification']['probe_result']" <<<"$or2_json")
[ "$probe" = "$rows" ] || die "restored row count $probe differs from $rows"
unavail1=$(json "['unavailable_ms']" <<<"$or1_json"); unavail2=$(json "['unavailable_ms']" <<<"$or2_json")
restore_ms=$(json "['restore_ms']" <<<"$or2_json")
terminated=$(json "['terminated_sessions']" <<<"$or2_json")
echo "unavailable: $unavail1 ms, $unavail2 ms; sessions terminated: $terminated" >&2

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.1f %%", (a / b - 1) * 100 }'; }
within() { awk -v a="$1" -v b="$2" 'BEGIN { print ((a <= b * 1.10) ? "yes" : "no") }'; }
cores=$(nproc)
pgver=$(sql "SHOW server_version")
date_utc=$(date -u +%Y-%m-%d)

section=$(cat <<EOF
<!-- bench-backup:start -->
## Backup and restore (\`deploy-rollback\`)

Command: \`scripts/bench-backup.sh\` ($date_utc; $cores cores; PostgreSQL $pgver, the
throwaway test cluster of \`scripts/ensure-postgres.sh\`, which runs with \`fsync=off\`).
Data: \`pgbench -i -s $SCALE\`, $size_pretty on disk ($rows rows in \`pgbench_accounts\`);
database only (no filestore), so both sides do the same work. Wall times: best of three backups and
of two restores per side, run alternately. Target: within 10 % of plain \`pg_dump\`/\`pg_restore\`.

| operation | plain | deploy-rollback | difference | within 10 % |
|---|---|---|---|---|
| backup: \`pg_dump -Fc\` to a file vs \`BackupStore::create\` (streamed dump + SHA-256 + \`pg_restore --list\` + manifest + atomic rename) | $(wall "$plain_b") s | $(wall "$ours_b") s | $(ratio "$(wall "$ours_b")" "$(wall "$plain_b")") | $(within "$(wall "$ours_b")" "$(wall "$plain_b")") |
| restore: \`dropdb\` + \`createdb\` + \`pg_restore\` vs \`restore()\` (checksum verify + \`createdb\` + \`pg_restore\` + table check and probe + swap) | $(wall "$plain_r") s | $(wall "$ours_r") s | $(ratio "$(wall "$ours_r")" "$(wall "$plain_r")") | $(within "$(wall "$ours_r")" "$(wall "$plain_r")") |

Client-side CPU time (user + system of the command and its children, which other load on
the machine does not inflate) of the same runs: backup $(cpu "$plain_b") s plain vs $(cpu "$ours_b") s ours;
restore $(cpu "$plain_r") s plain vs $(cpu "$ours_r") s ours (the server's own work is not included).

Dump sizes: plain $plain_dump_bytes bytes, ours $ours_dump_bytes bytes (same \`pg_dump\`, same compression).

| live database unavailable during a restore | time |
|---|---|
| drop-and-restore (\`dropdb\` + \`createdb\` + \`pg_restore\` under the live name) | $(wall "$plain_r") s |
| \`restore()\` rename swap (\`ALLOW_CONNECTIONS false\`, terminate the $terminated open session(s), two \`ALTER DATABASE ... RENAME\`; target under 1 s) | $unavail1 ms and $unavail2 ms |

With \`restore()\` the live database keeps serving during the $(awk -v m="$restore_ms" 'BEGIN { printf "%.1f", m / 1000 }') s of restore and verification;
the replaced database is kept under \`<live>_replaced_<timestamp>\`.
<!-- bench-backup:end -->
EOF
)

step "writing BENCHMARKS.md"
BENCH_SECTION="$section" python3 - <<'PY'
import os, re
path = "BENCHMARKS.md"
section = os.environ["BENCH_SECTION"].strip() + "\n"
text = open(path).read() if os.path.exists(path) else "# Benchmarks\n\nMeasured figures, each section written by the script it names.\n"
pattern = re.compile(r"<!-- bench-backup:start -->.*?<!-- bench-backup:end -->\n?", re.S)
if pattern.search(text):
    text = pattern.sub(lambda _: section, text)
else:
    text = text.rstrip("\n") + "\n\n" + section
open(path, "w").write(text)
PY
printf '%s\n' "$section"
