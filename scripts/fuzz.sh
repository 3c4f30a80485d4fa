#!/usr/bin/env bash
# Runs fuzz targets of test/fuzz with libFuzzer for a while.
# Usage: scripts/fuzz.sh TARGET|all SECONDS [libFuzzer options...]
#   TARGET: rpc, config, virtqueue, ... (test/fuzz/corpus/TARGET is its seed corpus)
#   all:    every target, one after the other, SECONDS each (CI runs 60); stops at a finding.
# Builds the target in build-sanitize/ (clang, ASan, UBSan, libFuzzer: scripts/build.sh
# --sanitize). New inputs go to build-sanitize/fuzz-corpus/TARGET (the committed seeds are read,
# never written); a finding is written to build-sanitize/findings/TARGET/ and the exit code is
# non-zero. Fix it, then commit the input into test/fuzz/corpus/TARGET so that every build
# replays it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -lt 2 ]; then
  echo "usage: $0 TARGET|all SECONDS [libFuzzer options...]" >&2
  exit 2
fi
target=$1
seconds=$2
shift 2
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
  echo "fuzz: SECONDS must be a positive whole number, not \"$seconds\"" >&2
  exit 2
fi
all_targets=$(ls "$root/test/fuzz/corpus")
if [ "$target" = all ]; then
  targets=($all_targets)
elif [ -d "$root/test/fuzz/corpus/$target" ]; then
  targets=("$target")
else
  echo "fuzz: no target \"$target\" (no test/fuzz/corpus/$target); targets: all" $all_targets >&2
  exit 2
fi
"$root/scripts/setup.sh"
build=$("$root/scripts/build.sh" --sanitize "${targets[@]/#/fuzz_}" | tail -n 1)

# The app's threads allocate between inputs, which libFuzzer's per-input leak check would take
# for leaks; leaks are the sanitizer suite's (scripts/test.sh --sanitize) to find.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
for t in "${targets[@]}"; do
  work="$build/fuzz-corpus/$t"
  findings="$build/findings/$t"
  mkdir -p "$work" "$findings"
  dict=()
  if [ -f "$root/test/fuzz/$t.dict" ]; then dict=(-dict="$root/test/fuzz/$t.dict"); fi
  echo "fuzz: $t for $seconds s" >&2
  (cd "$findings" && "$build/test/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=60 \
    -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$findings/" "${dict[@]}" "$@" \
    "$work" "$root/test/fuzz/corpus/$t") ||
    { echo "fuzz: $t found a failure; its input is in $findings/" >&2; exit 1; }
done
