// Per-thread state of the bdev layer (the channel of the BdevIoPool device, one per Thread
// that does bdev I/O): the BdevIo cache, the data buffer caches and the I/O waiting for a
// buffer (BdevBufferCache), the list of completions deferred out of submission calls, the
// requests and split parents waiting for a free BdevIo, and the poller that drains them. Only
// its own thread touches it. Private.
#pragma once

#include <rte_cycles.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <utility>
#include <vector>

#include "bdev_buffer_cache.h"
#include "bdev_io_pool.h"
#include "pollux/bdev/bdev_io.h"
#include "pollux/reactor/io_channel.h"
#include "pollux/reactor/poller.h"

namespace pollux {

class BdevChannel;
class BdevDesc;

// A request that found no free BdevIo: everything needed to submit it later.
struct WaitingRequest {
  BdevChannel* channel;
  IoType type;
  bool writable;  // the descriptor's
  iovec* iov;  // nullptr: single buffer `buf`
  int iovcnt;
  void* buf;
  uint64_t offset_blocks;
  uint64_t num_blocks;
  BdevIoCallback cb;
  void* cb_arg;
  const BdevDesc* desc;  // the submitting descriptor (timeouts)
  // An abort waiting for its BdevIo (BdevChannel::Abort): `buf` is the cb_arg to abort.
  bool abort;
  // A read without buffer (BdevDesc::ReadWithoutBuffer): `cb` holds a BdevReadDataCallback.
  bool read_data;
};

// A BdevReadDataCallback kept in a BdevIoCallback field (WaitingRequest::cb, BdevIo::cb_);
// read_data / BdevIo::kReadData say which one a field holds. Through void (*)(), the
// conversion the language keeps exact both ways.
inline BdevIoCallback StoreReadDataCallback(BdevReadDataCallback cb) {
  return reinterpret_cast<BdevIoCallback>(reinterpret_cast<void (*)()>(cb));
}
inline BdevReadDataCallback LoadReadDataCallback(BdevIoCallback cb) {
  return reinterpret_cast<BdevReadDataCallback>(reinterpret_cast<void (*)()>(cb));
}
// Calls a caller's callback for an I/O that ended without data, whichever kind it is.
inline void CallBackWithoutData(BdevIoCallback cb, bool read_data, void* cb_arg,
                                BdevIoStatus status, int error_number) {
  if (read_data) return LoadReadDataCallback(cb)(cb_arg, status, error_number, nullptr, 0);
  cb(cb_arg, status, error_number);
}

class BdevThreadContext : public ChannelContext {
 public:
  explicit BdevThreadContext(BdevIoPool& pool);
  ~BdevThreadContext() override;

  // A free BdevIo, or nullptr when this cache and the shared pool are both empty.
  BdevIo* Get() noexcept {
    if (cached_ != 0) return cache_[--cached_];
    return Refill();
  }
  void Put(BdevIo* io) noexcept {
    if (cached_ == cache_.size()) Spill();
    cache_[cached_++] = io;
  }

  // Submission calls (and the module calls under them) run inside Enter/Leave; a completion
  // that happens meanwhile is deferred to the next poll instead of calling back into the
  // submitter.
  // Whether some I/O of this thread completed and still waits for its callback.
  bool has_undelivered() const noexcept { return undelivered_ != 0; }
  void EnterSubmit() noexcept { ++submit_depth_; }
  void LeaveSubmit() noexcept { --submit_depth_; }
  bool in_submit() const noexcept { return submit_depth_ != 0; }

  void Defer(BdevIo* io) noexcept {
    ++undelivered_;
    io->next_ = nullptr;
    if (deferred_tail_ == nullptr) {
      deferred_head_ = io;
    } else {
      deferred_tail_->next_ = io;
    }
    deferred_tail_ = io;
  }

  // Runs the deferred completions' callbacks now (BdevDesc::DeliverCompletions), unless a
  // submission call or a drain is under way on this thread.
  void DeliverDeferred() noexcept {
    if (deferred_head_ != nullptr && submit_depth_ == 0 && !draining_) DrainDeferred();
  }

  // The TSC for completion timestamps: the drain's own reading while the poller runs (one
  // rdtsc per batch instead of one per I/O), a fresh one otherwise.
  uint64_t Now() const noexcept { return draining_ ? drain_tsc_ : rte_rdtsc(); }

  void AddWaitingRequest(const WaitingRequest& request) { waiting_requests_.push_back(request); }
  // A split parent that could not get a BdevIo for its next child; resumed by the poller.
  void AddWaitingParent(BdevIo* parent) { waiting_parents_.push_back(parent); }
  // A channel holding I/O its module refused with kNoMemory; retried by the poller.
  void AddRetryChannel(BdevChannel* channel);
  // A channel going away: out of the retry list; its requests waiting for a BdevIo end with
  // kAborted (their callbacks run here).
  void RemoveChannel(BdevChannel* channel);
  void RemoveWaitingParent(BdevIo* parent) { std::erase(waiting_parents_, parent); }

  // Abort of requests waiting for a BdevIo: takes `channel`'s with cb_arg `target` out of the
  // wait (returns how many) and keeps them for `abort`, whose delivery calls their callbacks
  // with kAborted first (DeliverAbortedRequests). Abort path only (it may allocate).
  size_t AbortWaitingRequests(BdevChannel* channel, void* target, BdevIo* abort);
  void DeliverAbortedRequests(BdevIo* abort);

  // ---- Data buffers lent to reads without one (bdev_buffer_cache.h) ----
  // Gives `io` (a READ without buffer: iovs_ is single_iov_, {nullptr, its length}) a buffer
  // aligned to `alignment`, from the shared pools when `shared`, and calls cb(io, kSuccess):
  // now, or once a buffer of its pool is returned on this thread (or, when this thread holds
  // none of them, once the poller finds one in the pool). cb(io, kInvalid) now when it is
  // larger than the largest buffer; cb(io, kFailed) when the shared pools cannot be made.
  void RequestBuffer(BdevIo& io, uint64_t alignment, bool shared, BdevIoBufferCallback cb) noexcept;
  // Gives back a buffer an I/O held (after the I/O's delivery): to the oldest I/O of this
  // thread waiting for one of that pool, or to the cache.
  void ReleaseBuffer(int pool, void* buffer) noexcept {
    if (BdevIo* waiter = buffers_.Return(pool, buffer)) [[unlikely]] {
      GiveBuffer(*waiter, pool, buffer);
    }
  }
  // Takes `io` out of the wait for a buffer (an abort).
  void CancelBufferWait(BdevIo& io) noexcept { buffers_.Cancel(io); }
  // Takes every I/O of `channel` out of the wait (reset, removal, the channel going away).
  std::vector<BdevIo*> CancelBufferWaits(const BdevChannel* channel) {
    return buffers_.CancelChannel(channel);
  }

 private:
  BdevIo* Refill() noexcept;
  void Spill() noexcept;
  // Makes `buffer` (of pool `pool`) io's data buffer and resumes it (its buffer_cb_).
  void GiveBuffer(BdevIo& io, int pool, void* buffer) noexcept;
  static void AttachBuffer(BdevIo& io, int pool, void* buffer) noexcept;
  PollResult Poll() noexcept;
  // Runs the callbacks of the deferred list as it is now.
  void DrainDeferred() noexcept;
  bool HasWork() const {
    return deferred_head_ != nullptr || !waiting_requests_.empty() || !waiting_parents_.empty() ||
           !retry_channels_.empty() || buffers_.starving();
  }

  BdevIoPool& pool_;
  std::vector<BdevIo*> cache_;
  size_t cached_ = 0;
  int submit_depth_ = 0;
  bool draining_ = false;
  uint64_t drain_tsc_ = 0;
  // Completions on the deferred list or taken by the drain whose callbacks have not run yet.
  uint32_t undelivered_ = 0;
  BdevIo* deferred_head_ = nullptr;
  BdevIo* deferred_tail_ = nullptr;
  std::deque<WaitingRequest> waiting_requests_;
  std::vector<BdevIo*> waiting_parents_;
  std::vector<BdevChannel*> retry_channels_;
  std::vector<std::pair<BdevIo*, WaitingRequest>> aborted_requests_;  // by their abort
  BdevBufferCache buffers_;
  std::vector<std::pair<BdevIo*, void*>> served_;  // scratch of the poller's ServeStarving
  PollerHandle poller_;
};

}  // namespace pollux
