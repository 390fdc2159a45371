#!/bin/sh
# Run the browser tests and copy the screenshots the README shows into
# web/screenshots/ (kitchen.png, pad.png, dashboard.png, and the phone
# views).  Usage, from anywhere:
#
#   tests/browser/update-screenshots.sh [BUILD_DIR]
#
# BUILD_DIR is a built tree (default: build).  The tests run through its
# ctest when it has the browser_* tests, else straight with node; either
# way with its orderbus, writing to BUILD_DIR/screenshots.  Nothing is
# copied unless every test passed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-"$root/build"}
case $build in /*) ;; *) build="$PWD/$build" ;; esac
shots="$build/screenshots"

if [ ! -x "$build/orderbus" ]; then
    echo "update-screenshots: no orderbus in $build; build it first" >&2
    exit 1
fi
if [ ! -d "$here/node_modules/playwright-core" ]; then
    echo "update-screenshots: run 'npm ci' in $here first" >&2
    exit 1
fi
if ctest --test-dir "$build" -N -R '^browser_' 2>/dev/null | grep -q 'browser_'; then
    ctest --test-dir "$build" -R '^browser_' --output-on-failure
else
    for t in kitchen pad dashboard; do
        ORDERBUS_BIN="$build/orderbus" SCREENSHOT_DIR="$shots" \
            node --test "$here/$t.test.mjs"
    done
fi

dest="$root/web/screenshots"
mkdir -p "$dest"
for f in kitchen.png kitchen-phone.png pad.png pad-phone.png pad-item.png \
         dashboard.png dashboard-phone.png; do
    cp "$shots/$f" "$dest/$f"
    echo "web/screenshots/$f"
done
