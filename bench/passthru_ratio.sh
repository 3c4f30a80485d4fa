#!/usr/bin/env bash
# The cost of one virtual bdev layer: pollux-perf on passthru-over-null against null alone,
# alternating run by run (the VM's speed drifts over minutes), and the median ratio.
# Usage: bench/passthru_ratio.sh [ROUNDS (5)] [PERF_BINARY (build/apps/pollux-perf/pollux-perf)]
set -euo pipefail
rounds=${1:-5}
perf=${2:-build/apps/pollux-perf/pollux-perf}
cd "$(dirname "$0")/.."
iops() {
  "$perf" -c "$1" -q 32 -o 4k -w randread -t 2 --cpus 1 --json 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["total"]["iops"])'
}
ratios=()
for i in $(seq "$rounds"); do
  null=$(iops etc/bdev-null.json)
  passthru=$(iops etc/bdev-passthru.json)
  ratio=$(python3 -c "print('%.3f' % ($passthru / $null))")
  printf 'round %d: null %.1f M, passthru %.1f M IOPS, passthru / null = %s\n' "$i" \
    "$(python3 -c "print($null / 1e6)")" "$(python3 -c "print($passthru / 1e6)")" "$ratio"
  ratios+=("$ratio")
done
python3 -c "
import statistics, sys
r = [float(x) for x in sys.argv[1:]]
print('median passthru / null = %.3f (%.3f-%.3f) over %d rounds' % (statistics.median(r), min(r), max(r), len(r)))
" "${ratios[@]}"
