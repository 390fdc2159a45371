#!/usr/bin/env bash
# Install dependencies, build with AddressSanitizer + UBSan, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --test
cmake -S . -B build-asan -DORDERBUS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan -j"$(nproc)"
cd build-asan
ctest --output-on-failure -j2 --timeout 300
