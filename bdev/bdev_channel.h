// BdevChannel: one bdev's per-thread channel (the layer's half; the module's half is
// module_channel_). Every caller request enters the layer here and every completion leaves
// here: checks, bouncing, splitting, emulation, statistics, retries. Only its thread touches
// it, so nothing here locks. Private.
#pragma once

#include <cstdint>
#include <memory>

#include "bdev_thread_context.h"
#include "pollux/bdev/bdev.h"
#include "pollux/bdev/bdev_io.h"
#include "pollux/bdev/bdev_stats.h"
#include "pollux/reactor/io_channel.h"

namespace pollux {

class BdevChannel : public ChannelContext {
 public:
  // On the channel's thread (IoDevice::CreateChannelContext).
  explicit BdevChannel(Bdev& bdev);
  ~BdevChannel() override;

  Bdev& bdev() const { return bdev_; }
  const BdevIoStats& stats() const { return stats_; }
  const BdevThreadContext& thread_context() const { return thread_; }

  // A caller's request. Completes through its callback, never inside this call.
  void Submit(const WaitingRequest& request) noexcept;

  // The module completed `io` (BdevIo::Complete).
  void OnModuleCompletion(BdevIo& io) noexcept {
    --in_flight_;
    if (io.status_ == BdevIoStatus::kNoMemory) [[unlikely]] {
      QueueNoMemory(io);
    } else if (thread_.in_submit()) {
      thread_.Defer(&io);
    } else {
      Finish(io);
    }
  }

  // The end of an I/O: a child goes back to its parent; a caller's I/O is copied back from
  // its bounce buffer, counted, freed, and its callback runs.
  void Finish(BdevIo& io) noexcept;

  // A virtual bdev above passes `io` down to this channel's bdev (BdevDesc::Forward).
  void Forward(BdevIo& io, bool writable) noexcept;

  // Resubmits the I/O the module refused with kNoMemory (from the thread's poller).
  void RetryNoMemory() noexcept;
  // Cuts and submits the next children of a split parent.
  void ContinueSplit(BdevIo& parent) noexcept;

 private:
  // At most this many children of one parent are in flight at once.
  static constexpr uint32_t kMaxChildrenInFlight = 32;

  void SubmitToModule(BdevIo& io) noexcept {
    ++in_flight_;
    thread_.EnterSubmit();
    bdev_.Submit(io);
    thread_.LeaveSubmit();
  }
  // Ends `io` with `status` from inside the layer (a failed check, an emulated type, a split
  // parent whose children are back).
  void CompleteInLayer(BdevIo& io, BdevIoStatus status, int error_number = 0) noexcept {
    io.status_ = status;
    io.error_number_ = error_number;
    if (thread_.in_submit()) {
      thread_.Defer(&io);
    } else {
      Finish(io);
    }
  }
  BdevIoStatus Check(const BdevIo& io, bool writable, bool caller_iovs) const noexcept;
  // Counts a completed I/O in this channel's statistics; `bucket` is ticks' histogram bucket.
  void Count(const BdevIo& io, uint64_t ticks, int bucket) noexcept {
    if (io.status_ == BdevIoStatus::kSuccess) [[likely]] {
      stats_.of(io.type_).Add(io.num_blocks_ << block_shift_, ticks);
      stats_.latency.AddToBucket(bucket);
    } else {
      ++stats_.failed_ops;
    }
  }
  // A caller's I/O is done: copied back from its bounce buffer, counted, freed, and its
  // callback runs.
  void Deliver(BdevIo& io, uint64_t ticks, int bucket) noexcept;
  // Counts a forwarded I/O at every level below its origin, then finishes it at the origin.
  void FinishForwarded(BdevIo& io) noexcept;
  // Makes `io`, forwarded from the channel it is on, this channel's.
  void Retarget(BdevIo& io) noexcept {
    BdevChannel& upper = *io.channel_;
    --upper.in_flight_;
    io.forwarded_from_[io.forward_depth_++] = &upper;
    io.bdev_ = &bdev_;
    io.channel_ = this;
    io.module_channel_ = module_channel_.get();
  }
  void Dispatch(BdevIo& io) noexcept;
  void QueueNoMemory(BdevIo& io) noexcept;
  void AbortNoMemory() noexcept;

  // Splitting (bdev_io_splitter.cc).
  bool NeedsSplit(const BdevIo& io) const noexcept;
  void StartSplit(BdevIo& parent) noexcept;
  bool BuildChild(BdevIo& parent, BdevIo& child) noexcept;
  void ChildDone(BdevIo& child) noexcept;

  // Bounce buffers (bdev_io_splitter.cc).
  bool Misaligned(const BdevIo& io) const noexcept;
  bool UnsplittableSegments(const BdevIo& io) const noexcept;
  bool Bounce(BdevIo& io) noexcept;
  void Unbounce(BdevIo& io) noexcept;

  Bdev& bdev_;
  IoChannelRef thread_ref_;  // keeps the thread context alive while this channel lives
  BdevThreadContext& thread_;
  std::unique_ptr<ChannelContext> module_channel_;
  const uint32_t block_shift_;
  const uint64_t alignment_mask_;
  const bool may_split_;
  // Data I/O may need bouncing or splitting here (what Forward must check before going
  // straight to the module).
  const bool needs_data_fixups_;
  // The bdev's, copied here: the checks of every I/O then read only this channel's cache line
  // (the bdev's properties are one more dependent load away).
  const uint32_t supported_mask_;
  const uint32_t module_supported_mask_;
  const uint64_t block_count_;
  uint64_t in_flight_ = 0;
  BdevIo* nomem_head_ = nullptr;
  BdevIo* nomem_tail_ = nullptr;
  BdevIoStats stats_;
};

}  // namespace pollux
