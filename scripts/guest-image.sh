#!/usr/bin/env bash
# Builds what test/guest boots: a Debian 12 guest kernel (uncompressed vmlinux) and a base
# initramfs (busybox, fio, e2fsprogs, util-linux's blkdiscard, the virtio and ext4 modules, an
# /init that runs /workload.sh and prints its output between markers on the serial console).
#
# Usage: scripts/guest-image.sh [--link PATH]
#   --link PATH  also point the symbolic link PATH at the image folder (the CTest fixture
#                links <build>/guest-image, which the tests read)
# Prints the image folder on its last line: vmlinux, initramfs.cpio, image.env.
#
# Cached in ${POLLUX_GUEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pollux/guest}/<key>, where
# <key> is a hash of this script: a changed script builds a new image, an unchanged one
# returns at once without asking apt anything. The kernel package is fetched with
# `apt-get download` and unpacked with `dpkg -x`; it is never installed.
set -euo pipefail
export LC_ALL=C
# depmod lives in /usr/sbin, which a user's PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"

root=$(cd "$(dirname "$0")/.." && pwd)
script="$root/scripts/guest-image.sh"
link=""
while [ $# -gt 0 ]; do
  case "$1" in
    --link) link=${2:?--link needs a path}; shift 2 ;;
    *) echo "guest-image: unknown argument '$1' (usage: $0 [--link PATH])" >&2; exit 2 ;;
  esac
done

cache=${POLLUX_GUEST_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/pollux/guest}
key=$(sha256sum "$script" | cut -c1-16)
image="$cache/$key"

# The modules the guest loads, by name; their dependencies come from modules.dep.
# crc32c_generic: ext4 and jbd2 ask the crypto API for crc32c, and the guest has no modprobe
# to load it on demand.
GUEST_MODULES=(virtio_pci virtio_blk crc32c_generic ext4)
# Programs copied from the host with the shared libraries ldd lists, at the same path.
GUEST_PROGRAMS=(/usr/bin/fio /usr/sbin/mke2fs /usr/sbin/e2fsck /usr/sbin/blkdiscard)

log() { echo "guest-image: $*" >&2; }
die() { log "$*"; exit 1; }

finish() {
  if [ -n "$link" ]; then
    mkdir -p "$(dirname "$link")"
    ln -sfn "$image" "$link"
  fi
  echo "$image"
}

if [ -f "$image/image.env" ]; then
  finish
  exit 0
fi

"$root/scripts/setup.sh" >&2

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
# Another build may have finished while this one waited for the lock.
if [ -f "$image/image.env" ]; then
  finish
  exit 0
fi

started=$SECONDS
work=$(mktemp -d "$cache/.build-$key.XXXXXX")
trap 'rm -rf "$work"' EXIT

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# The kernel package that linux-image-amd64 depends on (the newest 6.1 Debian offers).
kernel_package() {
  apt-cache depends linux-image-amd64 2>/dev/null |
    sed -n 's/^ *Depends: \(linux-image-6\.1\.0-[0-9]*-amd64\)$/\1/p' | head -n 1
}

fetch_kernel() {
  local pkg
  pkg=$(kernel_package)
  if [ -z "$pkg" ]; then
    log "apt offers no linux-image-amd64; running apt-get update"
    as_root apt-get update -qq
    pkg=$(kernel_package)
  fi
  [ -n "$pkg" ] ||
    die "apt offers no linux-image-6.1.0-*-amd64 (apt-cache depends linux-image-amd64 names none)"
  mkdir -p "$cache/debs"
  local deb
  deb=$(ls "$cache/debs/${pkg}_"*.deb 2>/dev/null | head -n 1 || true)
  if [ -z "$deb" ]; then
    log "downloading $pkg"
    if ! (cd "$cache/debs" && apt-get download -q "$pkg" >&2); then
      # The lists may name a version the mirror no longer has.
      as_root apt-get update -qq
      (cd "$cache/debs" && apt-get download -q "$pkg" >&2) || die "apt-get download $pkg failed"
    fi
    deb=$(ls "$cache/debs/${pkg}_"*.deb | head -n 1)
  fi
  echo "$deb"
}

