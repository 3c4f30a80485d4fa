#!/usr/bin/env bash
# Installs every system package pollux needs to build, test and benchmark, with apt.
# Idempotent: when everything is present it changes nothing and runs no apt command.
set -euo pipefail

PACKAGES=(
  # toolchain
  g++ cmake ninja-build pkg-config git
  # the SDK test builds examples/raid0 with its Makefile (the pkg-config route) too
  make
  # the release and package builds share objects (scripts/debian-flags.sh)
  ccache
  # libraries
  libdpdk-dev liburing-dev libaio-dev libabsl-dev nlohmann-json3-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev fio python3
  # pollux-top's terminal test runs it in a real terminal
  tmux
  # the vhost-user-blk peer the virtio initiator is tested and measured against
  qemu-system-common
  # test/guest: a QEMU guest and what scripts/guest-image.sh puts in its initramfs
  qemu-system-x86 qemu-utils e2fsprogs util-linux busybox-static cpio kmod xz-utils
  # NBD clients the NBD server is tested against (qemu-img and qemu-io are in qemu-utils, fio's
  # nbd engine in fio)
  libnbd-bin
  # bench/virtio_bench.py and bench/vhost_target_bench.py --callgrind
  valgrind
  # bench/plot.py: the pictures in docs/performance.md (and its test)
  python3-matplotlib
  # scripts/package.sh: manual pages from --help, and the package test's lintian check
  help2man lintian
  # scripts/fuzz.sh: the fuzz targets with libFuzzer (clang and its runtime libraries)
  clang libclang-rt-14-dev
  # the rbd bdev module (librbd, librados) and the one-node Ceph cluster its tests start
  # (test/support/ceph: a mon and a memstore OSD; ceph-common has the ceph and rbd tools)
  librbd-dev ceph-mon ceph-osd ceph-common
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "setup: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
