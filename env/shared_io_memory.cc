// The shared I/O arena (pollux/env/shared_io_memory.h): its creation, and a first-fit
// allocator over its 4 KiB pages.
#include "pollux/env/shared_io_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>

#include "absl/strings/str_format.h"
#include "memory_pages.h"
#include "pollux/env/log.h"

namespace pollux {

namespace shared_io_internal {
constinit ArenaBounds arena_bounds;
}  // namespace shared_io_internal

namespace {

using memory_pages::AvailableRam;
using memory_pages::FormatSize;
using memory_pages::Populate;

constexpr uint64_t kPage = 4096;
// Larger allocations are checked against the machine's free RAM first: populating more than
// there is wakes the OOM killer instead of failing. Smaller ones (bounce buffers, made per
// I/O) skip the read of /proc/meminfo, as a few MiB do not decide it.
constexpr uint64_t kRamCheckThreshold = 64ull << 20;

// Everything the mutex guards. Never destroyed: an IoMemory held by a static object may be
// freed during exit, after this file's statics would have been destroyed.
struct Arena {
  std::mutex mutex;
  uint64_t size_to_create = kDefaultSharedIoArenaSize;
  uint8_t* base = nullptr;  // nullptr until created; then fixed for the life of the process
  uint64_t size = 0;
  int fd = -1;
  std::map<uint64_t, uint64_t> free;  // offset -> length, in address order, coalesced
  std::map<uint64_t, uint64_t> used;  // offset -> length of each live allocation
  uint64_t allocated = 0;
};

Arena& TheArena() {
  static Arena* arena = new Arena;
  return *arena;
}

absl::Status CreationError(int error, uint64_t size, const char* call) {
  return absl::Status(absl::ErrnoToStatusCode(error),
                      absl::StrFormat("cannot create the shared I/O arena (%s): %s: %s (a "
                                      "smaller one can be asked for with SetSharedIoArenaSize)",
                                      FormatSize(size), call, strerror(error)));
}

absl::Status CreateLocked(Arena& a) {
  if (a.base != nullptr) return absl::OkStatus();
  const uint64_t size = a.size_to_create;
  const int fd = memfd_create("pollux-shared-io", MFD_CLOEXEC);
  if (fd < 0) return CreationError(errno, size, "memfd_create");
  // Sparse: a memfd's pages exist only once touched, so the size costs no RAM.
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    const int error = errno;
    close(fd);
    return CreationError(error, size, "ftruncate");
  }
  // MAP_NORESERVE: no commit charge for the reservation, only for the pages used.
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
  if (p == MAP_FAILED) {
    const int error = errno;
    close(fd);
    return CreationError(error, size, "mmap");
  }
  a.base = static_cast<uint8_t*>(p);
  a.size = size;
  a.fd = fd;
  a.free.emplace(0, size);
  // Base first, then size with release: InSharedIoMemory loads size with acquire, so a reader
  // that sees the size sees the base.
  shared_io_internal::arena_bounds.base.store(reinterpret_cast<uintptr_t>(p),
                                              std::memory_order_relaxed);
  shared_io_internal::arena_bounds.size.store(size, std::memory_order_release);
  return absl::OkStatus();
}

// Where the first free range that holds `length` bytes at an `alignment`-aligned address
// would place them, or nullopt.
std::optional<uint64_t> FirstFit(const Arena& a, uint64_t length, uint64_t alignment) {
  const uintptr_t base = reinterpret_cast<uintptr_t>(a.base);
  for (const auto& [offset, free_length] : a.free) {
    const uint64_t start = ((base + offset + alignment - 1) & ~(alignment - 1)) - base;
    const uint64_t skipped = start - offset;
    if (skipped < free_length && length <= free_length - skipped) return start;
  }
  return std::nullopt;
}

// Moves [start, start + length), inside one free range, from free to used.
void TakeLocked(Arena& a, uint64_t start, uint64_t length) {
  auto range = std::prev(a.free.upper_bound(start));
  const uint64_t offset = range->first;
  const uint64_t end = start + length;
  const uint64_t free_end = offset + range->second;
  a.free.erase(range);
  if (start > offset) a.free.emplace(offset, start - offset);
  if (free_end > end) a.free.emplace(end, free_end - end);
  a.used.emplace(start, length);
  a.allocated += length;
}

// Returns [offset, offset + length) to the free ranges, merged with its free neighbours so
// that a large allocation can reuse what small ones left.
void InsertFreeLocked(Arena& a, uint64_t offset, uint64_t length) {
  auto next = a.free.lower_bound(offset);
  if (next != a.free.end() && offset + length == next->first) {
    length += next->second;
    next = a.free.erase(next);
  }
  if (next != a.free.begin()) {
    auto previous = std::prev(next);
    if (previous->first + previous->second == offset) {
      previous->second += length;
      return;
    }
  }
  a.free.emplace_hint(next, offset, length);
}

absl::Status NoRoom(const Arena& a, uint64_t size, std::string_view owner) {
  uint64_t free_bytes = 0;
  uint64_t largest = 0;
  for (const auto& [offset, length] : a.free) {
    free_bytes += length;
    largest = std::max(largest, length);
  }
  return absl::ResourceExhaustedError(absl::StrFormat(
      "cannot allocate %s for %s from the shared I/O arena: %s of its %s are free, the largest "
      "free range is %s (SetSharedIoArenaSize sets its size before first use)",
      FormatSize(size), owner, FormatSize(free_bytes), FormatSize(a.size), FormatSize(largest)));
}

// Gives the pages of a freed range back to the kernel: the next user of the range reads
// zeroes, and the memory is not held while nobody uses it. Any thread, without the mutex.
void ReturnPages(const Arena& a, uint64_t offset, uint64_t length) {
  if (fallocate(a.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                static_cast<off_t>(length)) == 0) {
    return;
  }
  // Not expected (shmem punches holes since 3.5): keep the promise of zeroes at least.
  PX_LOG(kWarning, "env", "shared I/O arena: cannot punch out %s at offset %lu: %s; zeroing it",
         FormatSize(length), offset, strerror(errno));
  std::memset(a.base + offset, 0, length);
}

}  // namespace

