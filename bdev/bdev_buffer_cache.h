// BdevBufferCache: one thread's side of the layer's data buffer pools (SPDK's iobuf channel):
// a LIFO cache of free buffers per pool, refilled from and spilled to the pool's ring in bulk
// (so taking and returning a buffer is a few loads and stores, no atomic), the I/O waiting for
// a buffer, first come first served per pool, and how many buffers of each pool this thread's
// I/O hold.
//
// A waiting I/O is resumed by the next buffer of its pool returned on this thread: the buffers
// an I/O takes are given back on its own thread, so while this thread holds some, one comes
// back without anybody polling. Only when it holds none (the others are in other threads'
// I/O and caches) does the thread's poller look at the ring again, each poll, until it is
// served: starving() says when.
//
// Only its thread touches it (part of BdevThreadContext); the counts read by
// GetBdevBufferPoolStats are relaxed atomics. Private.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "bdev_buffer_pool.h"
#include "pollux/bdev/bdev_io.h"

namespace pollux {

class BdevChannel;
class BdevIoPool;

class BdevBufferCache {
 public:
  explicit BdevBufferCache(BdevIoPool& pool);
  // Gives the cached buffers back to their pools. No I/O may wait any more.
  ~BdevBufferCache();
  BdevBufferCache(const BdevBufferCache&) = delete;
  BdevBufferCache& operator=(const BdevBufferCache&) = delete;

  // Whether pool `index` can be used: the ordinary pools always; the shared ones once made
  // (made here on first need; false, logged, when the arena cannot hold them).
  bool Ready(int index) noexcept;
  // A free buffer of pool `index` (Ready), counted as held, or nullptr when this cache and the
  // pool are both empty.
  void* Take(int index) noexcept {
    Pool& p = pools_[index];
    void* buffer = p.cached != 0 ? p.cache[--p.cached] : Refill(p);
    if (buffer != nullptr) {
      ++p.held;
      PublishCached(p);
    }
    return buffer;
  }
  // A buffer of pool `index` coming back from an I/O: to the oldest waiter of that pool, which
  // is returned (still counted as held, now by it), or into the cache (nullptr returned).
  BdevIo* Return(int index, void* buffer) noexcept;

  // Queues `io` for a buffer of pool `index` (after Take found none).
  void Wait(int index, BdevIo& io) noexcept;
  // Takes `io` out of its queue.
  void Cancel(BdevIo& io) noexcept;
  // Takes out every waiting I/O of `channel` (an abort of them all), oldest first per pool.
  std::vector<BdevIo*> CancelChannel(const BdevChannel* channel);

  // Some pool has I/O waiting and this thread holds none of its buffers. One load and compare
  // when nothing waits: the thread's poller asks on every poll.
  bool starving() const noexcept { return waiting_ != 0 && StarvingSlow(); }
  // For a starving pool, serves waiters from the ring as far as it goes: the I/O that got a
  // buffer (in `served`, with `buffers`, oldest first).
  void ServeStarving(std::vector<std::pair<BdevIo*, void*>>& served);

  // Free buffers in this cache and buffers held by this thread's I/O, for the statistics
  // (any thread, relaxed).
  uint32_t cached(int index) const {
    return pools_[index].published_cached.load(std::memory_order_relaxed);
  }
  uint64_t waits(int index) const { return pools_[index].waits.load(std::memory_order_relaxed); }

 private:
  struct Pool {
    BdevBufferPool* pool = nullptr;
    std::vector<void*> cache;  // capacity: the options' per-thread cache size (at least 1)
    size_t cached = 0;
    uint32_t held = 0;               // taken by this thread's I/O and not returned yet
    BdevIo* waiting_head = nullptr;  // FIFO through BdevIo::next_
    BdevIo* waiting_tail = nullptr;
    std::atomic<uint32_t> published_cached{0};
    std::atomic<uint64_t> waits{0};  // requests that found no buffer
  };

  bool StarvingSlow() const noexcept;
  void* Refill(Pool& p) noexcept;
  void Spill(Pool& p) noexcept;
  static void PublishCached(Pool& p) noexcept {
    // A plain store on x86: the statistics read it from another thread.
    p.published_cached.store(static_cast<uint32_t>(p.cached), std::memory_order_relaxed);
  }
  BdevIo* PopWaiter(Pool& p) noexcept;

  BdevIoPool& io_pool_;
  uint32_t waiting_ = 0;  // I/O waiting, all pools
  Pool pools_[kBufferPoolCount];
};

}  // namespace pollux
