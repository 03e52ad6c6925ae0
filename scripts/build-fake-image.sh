#!/usr/bin/env bash
# Builds the Docker image the deploy-bluegreen tests run as blue and green slots: the
# `odoo-fake` binary (package odoo-fixtures), linked statically, in a `FROM scratch`
# image. No registry is needed: nothing is pulled.
#
# Idempotent: the image carries the binary's sha256 as a label and is rebuilt only when
# the binary changed. Prints the image tag on stdout (and nothing else there).
#
# Usage: scripts/build-fake-image.sh [TAG]     (default: $ODOO_FAKE_IMAGE or odoo-fake:test)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

tag=${1:-${ODOO_FAKE_IMAGE:-odoo-fake:test}}
target=x86_64-unknown-linux-gnu
target_dir=target/static

command -v docker >/dev/null || die "docker is missing: install Docker Engine (apt-get install docker.io) and start it"
docker info >/dev/null 2>&1 || die "the Docker engine does not answer (start it: dockerd, or service docker start)"

# Static glibc (no musl target can be installed here); a separate target dir keeps the
# normal builds' artifacts valid.
step "building odoo-fake (static, release) into $target_dir"
RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --quiet \
    -p odoo-fixtures --bin odoo-fake --target "$target" --target-dir "$target_dir" >&2 \
    || die "cargo build of odoo-fake failed"
binary=$target_dir/$target/release/odoo-fake
[ -x "$binary" ] || die "no binary at $binary"
if ldd "$binary" 2>&1 | grep -q '=>'; then
    die "$binary is dynamically linked; it cannot run in a FROM scratch image"
fi
# The image's layout is the official Odoo image's: addons under /mnt/extra-addons, data
# under /var/lib/odoo (both volumes), port 8069, and `odoo` as the command a one-off
# container is given (`docker run IMAGE odoo -d DB -u all --stop-after-init`: the fake
# takes a leading `odoo` as the official entrypoint does). HOST, PORT, USER, PASSWORD in
# the environment name the database server, as for the official image.
dockerfile=$(cat <<'DOCKERFILE'
FROM scratch
COPY odoo-fake /odoo-fake
COPY mnt /mnt
COPY var /var
VOLUME ["/var/lib/odoo", "/mnt/extra-addons"]
EXPOSE 8069 8072
# The binary reads its command line as the official image's entrypoint.sh does.
ENV ODOO_FAKE_ENTRYPOINT=1
ENTRYPOINT ["/odoo-fake"]
CMD ["--listen", "0.0.0.0:8069"]
DOCKERFILE
)
# The label covers the binary and the Dockerfile: a change of either rebuilds.
sha=$( (sha256sum "$binary" | cut -d' ' -f1; printf '%s' "$dockerfile") | sha256sum | cut -d' ' -f1)

current=$(docker image inspect "$tag" --format '{{ index .Config.Labels "com.deployment.test.binary-sha256" }}' 2>/dev/null || true)
if [ "$current" = "$sha" ]; then
    step "image $tag is up to date"
    printf '%s\n' "$tag"
    exit 0
fi

old_id=$(docker image inspect "$tag" --format '{{.Id}}' 2>/dev/null || true)
step "building image $tag"
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "$binary" "$context/odoo-fake"
mkdir -p "$context/mnt/extra-addons" "$context/var/lib/odoo"
touch "$context/mnt/extra-addons/.keep" "$context/var/lib/odoo/.keep"
printf '%s\nLABEL com.deployment.test.binary-sha256="%s"\n' "$dockerfile" "$sha" >"$context/Dockerfile"
# The classic builder: the engine may be older than BuildKit-only clients expect, and
# no buildx plugin is needed. The context goes as a tar on stdin.
tar -C "$context" -cf - . | DOCKER_BUILDKIT=0 docker build --quiet -t "$tag" - >&2 \
    || die "docker build of $tag failed"
# The previous build, now untagged, is of no use to anyone.
if [ -n "$old_id" ] && [ "$(docker image inspect "$old_id" --format '{{len .RepoTags}}' 2>/dev/null)" = 0 ]; then
    docker rmi "$old_id" >/dev/null 2>&1 || true
fi
printf '%s\n' "$tag"
