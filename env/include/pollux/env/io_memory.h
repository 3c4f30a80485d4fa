// Memory for data that the kernel or a copy loop touches on every I/O: a malloc bdev's disk,
// pollux-perf's I/O buffers. Zeroed, 4 KiB aligned, every page populated at allocation, freed
// on destruction (RAII).
//
// Where it comes from depends on the EAL:
// - with hugepages, DPDK's heap (rte_zmalloc_socket): hugepage-backed, shared with the rest of
//   the app, bounded by --mem-size;
// - without (--no-huge, the default on these machines), the kernel: a private anonymous mapping
//   with transparent huge pages asked for (MADV_HUGEPAGE). DPDK's no-huge memory is a memfd
//   (shmem) mapping, which the kernel backs with 4 KiB pages only (shmem THP is off by
//   default), and a random 4 KiB read from a RAM disk of 4 KiB pages is one TLB miss per page
//   it touches: on this VM that costs a fifth of the read (docs/performance.md, issue 3).
//   For O_DIRECT the difference is larger still: a huge page is physically contiguous, so a
//   128 KiB request into one is a single segment for the device instead of 32 (128 KiB reads
//   at depth 8 through io_uring: 14 K IOPS into DPDK's memory or 4 KiB anonymous pages, 33 K
//   into huge pages; docs/performance.md, issue 4), and a read into shmem pays the kernel a
//   locked dirtying per 4 KiB page (set_page_dirty_lock) that a huge page skips. pollux has no
//   user-space device driver, so nothing needs the memory to be DPDK's (no IOVA, no sharing
//   between processes).
//
// AllocateShared carves it from the shared I/O arena instead (pollux/env/shared_io_memory.h):
// memory another process maps too, for the buffers of a bdev whose back-end must map them.
//
// Every IoMemory is published as an I/O region (pollux/env/io_regions.h) for as long as it
// lives, so that io_uring channels can register it with their ring once.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "pollux/env/io_regions.h"

namespace pollux {

class IoMemory {
 public:
  // `size` bytes for `owner` (named in errors, e.g. "\"Malloc0\""). ResourceExhausted when the
  // memory is not there: the message says how much was asked and what is available.
  // After InitEal (it asks whether DPDK has hugepages).
  static absl::StatusOr<IoMemory> Allocate(uint64_t size, const std::string& owner);
  // The same from the shared I/O arena (created by the first call): memory a vhost-user
  // back-end maps. ResourceExhausted when the arena or RAM cannot hold it. Any time, no EAL.
  static absl::StatusOr<IoMemory> AllocateShared(uint64_t size, const std::string& owner);

  IoMemory() = default;
  IoMemory(IoMemory&& other) noexcept;
  IoMemory& operator=(IoMemory&& other) noexcept;
  IoMemory(const IoMemory&) = delete;
  IoMemory& operator=(const IoMemory&) = delete;
  ~IoMemory();

  uint8_t* data() const { return data_; }
  // Whether it lies in the shared I/O arena (AllocateShared).
  bool shared() const { return shared_; }

  // Bytes all live IoMemory hold from the kernel (the no-huge case, not the shared arena:
  // SharedIoBytesAllocated counts that), for leak checks.
  static uint64_t KernelBytesHeld();
  // A cap on KernelBytesHeld (0, the default: none; the machine's RAM still bounds it). For a
  // process that creates bdevs from requests it cannot trust, such as a fuzz target, so that
  // a request for gigabytes fails at once instead of populating them.
  static void SetKernelBytesLimit(uint64_t bytes);

 private:
  IoMemory(uint8_t* data, uint64_t mapped_size, bool shared)
      : data_(data), mapped_size_(mapped_size), shared_(shared) {}
  void Release();

  uint8_t* data_ = nullptr;
  uint64_t mapped_size_ = 0;  // non-zero: an mmap of this length; zero: DPDK or arena memory
  bool shared_ = false;       // from the shared I/O arena (FreeSharedIo)
  IoRegion region_;           // withdrawn before the memory is returned
};

}  // namespace pollux
