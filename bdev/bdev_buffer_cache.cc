#include "bdev_buffer_cache.h"

#include <algorithm>

#include "bdev_io_pool.h"
#include "pollux/env/log.h"

namespace pollux {

BdevBufferCache::BdevBufferCache(BdevIoPool& pool) : io_pool_(pool) {
  for (int index = 0; index < kBufferPoolCount; ++index) {
    pools_[index].pool = pool.buffer_pool(index);
    pools_[index].cache.resize(pool.buffer_cache_size(index));
  }
  io_pool_.AddBufferCache(this);
}

BdevBufferCache::~BdevBufferCache() {
  // Every channel of the thread is gone, and each took its waiting I/O out first.
  if (waiting_ != 0) {
    PX_LOG(kError, "bdev", "thread context destroyed with %u I/O waiting for a data buffer",
           waiting_);
  }
  for (Pool& p : pools_) {
    if (p.cached != 0) p.pool->PutBulk(p.cache.data(), static_cast<unsigned>(p.cached));
    p.cached = 0;
    PublishCached(p);
  }
  io_pool_.RemoveBufferCache(this);
}

bool BdevBufferCache::StarvingSlow() const noexcept {
  for (const Pool& p : pools_) {
    if (p.waiting_head != nullptr && p.held == 0) return true;
  }
  return false;
}

bool BdevBufferCache::Ready(int index) noexcept {
  Pool& p = pools_[index];
  if (p.pool == nullptr) p.pool = io_pool_.MakeSharedBufferPools(index);
  return p.pool != nullptr;
}

void* BdevBufferCache::Refill(Pool& p) noexcept {
  // Half the cache in one ring operation; whatever the ring has when it runs low.
  unsigned want = static_cast<unsigned>(std::max<size_t>(p.cache.size() / 2, 1));
  unsigned got = p.pool->GetBulk(p.cache.data(), want);
  if (got == 0) return nullptr;
  p.cached = got;
  return p.cache[--p.cached];
}

void BdevBufferCache::Spill(Pool& p) noexcept {
  size_t keep = p.cache.size() / 2;
  p.pool->PutBulk(p.cache.data() + keep, static_cast<unsigned>(p.cached - keep));
  p.cached = keep;
}

BdevIo* BdevBufferCache::Return(int index, void* buffer) noexcept {
  Pool& p = pools_[index];
  if (BdevIo* waiter = PopWaiter(p)) [[unlikely]] {
    return waiter;
  }
  --p.held;
  if (p.cached == p.cache.size()) Spill(p);
  p.cache[p.cached++] = buffer;
  PublishCached(p);
  return nullptr;
}

void BdevBufferCache::Wait(int index, BdevIo& io) noexcept {
  Pool& p = pools_[index];
  p.waits.store(p.waits.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  io.buffer_pool_ = static_cast<int8_t>(index);
  io.data_flags_ |= BdevIo::kWaitingForBuffer;
  ++waiting_;
  io.next_ = nullptr;
  (p.waiting_tail != nullptr ? p.waiting_tail->next_ : p.waiting_head) = &io;
  p.waiting_tail = &io;
}

BdevIo* BdevBufferCache::PopWaiter(Pool& p) noexcept {
  BdevIo* io = p.waiting_head;
  if (io == nullptr) return nullptr;
  p.waiting_head = io->next_;
  if (p.waiting_head == nullptr) p.waiting_tail = nullptr;
  --waiting_;
  io->data_flags_ &= ~BdevIo::kWaitingForBuffer;
  return io;
}

void BdevBufferCache::Cancel(BdevIo& io) noexcept {
  Pool& p = pools_[io.buffer_pool_];
  BdevIo* previous = nullptr;
  for (BdevIo* queued = p.waiting_head; queued != nullptr; queued = queued->next_) {
    if (queued != &io) {
      previous = queued;
      continue;
    }
    (previous != nullptr ? previous->next_ : p.waiting_head) = io.next_;
    if (p.waiting_tail == &io) p.waiting_tail = previous;
    --waiting_;
    break;
  }
  io.data_flags_ &= ~BdevIo::kWaitingForBuffer;
  io.buffer_pool_ = kNoBufferPool;
}

std::vector<BdevIo*> BdevBufferCache::CancelChannel(const BdevChannel* channel) {
  std::vector<BdevIo*> taken;
  for (Pool& p : pools_) {
    for (BdevIo* io = p.waiting_head; io != nullptr; io = io->next_) {
      if (io->channel_ == channel) taken.push_back(io);
    }
  }
  for (BdevIo* io : taken) Cancel(*io);
  return taken;
}

void BdevBufferCache::ServeStarving(std::vector<std::pair<BdevIo*, void*>>& served) {
  for (int index = 0; index < kBufferPoolCount; ++index) {
    Pool& p = pools_[index];
    if (p.waiting_head == nullptr || p.held != 0) continue;
    while (p.waiting_head != nullptr) {
      void* buffer = p.cached != 0 ? p.cache[--p.cached] : Refill(p);
      if (buffer == nullptr) break;
      ++p.held;
      served.emplace_back(PopWaiter(p), buffer);
    }
    PublishCached(p);
  }
}

}  // namespace pollux
