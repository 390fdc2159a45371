#!/usr/bin/env bash
# Install dependencies, build with AddressSanitizer + UBSan, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --test
# The demo's optimised build warns differently: it must build too
cmake -S . -B build -DORDERBUS_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
cmake -S . -B build-asan -DORDERBUS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan -j"$(nproc)"
cd build-asan
ctest --output-on-failure -j2 --timeout 300
