#!/usr/bin/env bash
# Install what orderbus needs to build, run and test on Debian 12.
# Idempotent: packages already present are left as they are.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

packages=(build-essential cmake pkg-config curl
          libzmq3-dev libczmq-dev libmsgpack-dev liblmdb-dev lmdb-utils
          libcivetweb-dev libmicrohttpd-dev libjansson-dev libsodium-dev
          libjemalloc-dev libssl-dev libgnutls28-dev libcurl4-gnutls-dev)
# libssl-dev: certificates (bus_tls) and the test kit's TLS shims;
# libgnutls28-dev: the WebSocket handshake's SHA-1 (bus_mhd_ws.c);
# libcivetweb-dev: the test kit's HTTP and WebSocket client;
# libcurl4-gnutls-dev: the etcd client (leadership, bus_etcd.c)
if [ "${1:-}" = "--test" ]; then
  packages+=(chromium)            # browser tests drive Debian's chromium
  packages+=(etcd-server)         # integration_etcd, integration_leader
  packages+=(openssl)             # integration_etcd: a CA and client certificates
  packages+=(clang-format)        # scripts/format.sh --check
  packages+=(clang)               # libFuzzer: the fuzz_* tests, scripts/fuzz.sh
  packages+=(python3-requests python3-websockets)   # seed-style API client
  packages+=(iproute2)            # integration_hosts: `ip netns`, veth, bridge
  command -v npm >/dev/null || packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ "${1:-}" = "--test" ] && [ -f tests/browser/package-lock.json ]; then
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi
