#include "bdev_io_pool.h"

#include <rte_errno.h>
#include <rte_malloc.h>

#include <atomic>
#include <new>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "bdev_thread_context.h"

namespace pollux {
namespace {

std::atomic<int> pool_generation{0};
std::unique_ptr<BdevIoPool> layer_pool;
std::atomic<BdevIoPool*> layer_pool_ptr{nullptr};

}  // namespace

absl::StatusOr<std::unique_ptr<BdevIoPool>> BdevIoPool::Create(uint32_t count,
                                                               size_t context_size,
                                                               uint32_t cache_size) {
  if (count < 64) {
    return absl::InvalidArgumentError(
        absl::StrFormat("bdev_io_pool_size %u is too small (at least 64)", count));
  }
  if (cache_size == 0 || cache_size > count / 2) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "bdev_io_cache_size %u must be between 1 and half the pool (%u)", cache_size, count / 2));
  }
  std::unique_ptr<BdevIoPool> pool(new BdevIoPool());
  size_t element = sizeof(BdevIo) + RTE_ALIGN_CEIL(context_size, alignof(BdevIo));
  // A unique name per pool: layers are started and stopped many times in one test process.
  std::string name = absl::StrFormat("bdev_io_%d", pool_generation.fetch_add(1));
  // No mempool cache: lightweight threads move between lcores and run on non-EAL threads too,
  // so the per-thread cache is the layer's own (BdevThreadContext).
  pool->mempool_ = rte_mempool_create(name.c_str(), count, element, 0, 0, nullptr, nullptr,
                                      nullptr, nullptr, SOCKET_ID_ANY, 0);
  if (pool->mempool_ == nullptr) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "cannot create the BdevIo pool (%u objects of %zu bytes, %zu MiB) in DPDK memory: %s",
        count, element, count * element >> 20, rte_strerror(rte_errno)));
  }
  // Each element holds a BdevIo for the mempool's whole life (trivially destructible state).
  rte_mempool_obj_iter(pool->mempool_, &BdevIoPool::ConstructIo, nullptr);
  pool->zero_buffer_ = rte_zmalloc("bdev_zero_buffer", kZeroBufferSize, 4096);
  if (pool->zero_buffer_ == nullptr) {
    return absl::ResourceExhaustedError("cannot allocate the 1 MiB zero buffer in DPDK memory");
  }
  pool->count_ = count;
  pool->cache_size_ = cache_size;
  pool->RegisterIoDevice();
  return pool;
}

void BdevIoPool::ConstructIo(rte_mempool*, void*, void* obj, unsigned) { new (obj) BdevIo(); }

BdevIoPool::~BdevIoPool() {
  if (mempool_ != nullptr) rte_mempool_free(mempool_);
  rte_free(zero_buffer_);
}

std::unique_ptr<ChannelContext> BdevIoPool::CreateChannelContext() {
  return std::make_unique<BdevThreadContext>(*this);
}

BdevIoPool* GetBdevIoPool() { return layer_pool_ptr.load(std::memory_order_acquire); }

void SetBdevIoPool(std::unique_ptr<BdevIoPool> pool) {
  layer_pool = std::move(pool);
  layer_pool_ptr.store(layer_pool.get(), std::memory_order_release);
}

std::unique_ptr<BdevIoPool> TakeBdevIoPool() {
  layer_pool_ptr.store(nullptr, std::memory_order_release);
  return std::move(layer_pool);
}

}  // namespace pollux
