#!/usr/bin/env bash
# What `make run` and `make test` need on a fresh machine, installed only when
# missing, so running it again costs a few seconds. `.ci/run` gets it through
# `make test`.
#
#   scripts/setup.sh run          the toolchain's wasm target, and the base images when an engine answers
#                                 (says how to start one if none does)
#   scripts/setup.sh test         everything the suite uses: system packages, Python 3.12, a running
#                                 engine, the base images, the package mirrors' pinned packages
#   scripts/setup.sh base-images  an engine and the base images (scripts/base-images.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-test}
export DEBIAN_FRONTEND=noninteractive
# No service-restart prompts or notices from apt hooks (needrestart) in a script.
export NEEDRESTART_SUSPEND=1

rust_toolchain() {
  # rust-toolchain.toml names the target and components; this installs them
  # where an older rustup does not do it by itself.
  rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
  for component in clippy rustfmt; do
    rustup component list --installed | grep -q "^$component" || rustup component add "$component"
  done
}

engine_answers() { docker info >/dev/null 2>&1; }

# What the host links: the system's TLS (reqwest's native-tls), found through pkg-config.
build_packages() {
  local missing=()
  command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
  pkg-config --exists openssl 2>/dev/null || missing+=(libssl-dev)
  install_missing "${missing[@]}"
}

install_missing() {
  if [ $# -gt 0 ]; then
    echo "setup: installing $*"
    apt-get update -qq
    apt-get install -y -qq "$@" >/dev/null
  fi
}

engine_packages() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v iptables >/dev/null 2>&1 || missing+=(iptables)
  install_missing "${missing[@]}"
}

system_packages() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v iptables >/dev/null 2>&1 || missing+=(iptables)
  command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
  /usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1 || missing+=(python3-aiosmtpd)
  command -v git >/dev/null 2>&1 || missing+=(git)
  [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
  command -v htpasswd >/dev/null 2>&1 || missing+=(apache2-utils)
  # `ip netns` and `nsenter`: the engine-restart test runs a dockerd of its own in a namespace.
  command -v ss >/dev/null 2>&1 || missing+=(iproute2)
  command -v nsenter >/dev/null 2>&1 || missing+=(util-linux)
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
  # The admin UI's tests drive headless Chromium through chromedriver.
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
  # The guides' commands use jq (tests/guides.rs runs them).
  command -v jq >/dev/null 2>&1 || missing+=(jq)
  # componentize-js, which builds the JavaScript rules, and Verdaccio (the
  # tests' npm mirror) come from npm.
  command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
  # Venvs: schemathesis, the rules' tools, pypiserver (the tests' PyPI mirror).
  /usr/bin/python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
  install_missing "${missing[@]}"
}

python312() {
  # ContextForge 1.1.0 (the gateway tests register with it) needs Python 3.12.
  if ! ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12.* >/dev/null 2>&1; then
    echo "setup: installing Python 3.12 with pyenv for ContextForge"
    pyenv install -s 3.12
  fi
}

start_engine() {
  engine_answers && return 0
  echo "setup: no Docker engine answers on /var/run/docker.sock: starting dockerd (log in /tmp/dockerd.log)"
  # Every deployment gets its own network: /26s instead of the default /16s
  # leave room for the 500 that `BENCH_SCALE=500 make bench` runs at once.
  nohup dockerd --default-address-pool base=172.18.0.0/16,size=26 >/tmp/dockerd.log 2>&1 &
  for _ in $(seq 60); do engine_answers && return 0; sleep 1; done
  echo "setup: dockerd did not start:"; tail -n 40 /tmp/dockerd.log; exit 1
}

case "$mode" in
  run)
    build_packages
    rust_toolchain
    if engine_answers; then
      command -v mmdebstrap >/dev/null 2>&1 || install_missing mmdebstrap
      scripts/base-images.sh
    else
      echo "setup: no container engine answers on /var/run/docker.sock; the host starts without one and"
      echo "       reports the docker backend unavailable until one does. To start one: make engine"
    fi
    ;;
  base-images)
    engine_packages
    command -v mmdebstrap >/dev/null 2>&1 || install_missing mmdebstrap
    start_engine
    scripts/base-images.sh
    ;;
  engine)
    engine_packages
    start_engine
    ;;
  test)
    system_packages
    build_packages
    rust_toolchain
    python312
    start_engine
    scripts/base-images.sh
    scripts/package-mirrors.sh
    ;;
  *)
    echo "usage: $0 run|engine|test|base-images" >&2; exit 2
    ;;
esac
