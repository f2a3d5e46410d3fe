#!/usr/bin/env bash
# The base images that servers shipped as npm and PyPI packages are built on,
# made from Debian packages so that no Docker Hub is needed (this machine
# cannot reach it, nor can an air-gapped site): mmdebstrap unpacks a minimal
# Debian system with the runtime in it, and the engine imports it.
#
#   mcp-runtime/node     Node.js 20 and npm        (Debian trixie's nodejs, npm)
#   mcp-runtime/python   Python 3.13 and venv      (Debian trixie's python3, python3-venv)
#
# Both have the system's CA bundle and a user `mcp` (uid 10001) for servers to
# run as. An image already present is kept; FORCE=1 builds it again.
# BASE_IMAGE_SUITE and DEBIAN_MIRROR name another suite or mirror.
set -euo pipefail
suite=${BASE_IMAGE_SUITE:-trixie}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

build() {
  local image=$1 packages=$2
  if [ -z "${FORCE:-}" ] && docker image inspect "$image" >/dev/null 2>&1; then
    echo "base-images: $image is present"
    return 0
  fi
  local work
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  echo "base-images: building $image from Debian $suite ($packages)"
  mmdebstrap --quiet --variant=minbase --include="ca-certificates,$packages" \
    --customize-hook='chroot "$1" useradd --uid 10001 --user-group --create-home --shell /usr/sbin/nologin mcp' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
    "$suite" "$work/rootfs.tar" "$mirror"
  docker import \
    --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8' \
    --change 'LABEL org.opencontainers.image.title=mcp-runtime-base' \
    --change "LABEL org.opencontainers.image.description=\"$image from Debian $suite packages\"" \
    --change 'CMD ["/bin/sh"]' \
    "$work/rootfs.tar" "$image:latest" >/dev/null
  echo "base-images: $image built ($(docker image inspect -f '{{.Size}}' "$image:latest") bytes)"
}

build mcp-runtime/node "nodejs,npm"
build mcp-runtime/python "python3,python3-venv"
