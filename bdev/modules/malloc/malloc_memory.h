// The memory behind one malloc bdev: zeroed, 4 KiB aligned, every page populated at creation,
// freed on destruction (RAII). Private to the module.
//
// Where it comes from depends on the EAL:
// - with hugepages, DPDK's heap (rte_zmalloc_socket): hugepage-backed, shared with the rest of
//   the app, bounded by --mem-size;
// - without (--no-huge, the default on these machines), the kernel: a private anonymous mapping
//   with transparent huge pages asked for (MADV_HUGEPAGE). DPDK's no-huge memory is a memfd
//   (shmem) mapping, which the kernel backs with 4 KiB pages only (shmem THP is off by
//   default), and a random 4 KiB read from a RAM disk of 4 KiB pages is one TLB miss per page
//   it touches: on this VM that costs a fifth of the read (docs/performance.md, issue 3). The
//   memory is just as pinned to the bdev's life and as zeroed; no device DMAs into a RAM disk,
//   so nothing needs it to be DPDK's.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace pollux {

class MallocMemory {
 public:
  // `size` bytes for the bdev `name` (named in errors). ResourceExhausted when the memory is
  // not there: the message says how much was asked and what is available.
  static absl::StatusOr<MallocMemory> Allocate(uint64_t size, const std::string& name);

  MallocMemory(MallocMemory&& other) noexcept;
  MallocMemory& operator=(MallocMemory&& other) = delete;
  MallocMemory(const MallocMemory&) = delete;
  MallocMemory& operator=(const MallocMemory&) = delete;
  ~MallocMemory();

  uint8_t* data() const { return data_; }
  // "DPDK hugepages" or "anonymous memory (transparent huge pages)", for bdev_get_bdevs.
  const char* source() const { return mapped_size_ != 0 ? kAnonymousSource : kDpdkSource; }

  // Bytes all live malloc bdevs hold from the kernel (the no-huge case), for leak checks.
  static uint64_t KernelBytesHeld();

 private:
  static constexpr const char* kDpdkSource = "DPDK memory";
  static constexpr const char* kAnonymousSource = "anonymous memory (transparent huge pages)";

  MallocMemory(uint8_t* data, uint64_t mapped_size) : data_(data), mapped_size_(mapped_size) {}

  uint8_t* data_ = nullptr;
  uint64_t mapped_size_ = 0;  // non-zero: an mmap of this length; zero: DPDK memory
};

// "256 MiB", "1.5 GiB", "4 KiB", "100 bytes": sizes for error messages.
std::string FormatSize(uint64_t bytes);

}  // namespace pollux
