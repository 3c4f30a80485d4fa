// The process-wide pool of BdevIo objects (a DPDK mempool, filled once at layer start-up), the
// data buffer pools lent to reads without a buffer (bdev_buffer_pool.h), and the IoDevice whose
// per-thread channel is each thread's BdevThreadContext. Private.
#pragma once

#include <rte_mempool.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/status/statusor.h"
#include "bdev_buffer_pool.h"
#include "pollux/bdev/bdev.h"
#include "pollux/bdev/bdev_io.h"
#include "pollux/reactor/io_channel.h"

namespace pollux {

class BdevBufferCache;

class BdevIoPool : public IoDevice {
 public:
  // Creates options.bdev_io_pool_size objects, each sizeof(BdevIo) plus `context_size` bytes
  // of module scratch, and the ordinary data buffer pools.
  static absl::StatusOr<std::unique_ptr<BdevIoPool>> Create(const BdevLayerOptions& options,
                                                            size_t context_size);
  ~BdevIoPool() override;

  // Bulk moves between the shared pool and a thread's cache. Any thread.
  bool GetBulk(BdevIo** ios, unsigned count) noexcept {
    return rte_mempool_get_bulk(mempool_, reinterpret_cast<void**>(ios), count) == 0;
  }
  void PutBulk(BdevIo* const* ios, unsigned count) noexcept {
    rte_mempool_put_bulk(mempool_, reinterpret_cast<void* const*>(ios), count);
  }
  unsigned available() const { return rte_mempool_avail_count(mempool_); }
  uint32_t count() const { return count_; }
  uint32_t cache_size() const { return cache_size_; }

  // Data buffer pool `index` (BdevBufferPoolIndex), or nullptr for a shared one not made yet.
  BdevBufferPool* buffer_pool(int index) const noexcept {
    return buffer_pools_[index].load(std::memory_order_acquire);
  }
  // Makes the shared pools (on the first need of either; nullptr when the arena cannot hold
  // them, logged once), and returns pool `index`. Any thread; takes a mutex.
  BdevBufferPool* MakeSharedBufferPools(int index) noexcept;
  // Per-thread cache capacity of pool `index` (at least 1).
  uint32_t buffer_cache_size(int index) const {
    return index == kSmallBufferPool || index == kSharedSmallBufferPool ? small_cache_size_
                                                                        : large_cache_size_;
  }
  // Every thread's cache, for the statistics (GetBdevBufferPoolStats).
  void AddBufferCache(BdevBufferCache* cache);
  void RemoveBufferCache(BdevBufferCache* cache);
  std::vector<BdevBufferPoolStats> BufferStats() const;

  // A zeroed, page-aligned buffer that emulated WRITE_ZEROES writes from.
  void* zero_buffer() const { return zero_buffer_; }
  static constexpr size_t kZeroBufferSize = 1 << 20;

 protected:
  std::unique_ptr<ChannelContext> CreateChannelContext() override;

 private:
  BdevIoPool() : IoDevice("bdev_io_pool") {}
  static void ConstructIo(rte_mempool* mempool, void* arg, void* obj, unsigned index);

  rte_mempool* mempool_ = nullptr;
  void* zero_buffer_ = nullptr;
  uint32_t count_ = 0;
  uint32_t cache_size_ = 0;

  // Owned here; published in buffer_pools_ (the shared ones by MakeSharedBufferPools).
  std::unique_ptr<BdevBufferPool> owned_buffer_pools_[kBufferPoolCount];
  std::atomic<BdevBufferPool*> buffer_pools_[kBufferPoolCount]{};
  uint32_t small_cache_size_ = 1;
  uint32_t large_cache_size_ = 1;
  // Made when the ordinary ones are: they get the same counts.
  uint32_t small_buffer_count_ = 0;
  uint32_t large_buffer_count_ = 0;
  mutable std::mutex buffer_mutex_;  // the shared pools' creation, the caches' list
  bool shared_buffers_failed_ = false;
  std::vector<BdevBufferCache*> buffer_caches_;
  // Requests that waited, summed from caches already gone.
  uint64_t retired_waits_[kBufferPoolCount]{};
};

// The layer's pool, or nullptr before InitBdevLayer / after FiniBdevLayer.
BdevIoPool* GetBdevIoPool();
void SetBdevIoPool(std::unique_ptr<BdevIoPool> pool);
std::unique_ptr<BdevIoPool> TakeBdevIoPool();

}  // namespace pollux