is_elf() { [ -s "$1" ] && [ "$(head -c 4 "$1" | od -An -tx1 | tr -d ' \n')" = "7f454c46" ]; }

# The kernel's scripts/extract-vmlinux: find each compression format's magic bytes in the
# bzImage and decompress from there until the output is an ELF file.
extract_vmlinux() {
  local bzimage=$1 out=$2 i pos
  local formats=(
    '\xfd7zXZ\x00' 'xz -dc'
    '\x1f\x8b\x08' 'gzip -dc'
    '\x28\xb5\x2f\xfd' 'zstd -dcq'
    'BZh' 'bzip2 -dc'
    '\x5d\x00\x00\x00' 'xz -dc --format=lzma'
    '\x89\x4c\x5a\x4f' 'lzop -dc'
    '\x02\x21\x4c\x18' 'lz4 -dc'
  )
  for ((i = 0; i < ${#formats[@]}; i += 2)); do
    command -v "${formats[i + 1]%% *}" >/dev/null || continue
    for pos in $(grep -aboP "${formats[i]}" "$bzimage" | cut -d: -f1 | head -n 16); do
      # The compressed kernel is followed by other data: the decompressor's complaint about
      # it is expected, the ELF check decides.
      tail -c "+$((pos + 1))" "$bzimage" | ${formats[i + 1]} >"$out" 2>/dev/null || true
      if is_elf "$out"; then
        return 0
      fi
    done
  done
  return 1
}

# Copies a host file into the tree at the same path, following links (the tree's /lib is a
# link to usr/lib, as on the host).
copy_host_file() {
  local tree=$1 path=$2
  mkdir -p "$tree$(dirname "$path")"
  cp -L "$path" "$tree$path"
}

# Appends module $1 (a path relative to lib/modules/<release>) after its dependencies.
declare -A queued=()
ordered_modules=()
queue_module() {
  local dir=$1 mod=$2 dep
  [ -n "${queued[$mod]:-}" ] && return 0
  queued[$mod]=1
  for dep in $(sed -n "s|^$mod: *||p" "$dir/modules.dep"); do
    queue_module "$dir" "$dep"
  done
  ordered_modules+=("$mod")
}

deb=$(fetch_kernel)
log "building image $key from $(basename "$deb")"
dpkg -x "$deb" "$work/kernel"
release=$(ls "$work/kernel/lib/modules" | head -n 1)
moddir="$work/kernel/lib/modules/$release"
[ -n "$release" ] && [ -f "$work/kernel/boot/vmlinuz-$release" ] ||
  die "$(basename "$deb") has no boot/vmlinuz-<release> beside lib/modules/<release>"

extract_vmlinux "$work/kernel/boot/vmlinuz-$release" "$work/vmlinux" ||
  die "found no compressed ELF kernel in boot/vmlinuz-$release"

# Debian's package ships no modules.dep.
depmod -b "$work/kernel" "$release"
for name in "${GUEST_MODULES[@]}"; do
  path=$(sed -n "s|^\(\([^:]*/\)\?${name//_/[-_]}\.ko\):.*|\1|p" "$moddir/modules.dep" | head -n 1)
  if [ -z "$path" ]; then
    grep -q "/${name//_/[-_]}\.ko$" "$moddir/modules.builtin" ||
      die "module $name is neither in modules.dep nor built in ($release)"
    continue
  fi
  queue_module "$moddir" "$path"
done

tree="$work/root"
mkdir -p "$tree"/{usr/bin,usr/sbin,usr/lib,usr/lib64,dev,proc,sys,tmp,mnt,etc/pollux}
ln -s usr/bin "$tree/bin"
ln -s usr/sbin "$tree/sbin"
ln -s usr/lib "$tree/lib"
ln -s usr/lib64 "$tree/lib64"

for mod in "${ordered_modules[@]}"; do
  mkdir -p "$tree/usr/lib/modules/$release/$(dirname "$mod")"
  cp "$moddir/$mod" "$tree/usr/lib/modules/$release/$mod"
  echo "$mod" >>"$tree/etc/pollux/modules"
done

for program in "${GUEST_PROGRAMS[@]}"; do
  [ -x "$program" ] || die "$program is missing (scripts/setup.sh installs it)"
  copy_host_file "$tree" "$program"
  for lib in $(ldd "$program" | awk '/=> \// { print $3 } /^\t\// { print $1 }'); do
    [ -e "$tree$lib" ] || copy_host_file "$tree" "$lib"
  done
done
ln -s mke2fs "$tree/usr/sbin/mkfs.ext4"
cp /etc/mke2fs.conf "$tree/etc/mke2fs.conf"

# busybox applets fill in wherever a real program does not already stand.
cp /bin/busybox "$tree/usr/bin/busybox"
for applet in $(/bin/busybox --list-full); do
  applet="usr/${applet#usr/}"
  [ -e "$tree/$applet" ] || [ -L "$tree/$applet" ] || ln -s /usr/bin/busybox "$tree/$applet"
done

cat >"$tree/init" <<'INIT'
#!/bin/sh
# The guest's init: loads the modules, runs /workload.sh (appended by the test as a second
# cpio archive), prints what it wrote between the markers and powers off.
export PATH=/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
release=$(uname -r)
while read -r mod; do
  insmod "/lib/modules/$release/$mod" || echo "pollux-init: insmod $mod failed"
done </etc/pollux/modules
# virtio_blk probes asynchronously: wait up to 10 s for the disk.
tries=0
while [ ! -b /dev/vda ] && [ "$tries" -lt 100 ]; do
  sleep 0.1
  tries=$((tries + 1))
done
[ -b /dev/vda ] || echo "pollux-init: no /dev/vda after 10 s"
echo "pollux-init: running /workload.sh"
if [ -f /workload.sh ]; then
  # Live on the console too, so a workload that hangs shows how far it got.
  { sh /workload.sh; echo $? >/tmp/workload.status; } 2>&1 | tee /tmp/workload.out
else
  echo "pollux-init: no /workload.sh in the initramfs" >/tmp/workload.out
  echo 127 >/tmp/workload.status
fi
status=$(cat /tmp/workload.status)
# Only emergencies may print between the markers.
echo 1 >/proc/sys/kernel/printk
echo "@@POLLUX-RESULT-BEGIN@@"
cat /tmp/workload.out
echo "@@POLLUX-RESULT-END status=$status@@"
if [ "$status" != 0 ]; then
  echo "@@POLLUX-DMESG@@"
  dmesg | tail -n 40
fi
poweroff -f
INIT
chmod 0755 "$tree/init"

(cd "$tree" && find . -print0 | sort -z | cpio --null -o -H newc -R 0:0 --quiet) \
  >"$work/initramfs.cpio"

cat >"$work/image.env" <<ENV
KEY=$key
KERNEL_PACKAGE=$(basename "$deb")
KERNEL_RELEASE=$release
MODULES="${ordered_modules[*]}"
ENV

# One rename publishes the image whole; image.env in it marks it complete.
mkdir -p "$work/out"
mv "$work/vmlinux" "$work/initramfs.cpio" "$work/image.env" "$work/out/"
rm -rf "$image"
mv "$work/out" "$image"
# Older kernel packages are not needed again: a changed script downloads what apt offers then.
find "$cache/debs" -name '*.deb' ! -name "$(basename "$deb")" -delete
log "built $image in $((SECONDS - started)) s:" \
  "vmlinux $(($(stat -c %s "$image/vmlinux") >> 20)) MiB," \
  "initramfs $(($(stat -c %s "$image/initramfs.cpio") >> 20)) MiB"
finish
