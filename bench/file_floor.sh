#!/usr/bin/env bash
# The file engines' own cost per request, with the disk out of the picture: pollux-perf (each
# engine, buffered) beside fio on the same tmpfs file, same core, alternating run by run, and
# the medians. A read of a tmpfs page is a ~1.4 us copy, so what is measured is the software
# path around the syscall: the depth-1 inline path against `fio --ioengine=psync` (the
# synchronous floor), and the engines at depth 8 and 32 against fio's io_uring / libaio /
# psync x4 threads. On a real disk the same comparison is buried under the device's run-to-run
# swings (docs/performance.md, issue 4).
# Usage: bench/file_floor.sh [ROUNDS (5)] [PERF_BINARY (build/apps/pollux-perf/pollux-perf)]
set -euo pipefail
if [ "${1:-}" = "--help" ]; then
  sed -n '2,9p' "$0" | cut -c3-
  exit 0
fi
rounds=${1:-5}
perf=${2:-build/apps/pollux-perf/pollux-perf}
cd "$(dirname "$0")/.."
cpu=1
dir=$(mktemp -d /dev/shm/pollux-floor.XXXXXX)
trap 'rm -rf "$dir"' EXIT
file="$dir/file.img"
head -c 256M /dev/urandom >"$file"

pollux() {  # engine depth -> "iops p50_us"
  local config="$dir/$1.json"
  printf '{"subsystems":[{"subsystem":"bdev","config":[{"method":"bdev_%s_create","params":{"name":"File0","filename":"%s","direct":false}}]}]}' \
    "$1" "$file" >"$config"
  "$perf" -c "$config" -q "$2" -o 4k -w randread -t 3 --cpus "$cpu" --mode interrupt --json \
    2>/dev/null | python3 -c '
import json, sys
t = json.load(sys.stdin)["total"]
print(t["iops"], t["latency_us"]["p50"])'
}
fio_peer() {  # ioengine depth [extra...] -> "iops p50_us"
  local engine=$1 depth=$2
  shift 2
  fio --name=peer --filename="$file" --size=256M --rw=randread --bs=4k --ioengine="$engine" \
    --iodepth="$depth" --time_based --runtime=3 --ramp_time=1 --thread --group_reporting \
    --cpus_allowed="$cpu" --lat_percentiles=1 --output-format=json "$@" 2>/dev/null |
    python3 -c '
import json, sys
text = sys.stdin.read()
r = json.loads(text[text.index("{"):])["jobs"][0]["read"]
print(r["iops"], r["lat_ns"]["percentile"]["50.000000"] / 1000)'
}

# name | pollux engine | depth | fio ioengine | fio extra
cases=(
  "qd1-uring|uring|1|psync|"
  "qd1-aio|aio|1|psync|"
  "qd1-threadpool|threadpool|1|psync|"
  "qd8-uring|uring|8|io_uring|"
  "qd8-aio|aio|8|libaio|"
  "qd8-threadpool|threadpool|8|psync|--numjobs=4"
  "qd32-uring|uring|32|io_uring|"
  "qd32-aio|aio|32|libaio|"
  "qd32-threadpool|threadpool|32|psync|--numjobs=4"
)
results="$dir/results"
: >"$results"
for round in $(seq "$rounds"); do
  for entry in "${cases[@]}"; do
    IFS='|' read -r name engine depth ioengine extra <<<"$entry"
    # Alternate which goes first, round by round.
    if ((round % 2)); then
      p=$(pollux "$engine" "$depth")
      f=$(fio_peer "$ioengine" "$depth" $extra)
    else
      f=$(fio_peer "$ioengine" "$depth" $extra)
      p=$(pollux "$engine" "$depth")
    fi
    echo "$name $p $f" >>"$results"
    echo "round $round $name: pollux $p, fio $f" >&2
  done
done
python3 - "$results" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, piops, pp50, fiops, fp50 = line.split()
    rows.setdefault(name, []).append((float(piops), float(pp50), float(fiops), float(fp50)))
print(f"{'case':16} {'pollux IOPS':>12} {'fio IOPS':>12} {'ratio':>6} {'pollux p50':>11} {'fio p50':>8}")
for name, values in rows.items():
    med = [statistics.median(v[i] for v in values) for i in range(4)]
    ratio = statistics.median(v[0] / v[2] for v in values)
    print(f"{name:16} {med[0]:12.0f} {med[2]:12.0f} {ratio:6.2f} {med[1]:9.2f}us {med[3]:6.2f}us")
EOF
