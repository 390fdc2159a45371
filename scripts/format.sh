#!/usr/bin/env bash
# Apply .clang-format to every C source and header of orderbus (bus/,
# include/, nodes/, tests/, bench/), or check it: `scripts/format.sh
# --check` lists the files that differ and exits 1 if any does.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-apply}
files=$(git ls-files 'bus/*.[ch]' 'include/*.h' 'nodes/*.[ch]' 'tests/*.[ch]' 'bench/*.[ch]')
if [ "$mode" = --check ]; then
  bad=0
  for f in $files; do
    clang-format "$f" | cmp -s - "$f" || { echo "not formatted: $f"; bad=1; }
  done
  exit $bad
fi
clang-format -i $files
