#!/usr/bin/env bash
# Runs one fuzz target of test/fuzz with libFuzzer for a while.
# Usage: scripts/fuzz.sh TARGET SECONDS [libFuzzer options...]
#   TARGET: rpc, config, virtqueue, ... (test/fuzz/corpus/TARGET is its seed corpus)
# Builds build-fuzz/ with clang, ASan and UBSan (POLLUX_FUZZ) the first time. New inputs go to
# build-fuzz/fuzz-corpus/TARGET (the committed seeds are read, never written); a finding is
# written to build-fuzz/findings/TARGET/ and the exit code is non-zero. Fix it, then commit the
# input into test/fuzz/corpus/TARGET so that every build replays it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -lt 2 ]; then
  echo "usage: $0 TARGET SECONDS [libFuzzer options...]" >&2
  exit 2
fi
target=$1
seconds=$2
shift 2
seeds="$root/test/fuzz/corpus/$target"
if [ ! -d "$seeds" ]; then
  echo "fuzz: no target \"$target\" (no $seeds); targets: $(ls "$root/test/fuzz/corpus" | tr '\n' ' ')" >&2
  exit 2
fi
"$root/scripts/setup.sh"
build="$root/build-fuzz"
if [ ! -f "$build/build.ninja" ]; then
  CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DPOLLUX_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPOLLUX_BUILD_BENCH=OFF -DPOLLUX_INSTALL=OFF >/dev/null
fi
ninja -C "$build" "fuzz_$target" >&2

work="$build/fuzz-corpus/$target"
findings="$build/findings/$target"
mkdir -p "$work" "$findings"
dict=()
if [ -f "$root/test/fuzz/$target.dict" ]; then dict=(-dict="$root/test/fuzz/$target.dict"); fi
# The app's threads allocate between inputs, which libFuzzer's per-input leak check would take
# for leaks; leaks are the sanitizer suite's (scripts/test.sh --sanitize) to find.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
cd "$findings"
exec "$build/test/fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=60 -rss_limit_mb=4096 \
  -print_final_stats=1 -artifact_prefix="$findings/" "${dict[@]}" "$@" "$work" "$seeds"
