#include "bdev_thread_context.h"

#include <algorithm>

#include "bdev_channel.h"
#include "pollux/env/log.h"
#include "pollux/reactor/thread.h"

namespace pollux {

BdevThreadContext::BdevThreadContext(BdevIoPool& pool)
    : pool_(pool), cache_(pool.cache_size()), buffers_(pool) {
  PollerOptions options;
  // All the poller's work is made by code on this thread (completions during submission,
  // waits for objects), so it needs no wake-up of its own; but the reactor must not go to
  // sleep while some is pending.
  options.arm = [this] { return !HasWork(); };
  options.woken_by_messages = true;
  poller_ = PollerHandle(
      Thread::Current()->RegisterPoller("bdev_completions", [this] { return Poll(); },
                                        std::move(options)));
}

BdevThreadContext::~BdevThreadContext() {
  if (HasWork()) {
    PX_LOG(kError, "bdev", "thread context destroyed with I/O pending (%zu waiting requests)",
           waiting_requests_.size());
  }
  if (cached_ != 0) pool_.PutBulk(cache_.data(), static_cast<unsigned>(cached_));
}

BdevIo* BdevThreadContext::Refill() noexcept {
  // Half the cache in one mempool operation; fall back to smaller bites when the pool runs low.
  unsigned want = static_cast<unsigned>(cache_.size() / 2);
  while (want != 0) {
    if (pool_.GetBulk(cache_.data(), want)) {
      cached_ = want;
      return cache_[--cached_];
    }
    want /= 2;
  }
  return nullptr;
}

void BdevThreadContext::Spill() noexcept {
  size_t keep = cache_.size() / 2;
  pool_.PutBulk(cache_.data() + keep, static_cast<unsigned>(cached_ - keep));
  cached_ = keep;
}

void BdevThreadContext::AddRetryChannel(BdevChannel* channel) {
  if (std::find(retry_channels_.begin(), retry_channels_.end(), channel) ==
      retry_channels_.end()) {
    retry_channels_.push_back(channel);
  }
}

void BdevThreadContext::RemoveChannel(BdevChannel* channel) {
  std::erase(retry_channels_, channel);
  // Requests of the channel still waiting for a BdevIo end aborted, with their callbacks (the
  // poller would submit them on a channel that is gone): a caller that drops its channel with
  // I/O outstanding (a bug the channel logs) still hears of every request.
  std::vector<WaitingRequest> orphans;
  std::erase_if(waiting_requests_, [&](const WaitingRequest& request) {
    if (request.channel != channel) return false;
    orphans.push_back(request);
    return true;
  });
  for (const WaitingRequest& request : orphans) {
    CallBackWithoutData(request.cb, request.read_data, request.cb_arg, BdevIoStatus::kAborted, 0);
  }
}

size_t BdevThreadContext::AbortWaitingRequests(BdevChannel* channel, void* target,
                                               BdevIo* abort) {
  size_t taken = 0;
  std::erase_if(waiting_requests_, [&](const WaitingRequest& request) {
    if (request.channel != channel || request.abort || request.cb_arg != target) return false;
    aborted_requests_.emplace_back(abort, request);
    ++taken;
    return true;
  });
  return taken;
}

void BdevThreadContext::DeliverAbortedRequests(BdevIo* abort) {
  if (aborted_requests_.empty()) return;
  std::vector<std::pair<BdevIo*, WaitingRequest>> mine;
  std::erase_if(aborted_requests_, [&](const auto& entry) {
    if (entry.first != abort) return false;
    mine.push_back(entry);
    return true;
  });
  for (const auto& [unused, request] : mine) {
    CallBackWithoutData(request.cb, request.read_data, request.cb_arg, BdevIoStatus::kAborted, 0);
  }
}

void BdevThreadContext::RequestBuffer(BdevIo& io, uint64_t alignment, bool shared,
                                      BdevIoBufferCallback cb) noexcept {
  const uint64_t bytes = io.single_iov_.iov_len;
  // A buffer starts 4 KiB aligned: a larger alignment costs up to the difference in room.
  const uint64_t need = bytes + (alignment > 4096 ? alignment - 4096 : 0);
  int pool = need <= kSmallBufferSize   ? kSmallBufferPool
             : need <= kLargeBufferSize ? kLargeBufferPool
                                        : kNoBufferPool;
  if (pool == kNoBufferPool) [[unlikely]] {
    // As SPDK: a caller that reads without a buffer sizes its requests to the buffers (an
    // NVMe-oF target's MDTS). A larger one is a request the layer cannot serve, not a wait.
    PX_LOG(kError, "bdev",
           "%s: a read without buffer of %lu bytes is larger than the layer's "
           "largest buffer (%u bytes)",
           io.bdev_->name(), need, kLargeBufferSize);
    return cb(io, BdevIoStatus::kInvalid);
  }
  if (shared) pool += kSharedSmallBufferPool;
  if (!buffers_.Ready(pool)) [[unlikely]] {
    return cb(io, BdevIoStatus::kFailed);
  }
  if (void* buffer = buffers_.Take(pool)) [[likely]] {
    AttachBuffer(io, pool, buffer);
    return cb(io, BdevIoStatus::kSuccess);
  }
  io.buffer_cb_ = cb;
  buffers_.Wait(pool, io);
}

void BdevThreadContext::AttachBuffer(BdevIo& io, int pool, void* buffer) noexcept {
  const uintptr_t alignment = io.bdev_->required_alignment();
  const uintptr_t start = (reinterpret_cast<uintptr_t>(buffer) + alignment - 1) & ~(alignment - 1);
  io.single_iov_.iov_base = reinterpret_cast<void*>(start);
  io.iovs_ = &io.single_iov_;
  io.iovcnt_ = 1;
  io.buffer_ = buffer;
  io.buffer_pool_ = static_cast<int8_t>(pool);
  io.data_flags_ = (io.data_flags_ & ~BdevIo::kNeedsBuffer) | BdevIo::kLentBuffer;
}

void BdevThreadContext::GiveBuffer(BdevIo& io, int pool, void* buffer) noexcept {
  AttachBuffer(io, pool, buffer);
  // Inside a submission call: what the resumed I/O completes at once is delivered at the next
  // poll, not here, inside the delivery that returned the buffer (no recursion through a queue
  // of waiters).
  EnterSubmit();
  io.buffer_cb_(io, BdevIoStatus::kSuccess);
  LeaveSubmit();
}

void BdevThreadContext::DrainDeferred() noexcept {
  draining_ = true;
  drain_tsc_ = rte_rdtsc();
  // Take the list as it is now: completions deferred by the callbacks below (a callback that
  // submits to a device completing inline) wait for the next poll, so one drain is bounded.
  BdevIo* io = deferred_head_;
  deferred_head_ = deferred_tail_ = nullptr;
  while (io != nullptr) {
    BdevIo* next = io->next_;
    --undelivered_;  // before the callback, which may submit and ask has_undelivered()
    io->channel_->Finish(*io);
    io = next;
  }
  draining_ = false;
}

PollResult BdevThreadContext::Poll() noexcept {
  if (!HasWork()) return PollResult::kIdle;
  DrainDeferred();

  if (!retry_channels_.empty()) {
    std::vector<BdevChannel*> channels;
    channels.swap(retry_channels_);
    for (BdevChannel* channel : channels) channel->RetryNoMemory();
  }
  // Parents first: they hold objects already and finish sooner.
  if (!waiting_parents_.empty()) {
    std::vector<BdevIo*> parents;
    parents.swap(waiting_parents_);
    for (BdevIo* parent : parents) parent->channel_->ContinueSplit(*parent);
  }
  // I/O waiting for a data buffer of a pool this thread holds none of: nothing returned here
  // would resume it, so look at the pool itself.
  if (buffers_.starving()) {
    buffers_.ServeStarving(served_);
    for (auto [io, buffer] : served_) GiveBuffer(*io, io->buffer_pool_, buffer);
    served_.clear();
  }
  // Requests that found no BdevIo, in arrival order, as long as objects are to be had.
  while (!waiting_requests_.empty()) {
    BdevIo* io = Get();
    if (io == nullptr) break;
    Put(io);  // the submission below takes it again
    WaitingRequest request = waiting_requests_.front();
    waiting_requests_.pop_front();
    if (request.abort) [[unlikely]] {
      request.channel->Abort(request);
    } else if (request.read_data) [[unlikely]] {
      request.channel->SubmitReadWithoutBuffer(request);
    } else {
      request.channel->Submit(request);
    }
  }
  return PollResult::kBusy;
}

}  // namespace pollux
