#!/usr/bin/env bash
# Configures and builds pollux. Usage: scripts/build.sh [--sanitize | --tsan]
# Prints the build directory on its last line.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build"
extra=()
if [ "${1:-}" = "--sanitize" ]; then
  build="$root/build-sanitize"
  extra=(-DPOLLUX_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo)
elif [ "${1:-}" = "--tsan" ]; then
  # The lockless runtime and its tests only: env, rpc, reactor, scheduler.
  build="$root/build-tsan"
  extra=(-DPOLLUX_TSAN=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPOLLUX_BUILD_BENCH=OFF
         -DPOLLUX_INSTALL=OFF "-DPOLLUX_TEST_DIRS=unit/reactor;unit/scheduler")
fi
cmake -S "$root" -B "$build" -G Ninja "${extra[@]}" >/dev/null
targets=()
if [ "${1:-}" = "--tsan" ]; then
  # Only the test programs of those folders and what they link.
  mapfile -t targets < <(ninja -C "$build" -t targets all |
    sed -n 's/^\(reactor_[a-z_]*_test\|scheduler_[a-z_]*_test\): .*/\1/p')
fi
ninja -C "$build" "${targets[@]}" >&2
echo "$build"
