#!/usr/bin/env bash
# Install dependencies, build, and start the all-in-one node with the demo
# menu.  Extra arguments go to `orderbus up` (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DORDERBUS_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
exec build/orderbus up "$@"
