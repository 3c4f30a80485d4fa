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
# Debian's hardening and build flags (what a package built by dpkg-buildpackage gets), on top
# of the RelWithDebInfo build the figures in docs/performance.md come from.
export DEB_BUILD_MAINT_OPTIONS="hardening=+all"
cflags=$(dpkg-buildflags --get CFLAGS)
cxxflags=$(dpkg-buildflags --get CXXFLAGS)
cppflags=$(dpkg-buildflags --get CPPFLAGS)
ldflags=$(dpkg-buildflags --get LDFLAGS)
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_INSTALL_PREFIX=/usr -DPOLLUX_PACKAGE=ON \
  -DPOLLUX_BUILD_TESTS=OFF -DPOLLUX_BUILD_BENCH=OFF \
  -DCMAKE_C_FLAGS="$cppflags $cflags" -DCMAKE_CXX_FLAGS="$cppflags $cxxflags" \
  -DCMAKE_EXE_LINKER_FLAGS="$ldflags" -DCMAKE_SHARED_LINKER_FLAGS="$ldflags" \
  -DCMAKE_MODULE_LINKER_FLAGS="$ldflags" >/dev/null
ninja -C "$build" >&2
mkdir -p "$out"
(cd "$build" && cpack -G DEB -B "$out" >&2)
rm -rf "$out/_CPack_Packages"
ls "$out"/*.deb
