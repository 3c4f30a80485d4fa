#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds pollux and runs the whole test suite with CTest.
# Usage: scripts/test.sh [--sanitize | --tsan] [extra ctest arguments]
#   --sanitize  build with AddressSanitizer and UndefinedBehaviorSanitizer (build-sanitize/)
#   --tsan      ThreadSanitizer on the lockless runtime: the reactor (mailboxes, threads,
#               channels, pollers) and scheduler tests (build-tsan/)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mode=()
ctest_args=()
if [ "${1:-}" = "--tsan" ]; then
  mode=(--tsan)
  shift
  export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$root/test/tsan.supp:${TSAN_OPTIONS:-}"
elif [ "${1:-}" = "--sanitize" ]; then
  mode=(--sanitize)
  shift
  # Leaks are errors; DPDK's EAL keeps some allocations for the life of the process, which
  # the suppressions file names.
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:${ASAN_OPTIONS:-}"
  export LSAN_OPTIONS="suppressions=$root/test/lsan.supp:print_suppressions=0:${LSAN_OPTIONS:-}"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
  # Guests against qemu-storage-daemon (the peer the guest workloads are checked against) and
  # the tests of the guest harness itself run no pollux code for the sanitizers to watch.
  ctest_args=(-E 'GetParam\(\) = Qsd$|^GuestVmTest\.KilledAtTheTimeout$|^GuestNegativeControlTest\.')
fi
"$root/scripts/setup.sh"
build=$("$root/scripts/build.sh" "${mode[@]}" | tail -n 1)
cd "$build"
jobs=$(nproc)
if [ "${mode[*]}" = "--sanitize" ]; then
  # Tests wait on processes, sockets and timers: at one per core a third of the cores idled
  # (measured on the release suite), and nothing else runs beside this suite in CI.
  jobs=$((jobs + 1))
fi
ctest --output-on-failure --timeout 600 -j "$jobs" "${ctest_args[@]}" "$@"
