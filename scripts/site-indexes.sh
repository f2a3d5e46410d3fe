#!/usr/bin/env bash
# Prints the `export`s package builds need on this site to reach the public
# indexes (npm, PyPI): the system's CA bundle, which holds the CA of a
# TLS-inspecting proxy if the site has one, and the addresses the index hosts
# resolve to when those are not public (such a proxy's). `make run` and
# `make check-registries` eval it; a variable already set is left alone, and a
# site whose indexes resolve to public addresses gets no index_addresses.
set -euo pipefail
if [ -z "${RUNTIME_BUILDERS_CA_BUNDLE+set}" ] && [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  echo "export RUNTIME_BUILDERS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt"
fi
if [ -z "${RUNTIME_BUILDERS_INDEX_ADDRESSES+set}" ]; then
  resolved=$(for host in registry.npmjs.org pypi.org files.pythonhosted.org; do
    getent ahostsv4 "$host" | awk '{print $1}' || true
  done | sort -u)
  private=$(printf '%s\n' $resolved | python3 -c '
import ipaddress, sys
print(",".join(f"{a}/32" for a in sys.stdin.read().split() if not ipaddress.ip_address(a).is_global))')
  if [ -n "$private" ]; then
    echo "export RUNTIME_BUILDERS_INDEX_ADDRESSES=$private"
  fi
fi
