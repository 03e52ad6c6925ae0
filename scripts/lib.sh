# Shared helpers for the scripts in this folder. Source it; do not run it.
# shellcheck shell=bash

# Print a step heading on stderr, so stdout stays free for results.
step() { printf '\n==> %s\n' "$*" >&2; }

# Fail with a message that names the missing piece and how to get it.
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Run apt-get install for the named Debian packages when any of them is missing.
# Works as root (CI and the development machines); otherwise tells what to install.
apt_ensure() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        die "missing Debian packages: ${missing[*]} (install them with: sudo apt-get install ${missing[*]})"
    fi
    step "installing Debian packages: ${missing[*]}"
    if [ -z "${APT_UPDATED:-}" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || die "apt-get update failed"
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 \
        || die "apt-get install ${missing[*]} failed"
}

# As apt_ensure, without starting the packages' system services (a temporary
# policy-rc.d forbids it): the tests start their own instances on loopback ports.
apt_ensure_no_start() {
    local policy=/usr/sbin/policy-rc.d created_policy= rc=0
    if [ "$(id -u)" -eq 0 ] && [ ! -e "$policy" ]; then
        # Exit code 101: "action forbidden".
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && created_policy=1
    fi
    ( apt_ensure "$@" ) || rc=$?
    [ -n "$created_policy" ] && rm -f "$policy"
    [ "$rc" -eq 0 ] || exit "$rc"
}

# Python clients written by others (OdooRPC, odoo-client-lib), installed from PyPI into a
# throwaway venv under target/, used unchanged against our fake Odoo; and
# click-odoo-contrib (without its dependencies: only its addon checksum is used), whose
# checksums ours must equal. Prints the venv's python.
PY_CLIENTS_VENV="${PY_CLIENTS_VENV:-$PWD/target/pyclients}"
py_clients_ensure() {
    if [ ! -x "$PY_CLIENTS_VENV/bin/python" ] || ! "$PY_CLIENTS_VENV/bin/python" -c 'import odoorpc, odoolib, click_odoo_contrib._addon_hash' 2>/dev/null; then
        command -v python3 >/dev/null || die "python3 is missing (apt-get install python3 python3-venv)"
        step "installing OdooRPC and odoo-client-lib into $PY_CLIENTS_VENV"
        python3 -m venv "$PY_CLIENTS_VENV" >&2 || die "python3 -m venv failed (apt-get install python3-venv)"
        "$PY_CLIENTS_VENV/bin/pip" install -q --disable-pip-version-check \
            'OdooRPC==0.10.1' 'odoo-client-lib==2.0.1' >&2 || die "pip install of the Python Odoo clients failed"
        "$PY_CLIENTS_VENV/bin/pip" install -q --disable-pip-version-check --no-deps \
            'click-odoo-contrib==1.24' >&2 || die "pip install of click-odoo-contrib failed"
    fi
    printf '%s\n' "$PY_CLIENTS_VENV/bin/python"
}

# Wait until a background process (started with its stdout in LOGFILE) prints
# "listening on URL", then echo URL. Usage: wait_listening PID LOGFILE [TRIES of 50 ms]
wait_listening() {
    local pid=$1 log=$2 tries=${3:-200} i
    for i in $(seq 1 "$tries"); do
        if grep -q '^listening on ' "$log" 2>/dev/null; then
            sed -n 's/^listening on //p' "$log" | head -n 1
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; die "process $pid exited before listening (log: $log)"; }
        sleep 0.05
    done
    cat "$log" >&2
    die "process $pid did not start listening within $((tries / 20)) s (log: $log)"
}

# Put SECTION (text that starts with `<!-- NAME:start -->` and ends with
# `<!-- NAME:end -->`) into BENCHMARKS.md in place of that section, or at the end when
# it is not there yet. Usage: write_bench_section NAME "$SECTION"
write_bench_section() {
    [ -f BENCHMARKS.md ] || printf '# Benchmarks\n\nMeasured figures, each section written by the script it names.\n' > BENCHMARKS.md
    NAME="$1" SECTION="$2" python3 - <<'PY'
import os, re
path = "BENCHMARKS.md"
text = open(path).read()
name, section = os.environ["NAME"], os.environ["SECTION"]
pattern = re.compile(rf"<!-- {re.escape(name)}:start -->.*?<!-- {re.escape(name)}:end -->", re.S)
if pattern.search(text):
    text = pattern.sub(lambda _: section, text)
else:
    text = text.rstrip("\n") + "\n\n" + section + "\n"
open(path, "w").write(text)
PY
}

# The test cluster's parts from DEPLOY_TEST_PG (postgres://user@host:port/db), as
# pg_user, pg_host and pg_port. Usage: pg_parts
pg_parts() {
    pg_user=${DEPLOY_TEST_PG#postgres://}; pg_user=${pg_user%%@*}
    local hostport=${DEPLOY_TEST_PG#*@}; hostport=${hostport%%/*}
    pg_host=${hostport%%:*}; pg_port=${hostport##*:}
}
