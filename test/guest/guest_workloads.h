// The workloads the guest tests run, each a function that starts the disk's target, boots one
// or more guests against it and checks what they saw (GoogleTest assertions; every failure message
// carries the console's last lines and the target's log). They know the target only through the
// VhostBlkTargetLauncher the disk was made with, so any target runs the same workloads. Each
// takes a disk that is Create()d and whose target is not started yet.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "guest_disk.h"
#include "guest_vm.h"

namespace pollux::testing {

// Shell functions and names every workload script starts with: DISK, FIO, BLKDISCARD (with
// -f), MKFS_EXT4, E2FSCK (util-linux and e2fsprogs by absolute path: busybox runs its own
// applets ahead of $PATH), fail, must, result, run_fio, disk_sha, cached_sha, zero_sha,
// file_sha, device_report.
std::string WorkloadPrelude();

// `body` after the prelude.
std::string WorkloadScript(const std::string& body);

// Deterministic pseudo-random bytes.
std::string RandomBytes(size_t length, uint64_t seed);

// What the guest's driver saw of the device (device_report in the prelude).
struct DeviceReport {
  bool packed_ring = false;                    // VIRTIO_F_RING_PACKED negotiated
  int hw_queues = 0;                           // /sys/block/vda/mq entries
  bool read_only = false;                      // /sys/block/vda/ro
  std::map<int, uint64_t> queue_interrupts{};  // request queue index -> interrupts taken
};
DeviceReport ParseDeviceReport(const std::map<std::string, std::string>& results);

// fio random writes with verify=crc32c, then the verify pass reads everything back.
struct FioVerifySpec {
  std::string name = "verify";
  std::string block_sizes = "4k";  // a size ("4k") or an fio bssplit ("4k/50:64k/50")
  uint64_t bytes_per_job = 16ull << 20;
  int jobs = 1;  // each on its own region of the disk, pinned to its own vCPU
  int iodepth = 16;
};
// fio's arguments for `spec` (the writes with verify headers, then the verify pass).
std::string FioArgs(const FioVerifySpec& spec);

// Boots one guest; `device`, if given, receives what the driver saw.
void RunFioVerify(GuestDisk& disk, const FioVerifySpec& spec, const GuestVmOptions& vm = {},
                  DeviceReport* device = nullptr);

// dd through O_DIRECT and through the page cache at offsets that are 512-byte but not 4 KiB
// aligned: SHA-256 of what was written equals what is read back both ways, and the backing
// file holds the bytes with zeros on either side.
void RunDdChecksums(GuestDisk& disk);

// mkfs.ext4, files copied in, e2fsck -fn twice, remount, checksums compared; then a second
// boot checks the file system and the checksums again.
void RunExt4(GuestDisk& disk);

// Write-zeroes (blkdiscard -z) and discard (blkdiscard) on ranges whose ends are not MiB (nor
// 4 KiB) aligned, over data the host wrote: the zeroed range reads as zeros, data on either
// side is untouched, and the backing file's allocation shrinks by the discarded size.
// Needs a disk of at least 32 MiB that the target punches holes in on discard.
void RunDiscardAndWriteZeroes(GuestDisk& disk);

// A read-only export: the guest sees ro=1, reads the host's data, and writes and discards
// fail; the backing file is unchanged. The disk must be created with read_only.
void RunReadOnly(GuestDisk& disk);

// The negative control: fio writes with verify headers in one boot, verifies them in a second
// (must pass), the host overwrites 64 KiB of the backing file, and a third boot's verify must
// fail. Proves the verify workload detects corruption the target did not cause.
void RunVerifyNegativeControl(GuestDisk& disk);

}  // namespace pollux::testing
