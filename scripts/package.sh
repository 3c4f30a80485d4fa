#!/usr/bin/env bash
# Builds pollux's Debian packages with CPack: libpollux<major.minor> (the shared libraries),
# pollux (programs, example configs, docs) and libpollux-dev (the module SDK).
# Usage: scripts/package.sh [--build-dir DIR] [--out DIR]
#   --build-dir  where to configure and build (default: build-package/); prefix /usr
#   --out        where to put the .deb files (default: the build directory)
# Prints the paths of the .deb files, one per line, last.
# Install them with: apt install ./libpollux0.1_*.deb ./pollux_*.deb [./libpollux-dev_*.deb]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build-package"
out=""
usage_error() {
  echo "package.sh: $1 (see the usage at the top of $0)" >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir|--out)
      [ $# -ge 2 ] && [ -n "$2" ] || usage_error "$1 needs a directory"
      if [ "$1" = --out ]; then out="$2"; else build="$2"; fi
      shift 2 ;;
    *) usage_error "unknown argument '$1'" ;;
  esac
done
out="${out:-$build}"

"$root/scripts/setup.sh"
# Debian's hardening and build flags (what a package built by dpkg-buildpackage gets) on the
# RelWithDebInfo build the figures in docs/performance.md come from: the release build's own
# flags, so its objects come from ccache when it has run (scripts/debian-flags.sh).
source "$root/scripts/debian-flags.sh"
cmake -S "$root" -B "$build" -G Ninja "${debian_cmake_args[@]}" \
  -DCMAKE_INSTALL_PREFIX=/usr -DPOLLUX_PACKAGE=ON \
  -DPOLLUX_BUILD_TESTS=OFF -DPOLLUX_BUILD_BENCH=OFF >/dev/null
ninja -C "$build" >&2
mkdir -p "$out"
(cd "$build" && cpack -G DEB -B "$out" >&2)
rm -rf "$out/_CPack_Packages"
ls "$out"/*.deb
