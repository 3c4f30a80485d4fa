// The shared I/O arena: I/O memory that another process maps too. A vhost-user back-end
// (qemu-storage-daemon, ...) must map every buffer the front-end hands it, and it learns the
// memory once, from SET_MEM_TABLE (fds passed over a Unix socket). So the process has ONE
// arena: a memfd ("pollux-shared-io") sized as a large sparse reservation (64 GiB by default;
// pages exist only once touched), mapped once MAP_SHARED | MAP_NORESERVE and never moved.
// The front-end sends that one region (fd, base, size, offset 0) at attach; every later
// allocation is already inside it, so the memory table never changes while I/O runs.
//
// Allocations are carved from the arena first-fit, 4 KiB aligned, populated (the data path
// never faults), zeroed. A freed range is punched out of the memfd: its RAM goes back to the
// kernel and the next user reads zeroes. Allocating and freeing take a mutex (control path,
// and the bdev layer's bounce buffers for callers whose buffers are not shared).
//
// Threads: any. InSharedIoMemory is lock-free (two loads and a few compares).
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pollux {

inline constexpr uint64_t kDefaultSharedIoArenaSize = 64ull << 30;
// SetSharedIoArenaSize takes multiples of this, from kMinSharedIoArenaSize.
inline constexpr uint64_t kSharedIoArenaGranule = 2ull << 20;
inline constexpr uint64_t kMinSharedIoArenaSize = 16ull << 20;

// What a vhost-user front-end hands its back-end: the whole arena is one region at offset 0
// of `fd`. The fd stays open (close-on-exec) for the life of the process.
struct SharedIoArenaInfo {
  void* base;
  uint64_t size;
  int fd;
};

// The arena's size when it is created: a multiple of kSharedIoArenaGranule, at least
// kMinSharedIoArenaSize (InvalidArgument otherwise). FailedPrecondition once the arena exists.
absl::Status SetSharedIoArenaSize(uint64_t bytes);

// The arena, created on the first call (from any allocation or this) and the same afterwards.
// A failed creation is reported and tried again by the next call.
absl::StatusOr<SharedIoArenaInfo> SharedIoArena();

// `size` bytes (rounded up to 4 KiB) for `owner` (named in errors), aligned to `alignment`
// (a power of two; at least 4 KiB), zeroed and populated. ResourceExhausted when the arena or
// the machine's RAM cannot hold it: the message says how much was asked and what is left.
absl::StatusOr<void*> AllocateSharedIo(uint64_t size, std::string_view owner,
                                       uint64_t alignment = 4096);

// Returns what AllocateSharedIo gave (nullptr: nothing). Its pages go back to the kernel.
void FreeSharedIo(void* data) noexcept;

// Bytes allocated from the arena now (rounded sizes), for leak checks.
uint64_t SharedIoBytesAllocated();

namespace shared_io_internal {

// The arena's bounds for InSharedIoMemory, set once when it is created. Own cache line: read
// on the data path by every core, never written again.
struct alignas(64) ArenaBounds {
  std::atomic<uintptr_t> base{0};
  std::atomic<uint64_t> size{0};  // 0: no arena (yet)
};
extern constinit ArenaBounds arena_bounds;

}  // namespace shared_io_internal

// Whether [p, p + len) lies inside the arena (false before it exists, and for len 0 at its
// very end). For the data path: two loads and compares.
inline bool InSharedIoMemory(const void* p, uint64_t len) noexcept {
  // Acquire pairs with the release store of size made after base: whoever sees the size sees
  // the base. (A pointer into the arena reached this thread after the arena was made anyway.)
  const uint64_t size = shared_io_internal::arena_bounds.size.load(std::memory_order_acquire);
  const uintptr_t base = shared_io_internal::arena_bounds.base.load(std::memory_order_relaxed);
  // Unsigned: a pointer below base wraps to a huge offset; no sum that could overflow.
  const uint64_t offset = reinterpret_cast<uintptr_t>(p) - base;
  return offset < size && len <= size - offset;
}

}  // namespace pollux
