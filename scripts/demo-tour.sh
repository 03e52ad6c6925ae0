#!/usr/bin/env bash
# The tour `scripts/demo.sh` runs where there is no Docker engine (and anyone may run):
#
# 1. `odoo-gate demo`: starts the built-in fake Odoo in-process and runs every gate of
#    the default plan against it (the main job: proving a deployed Odoo healthy).
# 2. A tour of the odoo-rpc binary against the odoo-fake server on a free loopback port:
#    version, health, login, create, search-read, and one error path.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

version=${ODOO_VERSION:-17.0}
step "building odoo-gate, odoo-fake and odoo-rpc (release)"
cargo build -q --release -p odoo-fixtures -p odoo-deploy --bin odoo-fake --bin odoo-rpc --bin odoo-gate

step "odoo-gate demo: every gate against a fake Odoo $version"
target/release/odoo-gate demo --odoo-version "$version"

step "odoo-rpc against odoo-fake"
mkdir -p target/demo
log=target/demo/odoo-fake.log
export DEMO_PASSWORD=admin
target/release/odoo-fake --listen 127.0.0.1:0 --odoo-version "$version" --db demo \
    --user admin --password-env DEMO_PASSWORD --release demo-blue >"$log" 2>&1 &
fake_pid=$!
trap 'kill "$fake_pid" 2>/dev/null || true' EXIT
url=$(wait_listening "$fake_pid" "$log")
step "fake Odoo $version listening on $url"

export ODOO_URL=$url ODOO_DB=demo ODOO_USER=admin ODOO_PASSWORD=admin
rpc() { printf '$ odoo-rpc %s\n' "$*" >&2; target/release/odoo-rpc "$@"; }
rpc version
rpc health --db-status
rpc db-list
rpc login
rpc call res.partner create '[{"name": "Demo Company", "is_company": true}]'
rpc search-read res.partner --domain '[["is_company", "=", true]]' --fields name,is_company --limit 5
rpc call ir.module.module search_read '[[["state", "=", "installed"]]]' --kwargs '{"fields": ["name", "state"]}'
step "an error path: a wrong password exits 1 with Odoo's error name"
set +e
ODOO_PASSWORD=wrong target/release/odoo-rpc login
code=$?
set -e
printf 'exit code %s\n' "$code" >&2
[ "$code" -eq 1 ] || die "expected exit code 1 for a wrong password, got $code"
step "demo finished"
