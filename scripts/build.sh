#!/usr/bin/env bash
# Configures and builds pollux. Usage: scripts/build.sh [--sanitize]
# Prints the build directory on its last line.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build"
extra=()
if [ "${1:-}" = "--sanitize" ]; then
  build="$root/build-sanitize"
  extra=(-DPOLLUX_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo)
fi
cmake -S "$root" -B "$build" -G Ninja "${extra[@]}" >/dev/null
ninja -C "$build" >&2
echo "$build"
