#!/usr/bin/env bash
# Install dependencies, build with AddressSanitizer + UBSan, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --test
# The tree keeps .clang-format's layout (scripts/format.sh applies it); a
# clang-format of another major version lays out some lines differently,
# so only the version the style was written with judges it
if clang-format --version 2>/dev/null | grep -q 'version 14\.'; then
  scripts/format.sh --check
else
  echo "test.sh: format check skipped: it wants clang-format 14 (Debian 12's)"
fi
# libmicrohttpd's headers and calls stay in the server's files (and
# civetweb, which only the test kit's client uses, out of the code)
# (docs/architecture.md, "Modules and layers")
if grep -rlE '\bmg_[a-z_]+ *\(|\bMHD_|civetweb\.h|microhttpd\.h' bus include nodes \
    | grep -vxE 'bus/http/bus_mhd(_site|_ws|_private)?\.[ch]'; then
  echo "test.sh: civetweb or libmicrohttpd used outside bus/http/bus_mhd*.c" \
       "and bus_mhd_private.h (the files above)" >&2
  exit 1
fi
# The optimised build (the demo's and the bench's) warns differently, so
# it must build too; it runs on jemalloc, not the C library's malloc the
# sanitizers need, so the allocator's test and a few end-to-end runs use
# it; fault_edge among them, as a fast build puts a resuming browser
# further behind than the sanitized one ever gets
cmake -S . -B build -DORDERBUS_TESTS=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
# The Debug build's test switches must not be compiled into the
# optimised build: ORDERBUS_DEBUG_NOSYNC turns syncs off (bus_store.c,
# fault_power_nosync), _MAP_SIZE makes the map small (integration_replica),
# _UPGRADE_DELAY_MS holds WebSocket upgrades (integration_site's
# goodbye_upgrading), _ZAP_EXIT_MS ends the ZAP handler early
# (integration_security_links's zap_dies)
for switch in ORDERBUS_DEBUG_NOSYNC ORDERBUS_DEBUG_MAP_SIZE \
              ORDERBUS_DEBUG_UPGRADE_DELAY_MS ORDERBUS_DEBUG_ZAP_EXIT_MS; do
  if grep -q "$switch" build/orderbus; then
    echo "test.sh: build/orderbus knows $switch, a Debug build's test" \
         "switch" >&2
    exit 1
  fi
done
(cd build && ctest --output-on-failure --timeout 300 \
    -R '^(unit_alloc|unit_fanout|integration_e2e|integration_seats|integration_gateway|fault_edge)$')
cmake -S . -B build-asan -DORDERBUS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan -j"$(nproc)"
cd build-asan
ctest --output-on-failure -j2 --timeout 300
