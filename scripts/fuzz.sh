#!/usr/bin/env bash
# Run one libFuzzer target for longer than ctest's few seconds:
#
#   scripts/fuzz.sh TARGET SECONDS [libFuzzer options...]
#   scripts/fuzz.sh all SECONDS          each target in turn
#   scripts/fuzz.sh --seeds              rewrite tests/fuzz/corpus/
#
# TARGET is one of cmd event sync json token wsframe menu
# (tests/fuzz/fuzz_TARGET.c).  Builds tests/fuzz with clang into
# build-fuzz/, fuzzes from the committed seeds, and keeps what it finds
# in build-fuzz/corpus-TARGET (new inputs) and build-fuzz/crashes/ (an
# input that fails: replay it with build-fuzz/fuzz_TARGET FILE).
# FUZZ_JOBS=N fuzzes in N processes at once (libFuzzer's -fork).
set -euo pipefail
cd "$(dirname "$0")/.."
targets="cmd event sync json token wsframe menu"
build=${FUZZ_BUILD:-build-fuzz}   # where it builds (the tree's build*/ is ignored)

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[ $# -ge 1 ] || usage

clang=$(command -v clang || command -v clang-14 || true)
if [ -z "$clang" ]; then
  echo "fuzz.sh: clang is needed (scripts/deps.sh --test installs it)" >&2
  exit 1
fi
case " $targets all --seeds " in
  *" $1 "*) ;;
  *) echo "fuzz.sh: no target '$1' (one of: $targets)" >&2; exit 2 ;;
esac
[ "$1" = --seeds ] || [ $# -ge 2 ] || usage
cmake -S tests/fuzz -B "$build" -DCMAKE_C_COMPILER="$clang" >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null

if [ "$1" = --seeds ]; then
  "$build/fuzz_seeds" tests/fuzz/corpus
  cp config/demo-menu.json tests/fuzz/corpus/menu/demo-menu.json
  echo "fuzz.sh: seeds written to tests/fuzz/corpus/"
  exit 0
fi

target=$1
seconds=$2
shift 2
if [ "$target" = all ]; then
  for t in $targets; do "$0" "$t" "$seconds" "$@"; done
  exit 0
fi

jobs=${FUZZ_JOBS:-1}
fork=()
[ "$jobs" -gt 1 ] && fork=(-fork="$jobs")
mkdir -p "$build/corpus-$target" "$build/crashes"
echo "fuzz.sh: $target for ${seconds}s in $jobs process(es)"
"$build/fuzz_$target" -max_total_time="$seconds" -timeout=10 \
  -rss_limit_mb=2048 -print_final_stats=1 "${fork[@]}" \
  -dict=tests/fuzz/utf8.dict \
  -artifact_prefix="$build/crashes/$target-" "$@" \
  "$build/corpus-$target" "tests/fuzz/corpus/$target"
