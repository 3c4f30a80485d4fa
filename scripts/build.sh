#!/usr/bin/env bash
# Configures and builds pollux. Usage: scripts/build.sh [--sanitize | --tsan] [ninja targets...]
#   (none)      release build (RelWithDebInfo, g++, Debian's hardening flags, ccache): build/
#   --sanitize  clang with ASan, UBSan and libFuzzer's coverage (POLLUX_FUZZ): the sanitizer
#               suite and the fuzz targets of test/fuzz from one build: build-sanitize/
#   --tsan      ThreadSanitizer (clang) on the lockless runtime and its tests only: env, rpc,
#               reactor, scheduler: build-tsan/
# Without targets it builds everything the mode's suite needs. Prints the build directory on
# its last line.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:-}
case "$mode" in
  --sanitize | --tsan) shift ;;
  *) mode="" ;;
esac
build="$root/build"
extra=()
if [ -z "$mode" ]; then
  # The package build's flags (scripts/package.sh), so that it finds its objects in ccache.
  source "$root/scripts/debian-flags.sh"
  extra=("${debian_cmake_args[@]}")
elif [ "$mode" = "--sanitize" ]; then
  build="$root/build-sanitize"
  # No install rules (so no package or SDK tests: they build pollux again, which the release
  # suite does) and no benchmarks; clang builds a sanitized tree in about half g++'s time.
  export CC=clang CXX=clang++
  extra=(-DPOLLUX_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPOLLUX_BUILD_BENCH=OFF
         -DPOLLUX_INSTALL=OFF)
elif [ "$mode" = "--tsan" ]; then
  build="$root/build-tsan"
  export CC=clang CXX=clang++
  extra=(-DPOLLUX_TSAN=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPOLLUX_BUILD_BENCH=OFF
         -DPOLLUX_INSTALL=OFF "-DPOLLUX_TEST_DIRS=unit/reactor;unit/scheduler")
fi
cmake -S "$root" -B "$build" -G Ninja "${extra[@]}" >/dev/null
targets=("$@")
if [ ${#targets[@]} -eq 0 ] && [ "$mode" = "--tsan" ]; then
  # Only the test programs of those folders and what they link.
  mapfile -t targets < <(ninja -C "$build" -t targets all |
    sed -n 's/^\(reactor_[a-z_]*_test\|scheduler_[a-z_]*_test\): .*/\1/p')
fi
ninja -C "$build" "${targets[@]}" >&2
echo "$build"
