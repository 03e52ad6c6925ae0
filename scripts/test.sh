#!/usr/bin/env bash
# The README's test command: everything CI checks, on a fresh clone.
#
# It installs and starts what the suite needs when it is missing (Debian's nginx,
# haproxy, docker-registry and postgresql, a PostgreSQL cluster on 127.0.0.1, a Python venv under target/;
# it checks that the Docker engine answers), then runs:
#   1. cargo fmt --check
#   2. cargo clippy --all-targets -D warnings
#   3. cargo test (unit, integration and doc tests of every crate)
#   4. the fidelity check: Python Odoo clients written by others (OdooRPC,
#      odoo-client-lib), used unchanged, against the odoo-fake binary, with its records
#      in memory and then in PostgreSQL.
# Exit status: 0 when everything passed, non-zero otherwise.
#
# `scripts/test.sh --quick` is the developers' loop: fmt, clippy, the unit and doc tests
# of every crate, the tests of odoo-rpc and odoo-fixtures (which need only the
# in-process fake; not the fake's database side on PostgreSQL) and the orchestrator's decisions on its in-memory backend; nothing is
# installed or started, no Docker, proxy or PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

command -v cargo >/dev/null || die "cargo is missing: install Rust with rustup (https://rustup.rs)"

if [ "${1:-}" = "--quick" ]; then
    step "cargo fmt --check"
    cargo fmt --all -- --check
    step "cargo clippy --all-targets -- -D warnings"
    cargo clippy --workspace --all-targets --locked -- -D warnings
    step "unit and doc tests; odoo-rpc and odoo-fixtures against the in-process fake; the orchestrator's decisions in memory; the addon checks on their corpus"
    cargo test --workspace --locked --lib --bins
    cargo test --workspace --locked --doc
    # odoo-fixtures' tests but the ones on PostgreSQL (odoo_db_pg).
    fixture_tests=()
    for file in fixtures/tests/*.rs; do
        name=$(basename "$file" .rs)
        [ "$name" = odoo_db_pg ] || fixture_tests+=(--test "$name")
    done
    cargo test --locked -p odoo-rpc --tests
    cargo test --locked -p odoo-fixtures "${fixture_tests[@]}"
    cargo test --locked -p deploy-bluegreen --test decisions
    cargo test --locked -p deploy-validate --tests
    cargo test --locked -p deploy-notify --tests
    printf '\nquick checks passed (the whole suite: scripts/test.sh)\n' >&2
    exit 0
fi

step "components"
# C toolchain pieces for git2's libgit2/libssh2 (Debian's packages).
apt_ensure pkg-config libssl-dev
# nginx and HAProxy (Debian's packages) for the deploy-bluegreen tests; each test starts
# its own instances on loopback ports in temp dirs.
bash scripts/ensure-proxies.sh
# Debian's docker-registry on loopback for the pull tests (each starts its own).
bash scripts/ensure-registry.sh
# A throwaway PostgreSQL cluster on 127.0.0.1 for the database gate and backup tests.
pg_env=$(bash scripts/ensure-postgres.sh)
eval "$pg_env"
# The Docker engine runs the blue and green slots; nothing can be pulled, so the tests
# build their image (odoo-fake, static, FROM scratch) through scripts/build-fake-image.sh.
command -v docker >/dev/null || die "docker is missing: install Docker Engine and start it"
docker info >/dev/null 2>&1 || die "the Docker engine does not answer: start it (dockerd)"
# Python Odoo clients written by others, for the fidelity check at the end.
PY=$(py_clients_ensure)
# The addon checksum test compares ours with click-odoo-contrib's, run by this python.
export DEPLOY_TEST_PYTHON="$PY"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test (unit, integration, doc tests)"
cargo test --workspace --locked

step "fidelity: Python Odoo clients against odoo-fake"
cargo build --locked -q -p odoo-fixtures --bin odoo-fake
fake_pid=
trap '[ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null || true' EXIT
for version in 16.0 17.0 18.0 19.0; do
    log=target/odoo-fake-$version.log
    ODOO_FAKE_PASSWORD=admin target/debug/odoo-fake --listen 127.0.0.1:0 --odoo-version "$version" \
        --db demo --user admin --password-env ODOO_FAKE_PASSWORD >"$log" 2>&1 &
    fake_pid=$!
    url=$(wait_listening "$fake_pid" "$log")
    "$PY" scripts/python-clients-smoke.py "$url" || die "Python clients failed against the fake Odoo $version"
    kill "$fake_pid" 2>/dev/null || true
    wait "$fake_pid" 2>/dev/null || true
    fake_pid=
done
# The same clients against the fake serving from PostgreSQL: records in Odoo's tables,
# the admin's password checked against its pbkdf2 hash. With the release build (the one
# the tests built for the fake image: cached): Odoo's 600,000 rounds take about 5 s
# unoptimized (sha2's #[inline] code is compiled in the calling crate), at the edge of a
# client's 5 s timeout, where Odoo takes a fraction of a second.
RUSTFLAGS='-C target-feature=+crt-static' cargo build --locked --release --quiet \
    -p odoo-fixtures --bin odoo-fake --target x86_64-unknown-linux-gnu --target-dir target/static
fake_release=target/static/x86_64-unknown-linux-gnu/release/odoo-fake
pg_parts
for version in 16.0 17.0 18.0 19.0; do
    db=fidelity_pg_${version%%.*}
    psql "$DEPLOY_TEST_PG" -q -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
    log=target/odoo-fake-pg-$version.log
    "$fake_release" --listen 127.0.0.1:0 --odoo-version "$version" -d "$db" \
        --db_host "$pg_host" --db_port "$pg_port" --db_user "$pg_user" \
        --data-dir target/fidelity-data --max-cron-threads 0 >"$log" 2>&1 &
    fake_pid=$!
    url=$(wait_listening "$fake_pid" "$log" 1200)
    "$PY" scripts/python-clients-smoke.py "$url" --db "$db" \
        || die "Python clients failed against the fake Odoo $version serving from PostgreSQL"
    kill "$fake_pid" 2>/dev/null || true
    wait "$fake_pid" 2>/dev/null || true
    fake_pid=
    psql "$DEPLOY_TEST_PG" -q -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
done
printf '\nall checks passed\n' >&2
