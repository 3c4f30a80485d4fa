#!/usr/bin/env bash
# Runs fuzz targets of test/fuzz with libFuzzer for a while.
# Usage: scripts/fuzz.sh TARGET|all SECONDS [libFuzzer options...]
#   TARGET: rpc, config, virtqueue, ... (test/fuzz/corpus/TARGET is its seed corpus)
#   all:    every target for SECONDS (CI runs 60), as many at once as there are cores.
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
# One target: its output on the terminal. Several (all): as many at once as there are cores
# (each is one process on one core), each one's output in its findings folder, printed when
# it ends.
run_one() {
  local t=$1
  local work="$build/fuzz-corpus/$t"
  local findings="$build/findings/$t"
  mkdir -p "$work" "$findings"
  local dict=()
  if [ -f "$root/test/fuzz/$t.dict" ]; then dict=(-dict="$root/test/fuzz/$t.dict"); fi
  cd "$findings" && exec "$build/test/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=60 \
    -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$findings/" "${dict[@]}" \
    "${libfuzzer_options[@]}" "$work" "$root/test/fuzz/corpus/$t"
}
libfuzzer_options=("$@")
if [ ${#targets[@]} -eq 1 ]; then
  (run_one "${targets[0]}")
  exit
fi
failed=()
pids=()
names=()
finish_one() {
  local i=$1
  local t=${names[$i]}
  local rc=0
  wait "${pids[$i]}" || rc=$?
  echo "=== fuzz: $t (last lines of $build/findings/$t/fuzz.log)" >&2
  tail -n 12 "$build/findings/$t/fuzz.log" >&2
  if [ $rc -ne 0 ]; then failed+=("$t"); fi
}
jobs_at_once=$(nproc)
for t in "${targets[@]}"; do
  if [ ${#pids[@]} -ge "$jobs_at_once" ]; then
    finish_one 0
    pids=("${pids[@]:1}")
    names=("${names[@]:1}")
  fi
  mkdir -p "$build/findings/$t"
  echo "fuzz: $t for $seconds s" >&2
  (run_one "$t") >"$build/findings/$t/fuzz.log" 2>&1 &
  pids+=($!)
  names+=("$t")
done
for i in "${!pids[@]}"; do finish_one "$i"; done
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: failures in ${failed[*]}: the inputs are in $build/findings/<target>/" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets ran $seconds s each without a finding" >&2
