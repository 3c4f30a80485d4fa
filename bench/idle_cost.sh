#!/bin/bash
# idle_cost.sh: CPU used by an idle pollux-tgt, in interrupt mode (goal: under 1% of one core)
# and in poll mode (the reference: one full core per reactor).
#
# For each mode: start pollux-tgt on the given cores with a private RPC socket, wait until it
# logs that it started (plus a settling second), read utime+stime of the process from
# /proc/PID/stat before and after the measuring window, print the difference as % of one core,
# with the busiest threads and their voluntary context switches (wake-ups) per second; then
# stop it with SIGTERM and check that it exited cleanly.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: idle_cost.sh [OPTIONS]

Options:
  -t, --tgt PATH          pollux-tgt binary (default: the first found of
                          <this dir>/../apps/pollux-tgt/pollux-tgt, /work/main/build*/apps/...)
  -c, --cpus LIST         cores for the reactors (default 0-1)
  -d, --duration SECONDS  measuring window (default 10)
  -m, --modes "A B"       modes to measure (default "interrupt poll")
  -s, --settle SECONDS    wait after start-up before measuring (default 1)
      --json              print one JSON object instead of the table
  -h, --help              print this help
EOF
}

tgt=""
cpus="0-1"
duration=10
modes="interrupt poll"
settle=1
json=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    -t|--tgt) tgt="$2"; shift 2 ;;
    -c|--cpus) cpus="$2"; shift 2 ;;
    -d|--duration) duration="$2"; shift 2 ;;
    -m|--modes) modes="$2"; shift 2 ;;
    -s|--settle) settle="$2"; shift 2 ;;
    --json) json=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "idle_cost.sh: unknown option \"$1\"" >&2; usage >&2; exit 2 ;;
  esac
done

if [[ -z "$tgt" ]]; then
  here="$(cd "$(dirname "$0")" && pwd)"
  for candidate in "$here/../apps/pollux-tgt/pollux-tgt" /work/main/build*/apps/pollux-tgt/pollux-tgt; do
    if [[ -x "$candidate" ]]; then tgt="$candidate"; break; fi
  done
fi
if [[ -z "$tgt" || ! -x "$tgt" ]]; then
  echo "idle_cost.sh: no pollux-tgt binary found; build it or pass --tgt PATH" >&2
  exit 1
fi

clk_tck=$(getconf CLK_TCK)
ncores=$(awk -v list="$cpus" 'BEGIN {
  n = split(list, parts, ","); total = 0
  for (i = 1; i <= n; i++) {
    if (split(parts[i], r, "-") == 2) total += r[2] - r[1] + 1; else total += 1
  }
  print total }')

# utime+stime (clock ticks) of a process or a task, from its stat file. The command name
# (field 2) may hold spaces, so cut after the last ')': utime and stime become fields 12, 13.
ticks() { sed 's/^.*) //' "$1" | awk '{ print $12 + $13 }'; }

# Nanoseconds on CPU of every thread of $1 (schedstat: finer than the 10 ms clock ticks).
run_ns() {
  cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f", s }'
}

# "tid ticks voluntary-switches name" for every thread of $1.
thread_table() {
  local pid=$1 task
  for task in /proc/"$pid"/task/*; do
    [[ -r "$task/stat" ]] || continue
    printf '%s %s %s %s\n' "${task##*/}" "$(ticks "$task/stat")" \
      "$(awk '/^voluntary_ctxt_switches/ { print $2 }' "$task/status")" "$(cat "$task/comm")"
  done 2>/dev/null
}

workdir=$(mktemp -d /tmp/pollux-idle.XXXXXX)
pid=""
cleanup() {
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -rf "$workdir"
}
trap cleanup EXIT

results=()
json_items=()
for mode in $modes; do
  sock="$workdir/rpc-$mode.sock"
  log="$workdir/tgt-$mode.log"
  "$tgt" --cpus "$cpus" --mode "$mode" -r "$sock" >"$log" 2>&1 &
  pid=$!

  # Started: it logs "<name> started:" once the reactors run and the RPC server listens.
  for ((i = 0; i < 300; i++)); do
    if grep -q " started: " "$log" 2>/dev/null; then break; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "idle_cost.sh: pollux-tgt ($mode) exited during start-up:" >&2
      cat "$log" >&2
      exit 1
    fi
    sleep 0.1
  done
  if ! grep -q " started: " "$log"; then
    echo "idle_cost.sh: pollux-tgt ($mode) did not report start-up within 30 s:" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep "$settle"

  # The same reads in the same order on both sides of the window: in poll mode the reactors
  # occupy every core and each fork here takes milliseconds, so asymmetric reads would skew it.
  threads_before=$(thread_table "$pid")
  t0=$(date +%s.%N)
  before=$(ticks /proc/"$pid"/stat)
  ns_before=$(run_ns "$pid")
  sleep "$duration"
  t1=$(date +%s.%N)
  after=$(ticks /proc/"$pid"/stat)
  ns_after=$(run_ns "$pid")
  threads_after=$(thread_table "$pid")

  kill -TERM "$pid"
  status=0
  wait "$pid" || status=$?
  pid=""
  if [[ $status -ne 0 ]]; then
    echo "idle_cost.sh: pollux-tgt ($mode) exited with status $status after SIGTERM:" >&2
    cat "$log" >&2
  fi

  pct=$(awk -v d="$((after - before))" -v hz="$clk_tck" -v t0="$t0" -v t1="$t1" \
    'BEGIN { printf "%.2f", d / hz / (t1 - t0) * 100 }')
  pct_ns=$(awk -v d="$((ns_after - ns_before))" -v t0="$t0" -v t1="$t1" \
    'BEGIN { printf "%.3f", d / 1e9 / (t1 - t0) * 100 }')
  # Per thread: % of a core and wake-ups (voluntary context switches) per second.
  busiest=$(join <(sort <<<"$threads_before") <(sort <<<"$threads_after") |
    awk -v hz="$clk_tck" -v t0="$t0" -v t1="$t1" '{
        pct = ($5 - $2) / hz / (t1 - t0) * 100; wakes = ($6 - $3) / (t1 - t0)
        if (pct > 0 || wakes >= 1) printf "%s:%.1f%%,%.0f/s ", $4, pct, wakes }')
  goal=""
  if [[ $mode == interrupt ]]; then
    goal=$(awk -v p="$pct" 'BEGIN { print (p < 1.0) ? "met" : "NOT met" }')
    expect="goal < 1%: $goal"
  else
    expect="expected ~$((ncores * 100))%: one core per reactor"
  fi
  results+=("$(printf '%-10s %8s%% of one core (schedstat: %s%%)  (%s reactors; %s; exit status %s)\n    threads (cpu, wake-ups/s): %s' \
    "$mode" "$pct" "$pct_ns" "$ncores" "$expect" "$status" "${busiest:-none}")")
  json_items+=("{\"mode\":\"$mode\",\"cpu_pct_of_one_core\":$pct,\"cpu_pct_schedstat\":$pct_ns,\"reactors\":$ncores,\"duration_s\":$duration,\"exit_status\":$status,\"goal\":\"$goal\"}")
done

if [[ $json -eq 1 ]]; then
  (IFS=,; echo "{\"benchmark\":\"idle_cost\",\"cpus\":\"$cpus\",\"results\":[${json_items[*]}]}")
else
  echo "idle_cost: idle $(basename "$tgt") on cores $cpus, CPU time (utime+stime) over ${duration} s"
  for line in "${results[@]}"; do echo "  $line"; done
  echo "  load average: $(cut -d' ' -f1-3 /proc/loadavg)"
fi
