#include "pollux/env/io_memory.h"

#include <rte_eal.h>
#include <rte_malloc.h>
#include <rte_memory.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/strings/str_format.h"
#include "memory_pages.h"
#include "pollux/env/shared_io_memory.h"

namespace pollux {
namespace memory_pages {

std::string FormatSize(uint64_t bytes) {
  constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return absl::StrFormat("%u byte%s", bytes, bytes == 1 ? "" : "s");
  double value = static_cast<double>(bytes) / 1024;
  int unit = 0;
  while (value >= 1024 && unit < 5) {
    value /= 1024;
    ++unit;
  }
  if (value == static_cast<double>(static_cast<uint64_t>(value))) {
    return absl::StrFormat("%u %s", static_cast<uint64_t>(value), kUnits[unit]);
  }
  return absl::StrFormat("%.1f %s", value, kUnits[unit]);
}

uint64_t AvailableRam() {
  FILE* f = std::fopen("/proc/meminfo", "r");
  if (f == nullptr) return 0;
  char line[256];
  uint64_t kib = 0;
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    unsigned long long value = 0;
    if (std::sscanf(line, "MemAvailable: %llu kB", &value) == 1) {
      kib = value;
      break;
    }
  }
  std::fclose(f);
  return kib * 1024;
}

// Maps every page of [data, data + size) now. A page fault on the data path costs tens of
// microseconds on a VM: a fresh 256 MiB disk would spend its first 65536 I/Os faulting.
// MADV_POPULATE_WRITE populates the range in one call and reports a shortage of RAM as ENOMEM
// instead of the OOM killer later; kernels before 5.14 get one write per page.
absl::Status Populate(uint8_t* data, size_t size) {
#ifdef MADV_POPULATE_WRITE
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  // The page-aligned cover may include neighbouring DPDK memory: populating changes no
  // contents, so that is harmless.
  uintptr_t start = reinterpret_cast<uintptr_t>(data) & ~(page - 1);
  uintptr_t end = (reinterpret_cast<uintptr_t>(data) + size + page - 1) & ~(page - 1);
  if (madvise(reinterpret_cast<void*>(start), end - start, MADV_POPULATE_WRITE) == 0) {
    return absl::OkStatus();
  }
  // ENOMEM: no RAM left; EFAULT: shared memory (behind a DPDK mapping, or the shared I/O
  // arena) could not grow.
  if (errno == ENOMEM || errno == EFAULT) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("cannot back %s with RAM: %s", FormatSize(size), strerror(errno)));
  }
#endif
  // Older kernel (EINVAL): the memory is zeroed already, so writing zero every 4 KiB (the
  // smallest page size) only faults the pages in.
  for (size_t offset = 0; offset < size; offset += 4096) {
    reinterpret_cast<volatile uint8_t*>(data)[offset] = 0;
  }
  return absl::OkStatus();
}

}  // namespace memory_pages

namespace {

using memory_pages::AvailableRam;
using memory_pages::FormatSize;
using memory_pages::Populate;

// 4 KiB alignment: page-aligned like SPDK's, so that any block size up to a page never
// straddles a page and the memcpy of aligned requests runs on aligned data.
constexpr size_t kBufferAlignment = 4096;
// Mappings are cut to whole 2 MiB pages, so that the kernel can back all of one with huge pages.
constexpr uint64_t kHugePageSize = 2ull << 20;

std::atomic<uint64_t> kernel_bytes_held{0};
std::atomic<uint64_t> kernel_bytes_limit{0};  // 0: only the machine's RAM bounds it

// The largest block DPDK's heaps could hand out now, over every NUMA node.
uint64_t LargestFreeDpdkBlock() {
  uint64_t largest = 0;
  for (unsigned i = 0; i < rte_socket_count(); ++i) {
    rte_malloc_socket_stats stats{};
    if (rte_malloc_get_socket_stats(rte_socket_id_by_idx(i), &stats) == 0) {
      largest = std::max<uint64_t>(largest, stats.greatest_free_size);
    }
  }
  return largest;
}

}  // namespace

