// The process-wide pool of BdevIo objects (a DPDK mempool, filled once at layer start-up) and
// the IoDevice whose per-thread channel is each thread's BdevThreadContext. Private.
#pragma once

#include <rte_mempool.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "pollux/bdev/bdev_io.h"
#include "pollux/reactor/io_channel.h"

namespace pollux {

class BdevIoPool : public IoDevice {
 public:
  // Creates `count` objects, each sizeof(BdevIo) plus `context_size` bytes of module scratch.
  static absl::StatusOr<std::unique_ptr<BdevIoPool>> Create(uint32_t count, size_t context_size,
                                                            uint32_t cache_size);
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
};

// The layer's pool, or nullptr before InitBdevLayer / after FiniBdevLayer.
BdevIoPool* GetBdevIoPool();
void SetBdevIoPool(std::unique_ptr<BdevIoPool> pool);
std::unique_ptr<BdevIoPool> TakeBdevIoPool();

}  // namespace pollux
