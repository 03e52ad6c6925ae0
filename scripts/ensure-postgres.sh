#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the deploy-rollback tests and benchmarks.
#
# Idempotent: installs Debian's `postgresql` package when missing (as root), creates a
# cluster in $PG_TEST_DIR (default: <repo>/target/pg) owned by the `postgres` OS user,
# listening only on 127.0.0.1:$PG_TEST_PORT (default 55432) with trust authentication
# for loopback, and starts it when it is not running. It then prints the line the test
# command evaluates:
#
#     export DEPLOY_TEST_PG=postgres://postgres@127.0.0.1:55432/postgres
#
# Usage:
#     eval "$(scripts/ensure-postgres.sh)"     # run it (stdout: only export lines)
#     . scripts/ensure-postgres.sh             # or source it: exports into this shell
#     scripts/ensure-postgres.sh --stop        # stop the cluster
#
# The cluster trades durability for speed (fsync=off, synchronous_commit=off): it is
# for tests only and never holds data worth keeping. Logs: $PG_TEST_DIR/server.log.

_ensure_pg_main() {
    set -euo pipefail
    local repo
    repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    # shellcheck source=scripts/lib.sh
    . "$repo/scripts/lib.sh"

    local port=${PG_TEST_PORT:-55432}
    local dir=${PG_TEST_DIR:-$repo/target/pg}
    local data=$dir/data
    local sock=$dir/sock
    local log=$dir/server.log
    local url="postgres://postgres@127.0.0.1:$port/postgres"

    # The server binaries: Debian keeps them off PATH, under /usr/lib/postgresql/<major>/bin.
    local bin
    bin=$(find_pg_bin) || {
        apt_ensure postgresql
        bin=$(find_pg_bin) || die "postgresql is installed but no /usr/lib/postgresql/*/bin/postgres was found"
    }
    id postgres >/dev/null 2>&1 || die "the postgres OS user is missing (it comes with Debian's postgresql package)"

    as_pg() {
        if [ "$(id -un)" = postgres ]; then
            "$@"
        elif [ "$(id -u)" -eq 0 ]; then
            if command -v runuser >/dev/null; then
                runuser -u postgres -- "$@"
            else
                su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
            fi
        else
            die "run as root (or as the postgres user) so the test cluster can be created and started"
        fi
    }

    if [ "${1:-}" = "--stop" ]; then
        if [ -f "$data/PG_VERSION" ]; then
            as_pg "$bin/pg_ctl" -D "$data" -m fast -w stop >&2 || true
        fi
        return 0
    fi

    # The cluster directory must be owned by postgres, and every parent traversable by it.
    mkdir -p "$dir"
    local p=$dir
    while [ "$p" != / ]; do
        if [ "$(id -u)" -eq 0 ] && ! as_pg test -x "$p"; then
            chmod o+x "$p"
        fi
        p=$(dirname "$p")
    done
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres:postgres "$dir"
        chmod 700 "$dir"
    fi

    if [ ! -f "$data/PG_VERSION" ]; then
        step "creating a throwaway PostgreSQL cluster in $data"
        as_pg mkdir -p "$data" "$sock"
        as_pg "$bin/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >&2 \
            || as_pg "$bin/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --locale=C >&2 \
            || die "initdb failed"
        as_pg sh -c "cat >> '$data/postgresql.conf'" <<EOF

# --- scripts/ensure-postgres.sh: throwaway test cluster ---
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sock'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
shared_buffers = 256MB
maintenance_work_mem = 256MB
max_wal_size = 4GB
log_min_messages = warning
EOF
        # Loopback only, trust; nothing else may connect.
        as_pg sh -c "printf '%s\n' 'local all all trust' 'host all all 127.0.0.1/32 trust' > '$data/pg_hba.conf'"
    fi
    as_pg mkdir -p "$sock"

    if ! as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        if port_busy "$port"; then
            die "port $port on 127.0.0.1 is in use by something else: set PG_TEST_PORT to a free port"
        fi
        step "starting PostgreSQL on 127.0.0.1:$port (log: $log)"
        as_pg touch "$log"
        as_pg "$bin/pg_ctl" -D "$data" -l "$log" -w -t 60 -o "-p $port" start >&2 \
            || { tail -n 30 "$log" >&2 || true; die "PostgreSQL did not start (log: $log)"; }
    fi
    as_pg "$bin/pg_isready" -h 127.0.0.1 -p "$port" -t 30 >/dev/null \
        || die "PostgreSQL on 127.0.0.1:$port does not accept connections (log: $log)"

    printf 'export DEPLOY_TEST_PG=%s\n' "$url"
    printf 'export DEPLOY_TEST_PG_BIN=%s\n' "$bin"
    # The Unix socket directory: containers reach the cluster through it, mounted at
    # /var/run/postgresql, with no network in between.
    printf 'export DEPLOY_TEST_PG_SOCKET=%s\n' "$sock"
}

# Newest installed server's bin directory.
find_pg_bin() {
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n -r); do
        if [ -x "$d/postgres" ] && [ -x "$d/initdb" ]; then
            printf '%s\n' "$d"
            return 0
        fi
    done
    return 1
}

# Whether something listens on 127.0.0.1:PORT.
port_busy() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

if [ "${BASH_SOURCE[0]}" != "$0" ]; then
    # Sourced: run in a subshell (so `set -e` and `exit` cannot end the caller's shell),
    # then export the variables here.
    if _ensure_pg_out=$( (_ensure_pg_main "$@") ); then
        eval "$_ensure_pg_out"
        unset _ensure_pg_out
    else
        unset _ensure_pg_out
        return 1
    fi
else
    _ensure_pg_main "$@"
fi
