#!/usr/bin/env bash
# The package mirrors the tests serve npm and PyPI servers from, as sites run
# them: Verdaccio for npm, pypiserver for PyPI. The pinned test packages and
# their dependency trees are fetched once from the public indexes (through
# Verdaccio's uplink, and `pip download`); the tests then start both on
# loopback with no uplink (tests/support/package_mirrors.rs), so a test run
# reaches no registry. Fetched again only when the pinned list below changes.
set -euo pipefail
cd "$(dirname "$0")/.."

NPM_PACKAGES=("@modelcontextprotocol/server-everything@2026.8.31"
  # Real packages at versions with known advisories, for the OSV matcher's
  # end-to-end test: mkdirp 0.5.1 pins minimist 0.0.8 (GHSA-xvch-5gv4-984h);
  # jinja2-cli installs whichever jinja2 the index has, 3.1.2 (GHSA-h5c8-rqwp-cp95).
  "mkdirp@0.5.1")
PYPI_PACKAGES=("mcp-server-time==2026.10.19" "jinja2-cli==0.8.2" "jinja2==3.1.2")
# The wheels the base image's Python (3.13, mcp-runtime/python) installs.
PYPI_TARGET=(--only-binary=:all: --python-version 3.13 --implementation cp --abi cp313
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 --platform any)

VERDACCIO_VERSION=6.0.5      # runs on Node 20 (the newest needs Node 22)
PYPISERVER_VERSION=2.4.2
tools=.venv/package-mirror-tools
mirror=.venv/package-mirror
verdaccio="$tools/node_modules/verdaccio/bin/verdaccio"

[ -f "$verdaccio" ] || npm install --silent --no-fund --no-audit --prefix "$tools" "verdaccio@$VERDACCIO_VERSION"
if [ ! -x "$tools/py/bin/pypi-server" ]; then
  python3 -m venv "$tools/py"
  "$tools/py/bin/pip" install -q "pypiserver==$PYPISERVER_VERSION"
fi

pinned=$(printf '%s\n' "${NPM_PACKAGES[@]}" "${PYPI_PACKAGES[@]}" "${PYPI_TARGET[@]}")
if [ -f "$mirror/pinned" ] && [ "$(cat "$mirror/pinned")" = "$pinned" ]; then
  echo "package-mirrors: the pinned packages are mirrored"
  exit 0
fi
echo "package-mirrors: fetching the pinned packages and their dependencies"
rm -rf "$mirror"
mkdir -p "$mirror/npm" "$mirror/pypi"
work=$(mktemp -d)
trap 'kill "$(cat "$work/pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$work"' EXIT

# npm: Verdaccio with the public registry as its uplink keeps every package
# an install asks for (metadata and tarballs) in its storage.
cat > "$work/config.yaml" <<EOF
storage: $PWD/$mirror/npm
uplinks:
  npmjs:
    url: https://registry.npmjs.org/
    timeout: 60s
packages:
  '**':
    access: \$all
    proxy: npmjs
log: { type: stdout, format: pretty, level: warn }
EOF
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# Node does not read the system CA bundle by itself (the index may be behind a TLS-inspecting proxy).
NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt \
  node "$verdaccio" --config "$work/config.yaml" --listen "127.0.0.1:$port" >"$work/verdaccio.log" 2>&1 &
echo $! > "$work/pid"
for _ in $(seq 50); do curl -sf "127.0.0.1:$port/-/ping" >/dev/null && break; sleep 0.2; done
# A cache of its own: every tarball is fetched through the mirror.
npm install --silent --no-fund --no-audit --prefix "$work/install" --cache "$work/cache" \
  --registry "http://127.0.0.1:$port" "${NPM_PACKAGES[@]}"

# PyPI: the wheels, with their dependencies, into the directory pypiserver serves.
python3 -m pip download -q --dest "$mirror/pypi" "${PYPI_TARGET[@]}" "${PYPI_PACKAGES[@]}"

echo "$pinned" > "$mirror/pinned"
echo "package-mirrors: $(du -sh "$mirror" | cut -f1) mirrored"
