#include "bdev_io_pool.h"

#include <rte_errno.h>
#include <rte_malloc.h>

#include <algorithm>
#include <atomic>
#include <new>
#include <tuple>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "bdev_buffer_cache.h"
#include "bdev_thread_context.h"
#include "pollux/env/log.h"

namespace pollux {
namespace {

std::atomic<int> pool_generation{0};
std::unique_ptr<BdevIoPool> layer_pool;
std::atomic<BdevIoPool*> layer_pool_ptr{nullptr};

}  // namespace

absl::StatusOr<std::unique_ptr<BdevIoPool>> BdevIoPool::Create(const BdevLayerOptions& options,
                                                               size_t context_size) {
  const uint32_t count = options.bdev_io_pool_size;
  const uint32_t cache_size = options.bdev_io_cache_size;
  if (count < 64) {
    return absl::InvalidArgumentError(
        absl::StrFormat("bdev_io_pool_size %u is too small (at least 64)", count));
  }
  if (cache_size == 0 || cache_size > count / 2) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "bdev_io_cache_size %u must be between 1 and half the pool (%u)", cache_size, count / 2));
  }
  for (auto [name, pool_size, cache] :
       {std::tuple{"small_buf_pool_size", options.small_buf_pool_size,
                   options.iobuf_small_cache_size},
        std::tuple{"large_buf_pool_size", options.large_buf_pool_size,
                   options.iobuf_large_cache_size}}) {
    if (pool_size == 0) {
      return absl::InvalidArgumentError(absl::StrFormat("%s must be at least 1", name));
    }
    if (cache > pool_size / 8 && cache > 1) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "the per-thread cache of %s (%u) must be at most an eighth of the pool (%u): "
          "threads' caches would hold what another thread waits for",
          name, cache, pool_size / 8));
    }
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
  pool->small_cache_size_ = std::max<uint32_t>(options.iobuf_small_cache_size, 1);
  pool->large_cache_size_ = std::max<uint32_t>(options.iobuf_large_cache_size, 1);
  pool->small_buffer_count_ = options.small_buf_pool_size;
  pool->large_buffer_count_ = options.large_buf_pool_size;
  for (int index : {kSmallBufferPool, kLargeBufferPool}) {
    bool small = index == kSmallBufferPool;
    auto buffers = BdevBufferPool::Create(
        small ? "the bdev layer's 8 KiB buffers" : "the bdev layer's 132 KiB buffers",
        small ? options.small_buf_pool_size : options.large_buf_pool_size,
        small ? kSmallBufferSize : kLargeBufferSize, /*shared=*/false);
    if (!buffers.ok()) return buffers.status();
    pool->owned_buffer_pools_[index] = std::move(*buffers);
    pool->buffer_pools_[index].store(pool->owned_buffer_pools_[index].get(),
                                     std::memory_order_release);
  }
  pool->RegisterIoDevice();
  return pool;
}

void BdevIoPool::ConstructIo(rte_mempool*, void*, void* obj, unsigned) { new (obj) BdevIo(); }

BdevIoPool::~BdevIoPool() {
  if (mempool_ != nullptr) rte_mempool_free(mempool_);
  rte_free(zero_buffer_);
}

BdevBufferPool* BdevIoPool::MakeSharedBufferPools(int index) noexcept {
  std::lock_guard lock(buffer_mutex_);
  if (BdevBufferPool* made = buffer_pool(index)) return made;
  if (shared_buffers_failed_) return nullptr;
  // The first read without buffer on a bdev that requires shared memory: a one-time cost on
  // that I/O (an arena allocation, populated), instead of arena memory in every process.
  for (int shared : {kSharedSmallBufferPool, kSharedLargeBufferPool}) {
    bool small = shared == kSharedSmallBufferPool;
    auto buffers = BdevBufferPool::Create(
        small ? "the bdev layer's shared 8 KiB buffers" : "the bdev layer's shared 132 KiB buffers",
        small ? small_buffer_count_ : large_buffer_count_,
        small ? kSmallBufferSize : kLargeBufferSize, /*shared=*/true);
    if (!buffers.ok()) {
      PX_LOG(kError, "bdev",
             "%s: reads without buffer on bdevs that require shared memory will "
             "fail",
             buffers.status().message());
      owned_buffer_pools_[kSharedSmallBufferPool].reset();
      shared_buffers_failed_ = true;
      return nullptr;
    }
    owned_buffer_pools_[shared] = std::move(*buffers);
  }
  for (int shared : {kSharedSmallBufferPool, kSharedLargeBufferPool}) {
    buffer_pools_[shared].store(owned_buffer_pools_[shared].get(), std::memory_order_release);
  }
  return buffer_pool(index);
}

void BdevIoPool::AddBufferCache(BdevBufferCache* cache) {
  std::lock_guard lock(buffer_mutex_);
  buffer_caches_.push_back(cache);
}

void BdevIoPool::RemoveBufferCache(BdevBufferCache* cache) {
  std::lock_guard lock(buffer_mutex_);
  for (int index = 0; index < kBufferPoolCount; ++index)
    retired_waits_[index] += cache->waits(index);
  std::erase(buffer_caches_, cache);
}

std::vector<BdevBufferPoolStats> BdevIoPool::BufferStats() const {
  static constexpr const char* kNames[kBufferPoolCount] = {"small", "large", "shared_small",
                                                           "shared_large"};
  std::vector<BdevBufferPoolStats> stats;
  std::lock_guard lock(buffer_mutex_);
  for (int index = 0; index < kBufferPoolCount; ++index) {
    const BdevBufferPool* buffers = buffer_pool(index);
    BdevBufferPoolStats one{kNames[index],
                            index == kSmallBufferPool || index == kSharedSmallBufferPool
                                ? kSmallBufferSize
                                : kLargeBufferSize,
                            0, 0, retired_waits_[index]};
    if (buffers != nullptr) {
      one.count = buffers->count();
      one.free = buffers->available();
    }
    for (const BdevBufferCache* cache : buffer_caches_) {
      one.free += cache->cached(index);
      one.waits += cache->waits(index);
    }
    stats.push_back(one);
  }
  return stats;
}

std::vector<BdevBufferPoolStats> GetBdevBufferPoolStats() {
  BdevIoPool* pool = GetBdevIoPool();
  return pool != nullptr ? pool->BufferStats() : std::vector<BdevBufferPoolStats>{};
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
