// BdevBufferPool: fixed-size data buffers the layer lends to reads submitted without a buffer
// of their own (SPDK's iobuf pools behind spdk_bdev_io_get_buf): one block of I/O memory cut
// into `count` buffers, and a lock-free ring of the free ones. The layer has four: 8 KiB and
// 132 KiB buffers in ordinary I/O memory (made with the BdevIo pool), and the same two sizes
// in the shared I/O arena for bdevs that require shared memory (made on first need).
//
// Why a ring over IoMemory and not an rte_mempool: the memory is the same IoMemory as a malloc
// bdev's disk (transparent huge pages without hugepages, published for io_uring's registered
// buffers; io_memory.h says what that saves), or the shared arena, which a mempool cannot
// use; and the per-thread cache in front of it is the layer's own (BdevBufferCache), as for
// BdevIo objects, because lightweight threads move between lcores and run on non-EAL threads,
// where rte_mempool's per-lcore cache does not work.
//
// Threads: any (the ring is multi-producer, multi-consumer); only the per-thread caches touch
// it, in bulk. Private.
#pragma once

#include <rte_ring.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "pollux/env/io_memory.h"

namespace pollux {

// The pools, by index: what BdevIo::buffer_pool_ records.
enum BdevBufferPoolIndex : int8_t {
  kNoBufferPool = -1,
  kSmallBufferPool = 0,
  kLargeBufferPool,
  kSharedSmallBufferPool,
  kSharedLargeBufferPool,
};
inline constexpr int kBufferPoolCount = 4;

// Buffer sizes (SPDK's iobuf defaults): the large one is 128 KiB, the usual largest request,
// plus room to align it to up to 8 KiB.
inline constexpr uint32_t kSmallBufferSize = 8 << 10;
inline constexpr uint32_t kLargeBufferSize = 132 << 10;

class BdevBufferPool {
 public:
  // `count` buffers of `buffer_size` bytes (a multiple of 4 KiB: each buffer is 4 KiB
  // aligned), from the shared I/O arena when `shared`. `name` names the pool in errors.
  static absl::StatusOr<std::unique_ptr<BdevBufferPool>> Create(const std::string& name,
                                                                uint32_t count,
                                                                uint32_t buffer_size, bool shared);
  ~BdevBufferPool();
  BdevBufferPool(const BdevBufferPool&) = delete;
  BdevBufferPool& operator=(const BdevBufferPool&) = delete;

  // Takes up to `count` free buffers (fewer when the ring holds fewer); returns how many.
  unsigned GetBulk(void** buffers, unsigned count) noexcept {
    return rte_ring_mc_dequeue_burst(ring_, buffers, count, nullptr);
  }
  void PutBulk(void* const* buffers, unsigned count) noexcept {
    rte_ring_mp_enqueue_bulk(ring_, buffers, count, nullptr);
  }

  uint32_t count() const { return count_; }
  uint32_t buffer_size() const { return buffer_size_; }
  bool shared() const { return memory_.shared(); }
  // Free buffers in the ring (not counting those in threads' caches).
  unsigned available() const { return rte_ring_count(ring_); }

 private:
  BdevBufferPool(IoMemory memory, rte_ring* ring, uint32_t count, uint32_t buffer_size)
      : memory_(std::move(memory)), ring_(ring), count_(count), buffer_size_(buffer_size) {}

  IoMemory memory_;
  rte_ring* ring_;
  uint32_t count_;
  uint32_t buffer_size_;
};

}  // namespace pollux