absl::Status SetSharedIoArenaSize(uint64_t bytes) {
  Arena& a = TheArena();
  std::lock_guard lock(a.mutex);
  if (a.base != nullptr) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "the shared I/O arena exists already (%s): its size is set before the first shared "
        "allocation",
        FormatSize(a.size)));
  }
  if (bytes < kMinSharedIoArenaSize || bytes % kSharedIoArenaGranule != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "shared I/O arena size %s: must be a multiple of %s, at least %s", FormatSize(bytes),
        FormatSize(kSharedIoArenaGranule), FormatSize(kMinSharedIoArenaSize)));
  }
  a.size_to_create = bytes;
  return absl::OkStatus();
}

absl::StatusOr<SharedIoArenaInfo> SharedIoArena() {
  Arena& a = TheArena();
  std::lock_guard lock(a.mutex);
  if (absl::Status s = CreateLocked(a); !s.ok()) return s;
  return SharedIoArenaInfo{a.base, a.size, a.fd};
}

absl::StatusOr<void*> AllocateSharedIo(uint64_t size, std::string_view owner, uint64_t alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: alignment %u is not a power of two", owner, alignment));
  }
  alignment = std::max(alignment, kPage);
  Arena& a = TheArena();
  uint64_t start = 0;
  uint64_t length = 0;
  {
    std::lock_guard lock(a.mutex);
    if (absl::Status s = CreateLocked(a); !s.ok()) {
      return absl::Status(s.code(), absl::StrFormat("cannot allocate %s for %s: %s",
                                                    FormatSize(size), owner, s.message()));
    }
    // Larger than the arena never fits; below that, rounding cannot overflow.
    if (size > a.size) return NoRoom(a, size, owner);
    length = (std::max<uint64_t>(size, 1) + kPage - 1) & ~(kPage - 1);
    std::optional<uint64_t> fit = FirstFit(a, length, alignment);
    if (!fit) return NoRoom(a, size, owner);
    start = *fit;
    TakeLocked(a, start, length);
  }
  // Outside the mutex, as populating gigabytes takes long; the range is ours already.
  absl::Status s;
  if (length >= kRamCheckThreshold) {
    const uint64_t available = AvailableRam();
    if (available != 0 && length > available) {
      s = absl::ResourceExhaustedError(
          absl::StrFormat("the machine has %s of RAM available", FormatSize(available)));
    }
  }
  if (s.ok()) s = Populate(a.base + start, length);
  if (!s.ok()) {
    FreeSharedIo(a.base + start);
    return absl::ResourceExhaustedError(
        absl::StrFormat("cannot allocate %s for %s from the shared I/O arena: %s", FormatSize(size),
                        owner, s.message()));
  }
  return a.base + start;
}

void FreeSharedIo(void* data) noexcept {
  if (data == nullptr) return;
  Arena& a = TheArena();
  uint64_t offset = 0;
  uint64_t length = 0;
  {
    std::lock_guard lock(a.mutex);
    // Integers, not pointer arithmetic: `data` may be any pointer (a caller's mistake).
    auto allocation =
        a.used.find(reinterpret_cast<uintptr_t>(data) - reinterpret_cast<uintptr_t>(a.base));
    if (a.base == nullptr || allocation == a.used.end()) {
      PX_LOG(kError, "env", "FreeSharedIo: %p is no allocation of the shared I/O arena", data);
      return;
    }
    offset = allocation->first;
    length = allocation->second;
    a.used.erase(allocation);
    a.allocated -= length;
  }
  // Outside the mutex (a punch of gigabytes takes long); the range is nobody's until listed.
  ReturnPages(a, offset, length);
  std::lock_guard lock(a.mutex);
  InsertFreeLocked(a, offset, length);
}

uint64_t SharedIoBytesAllocated() {
  Arena& a = TheArena();
  std::lock_guard lock(a.mutex);
  return a.allocated;
}

}  // namespace pollux
