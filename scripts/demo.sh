#!/usr/bin/env bash
# The README's demo command: the main job on an embedded default.
#
# For HAProxy, then nginx (reload-free): `odoo-bluegreen init` writes a stack and the
# proxy's configuration into target/demo/<proxy>; the proxy starts from that file on a
# loopback port; release demo-1 (the fake Odoo image, which like a stock Odoo image
# sends no release header) is deployed; a keep-alive load goes through the proxy while
# release demo-2 is deployed and then rolled back; `status` and the history are shown;
# the load's count of requests sent and failed ends it. Everything it started (proxies,
# containers, the load) is stopped when it ends or is interrupted.
#
# Without a Docker engine it says so in one line and runs the gate and RPC tour
# (scripts/demo-tour.sh) instead.
#
# Settings (for the test that runs this script): DEMO_BIN_DIR, a directory holding
# built odoo-bluegreen and odoo-rollback (default: a release build now); DEMO_IMAGE, the
# fake Odoo image (default: scripts/build-fake-image.sh); DEMO_PROXIES (default
# "haproxy nginx").
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
    printf 'no Docker engine answers here: running the gate and RPC tour instead of the deploy demo\n' >&2
    exec bash scripts/demo-tour.sh
fi

started=$(date +%s)
bin=${DEMO_BIN_DIR:-}
if [ -z "$bin" ]; then
    step "building odoo-bluegreen and odoo-rollback (release)"
    cargo build -q --release -p odoo-deploy --bin odoo-bluegreen --bin odoo-rollback
    bin=target/release
fi
bin=$(cd "$bin" && pwd)
image=${DEMO_IMAGE:-}
if [ -z "$image" ]; then
    step "building the fake Odoo image"
    image=$(bash scripts/build-fake-image.sh)
fi
for p in ${DEMO_PROXIES:-haproxy nginx}; do
    command -v "$p" >/dev/null || bash scripts/ensure-proxies.sh
done
# Two release tags of one image: the release label is the tag.
docker tag "$image" odoo-fake:demo-1
docker tag "$image" odoo-fake:demo-2
built=$(date +%s)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

proxy_pid= load_pid= stack=
cleanup() {
    [ -n "$load_pid" ] && kill "$load_pid" 2>/dev/null || true
    [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null || true
    if [ -n "$stack" ]; then
        ids=$(docker ps -aq --filter "label=com.deployment.stack=$stack" 2>/dev/null || true)
        [ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1 || true
    fi
    load_pid= proxy_pid=
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

bg() { "$bin/odoo-bluegreen" --config "$dir/stack.toml" "$@"; }
show() { printf '\n$ odoo-bluegreen %s\n' "$*" >&2; bg "$@"; }

summary=()
for proxy in ${DEMO_PROXIES:-haproxy nginx}; do
    phase_started=$(date +%s)
    dir=$PWD/target/demo/$proxy
    rm -rf "$dir"
    mkdir -p "$dir"
    chmod 755 "$dir"  # nginx's workers read the marker files under it
    stack=demo-$proxy
    listen=$(free_port) blue=$(free_port) green=$(free_port)
    step "$proxy: odoo-bluegreen init --stack $stack --proxy $proxy"
    "$bin/odoo-bluegreen" init --stack "$stack" --proxy "$proxy" --image odoo-fake:demo-1 \
        --dir "$dir" --listen "127.0.0.1:$listen" --blue-port "$blue" --green-port "$green"
    # A demo keeps the old slot for the rollback and waits for nothing.
    sed -i 's/^drain_timeout = "30s"/drain_timeout = "2s"/; s/^stop_grace = "30s"/stop_grace = "2s"/' "$dir/stack.toml"
    # Leftovers of an interrupted earlier run.
    ids=$(docker ps -aq --filter "label=com.deployment.stack=$stack")
    [ -n "$ids" ] && docker rm -f $ids >/dev/null

    step "$proxy: starting it with the generated configuration on 127.0.0.1:$listen"
    case $proxy in
        haproxy) haproxy -db -f "$dir/haproxy/haproxy.cfg" >"$dir/proxy.log" 2>&1 & ;;
        nginx) nginx -p "$dir/nginx" -c "$dir/nginx/nginx.conf" -e stderr -g 'daemon off;' >"$dir/proxy.log" 2>&1 & ;;
    esac
    proxy_pid=$!
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$listen") 2>/dev/null && break
        kill -0 "$proxy_pid" 2>/dev/null || { cat "$dir/proxy.log" >&2; die "$proxy exited"; }
        sleep 0.1
    done

    show deploy --image odoo-fake:demo-1 --rollback-window keep
    step "$proxy: a keep-alive load through the proxy (4 connections)"
    rm -f "$dir/stop-load"
    python3 scripts/demo-load.py "http://127.0.0.1:$listen/web/health" "$dir/stop-load" 4 120 >"$dir/load.txt" &
    load_pid=$!
    sleep 1
    show deploy --image odoo-fake:demo-2 --rollback-window keep
    sleep 1
    show rollback
    sleep 1
    touch "$dir/stop-load"
    wait "$load_pid" || die "the load generator failed"
    load_pid=
    show status
    printf '\n$ odoo-rollback history --history %s --stack %s\n' "$dir/history" "$stack" >&2
    "$bin/odoo-rollback" history --history "$dir/history" --stack "$stack"
    read -r _ sent _ failed _ slots <"$dir/load.txt"
    took=$(( $(date +%s) - phase_started ))
    line="$proxy: deploy demo-1, deploy demo-2, rollback to demo-1 under load: $failed failed of $sent requests ($slots), ${took} s"
    summary+=("$line")
    cleanup
    stack=
    [ "$failed" = 0 ] || die "$line"
done

step "demo finished in $(( $(date +%s) - started )) s ($(( $(date +%s) - built )) s after the build)"
for line in "${summary[@]}"; do
    printf '%s\n' "$line"
done