absl::StatusOr<IoMemory> IoMemory::Allocate(uint64_t size, const std::string& owner) {
  if (rte_eal_has_hugepages()) {
    auto* data = static_cast<uint8_t*>(
        rte_zmalloc_socket("pollux_io_memory", size, kBufferAlignment, SOCKET_ID_ANY));
    if (data == nullptr) {
      return absl::ResourceExhaustedError(absl::StrFormat(
          "cannot allocate %s for %s from DPDK memory (the largest free block is %s; give "
          "the app more with --mem-size)",
          FormatSize(size), owner, FormatSize(LargestFreeDpdkBlock())));
    }
    IoMemory memory(data, 0, false);
    if (absl::Status s = Populate(data, size); !s.ok()) {
      return absl::ResourceExhaustedError(absl::StrFormat("%s: %s", owner, s.message()));
    }
    memory.region_ = IoRegion::Publish(data, size);
    return memory;
  }

  // Refused up front when it cannot fit: populating more than the machine has would wake the
  // OOM killer rather than fail.
  const uint64_t available = AvailableRam();
  if (size > UINT64_MAX - kHugePageSize || (available != 0 && size > available)) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("cannot allocate %s for %s: the machine has %s of RAM available",
                        FormatSize(size), owner, FormatSize(available)));
  }
  const uint64_t mapped = (size + kHugePageSize - 1) & ~(kHugePageSize - 1);
  // Counted before the mapping, so that concurrent allocations cannot pass the limit together.
  const uint64_t held = kernel_bytes_held.fetch_add(mapped, std::memory_order_relaxed);
  const uint64_t limit = kernel_bytes_limit.load(std::memory_order_relaxed);
  if (limit != 0 && (mapped > limit || held > limit - mapped)) {
    kernel_bytes_held.fetch_sub(mapped, std::memory_order_relaxed);
    return absl::ResourceExhaustedError(absl::StrFormat(
        "cannot allocate %s for %s: the process may hold %s of I/O memory, and holds %s",
        FormatSize(size), owner, FormatSize(limit), FormatSize(held)));
  }
  void* p = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    kernel_bytes_held.fetch_sub(mapped, std::memory_order_relaxed);
    return absl::ResourceExhaustedError(absl::StrFormat("cannot allocate %s for %s: mmap: %s",
                                                        FormatSize(size), owner, strerror(errno)));
  }
  // Advice: where the kernel has no huge page to give, 4 KiB pages still work.
  madvise(p, mapped, MADV_HUGEPAGE);
  IoMemory memory(static_cast<uint8_t*>(p), mapped, false);
  if (absl::Status s = Populate(memory.data_, mapped); !s.ok()) {
    return absl::ResourceExhaustedError(absl::StrFormat("%s: %s", owner, s.message()));
  }
  memory.region_ = IoRegion::Publish(memory.data_, mapped);
  return memory;
}

absl::StatusOr<IoMemory> IoMemory::AllocateShared(uint64_t size, const std::string& owner) {
  // Zeroed (a fresh or punched-out range of the memfd), page-aligned and populated already.
  absl::StatusOr<void*> data = AllocateSharedIo(size, owner, kBufferAlignment);
  if (!data.ok()) return data.status();
  IoMemory memory(static_cast<uint8_t*>(*data), 0, true);
  memory.region_ = IoRegion::Publish(*data, size);
  return memory;
}

IoMemory::IoMemory(IoMemory&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      mapped_size_(std::exchange(other.mapped_size_, 0)),
      shared_(std::exchange(other.shared_, false)),
      region_(std::move(other.region_)) {}

IoMemory& IoMemory::operator=(IoMemory&& other) noexcept {
  if (this != &other) {
    Release();
    data_ = std::exchange(other.data_, nullptr);
    mapped_size_ = std::exchange(other.mapped_size_, 0);
    shared_ = std::exchange(other.shared_, false);
    region_ = std::move(other.region_);
  }
  return *this;
}

IoMemory::~IoMemory() { Release(); }

void IoMemory::Release() {
  if (data_ == nullptr) return;
  // First, so that no engine keeps using the range as registered once the address is free.
  region_.Withdraw();
  if (shared_) {
    FreeSharedIo(data_);
  } else if (mapped_size_ != 0) {
    munmap(data_, mapped_size_);
    kernel_bytes_held.fetch_sub(mapped_size_, std::memory_order_relaxed);
  } else {
    rte_free(data_);
  }
  data_ = nullptr;
  mapped_size_ = 0;
  shared_ = false;
}

uint64_t IoMemory::KernelBytesHeld() {
  return kernel_bytes_held.load(std::memory_order_relaxed);
}

void IoMemory::SetKernelBytesLimit(uint64_t bytes) {
  kernel_bytes_limit.store(bytes, std::memory_order_relaxed);
}

}  // namespace pollux
