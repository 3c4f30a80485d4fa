// BdevChannel: one bdev's per-thread channel (the layer's half; the module's half is
// module_channel_). Every caller request enters the layer here and every completion leaves
// here: checks, bouncing, splitting, emulation, statistics, retries. Only its thread touches
// it, so nothing here locks. Private.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "bdev_in_flight_list.h"
#include "bdev_thread_context.h"
#include "pollux/bdev/bdev.h"
#include "pollux/bdev/bdev_desc.h"
#include "pollux/bdev/bdev_io.h"
#include "pollux/bdev/bdev_stats.h"
#include "pollux/env/shared_io_memory.h"
#include "pollux/reactor/io_channel.h"

namespace pollux {

class BdevChannel;

// The I/O forwarded from one upper channel straight down to one lower channel (BdevDesc::
// Forward, one level): submitted and completed at the same instants at both levels, each
// is counted once here and belongs to both bdevs' statistics (summed at query time).
struct ForwardRoute {
  BdevChannel* upper;  // nullptr once the upper channel is gone (its bdev retired a copy)
  BdevChannel* lower;  // owns the route
  BdevIoStats stats;
};

// A descriptor's timeout, as published in the bdev's state (BdevDesc::SetTimeout).
struct BdevTimeoutSetting {
  const BdevDesc* desc;
  uint64_t timeout_us;
  BdevIoTimeoutCallback cb;
  void* cb_arg;
};

// One channel's copy of a timeout, with what its poller has reported: every late I/O
// submitted at or before reported_until_tsc (the list is in submission order).
struct ChannelTimeoutWatch {
  BdevTimeoutSetting setting;
  uint64_t timeout_tsc;
  uint64_t reported_until_tsc;
};

class BdevChannel : public ChannelContext {
 public:
  // On the channel's thread (IoDevice::CreateChannelContext).
  explicit BdevChannel(Bdev& bdev);
  ~BdevChannel() override;

  Bdev& bdev() const { return bdev_; }
  // The module's channel context (Bdev::CreateChannel), possibly nullptr.
  ChannelContext* module_channel() const { return module_channel_.get(); }
  // This channel's statistics: its own and those of the forward routes through it.
  BdevIoStats TotalStats() const;
  // The I/O this channel's callers submitted here, wherever it was forwarded, without what
  // other channels forwarded into it (BdevDesc::SubmittedStats).
  BdevIoStats SubmittedStats() const;
  const BdevThreadContext& thread_context() const { return thread_; }
  // BdevDesc::DeliverCompletions.
  void DeliverDeferred() noexcept { thread_.DeliverDeferred(); }

  // A caller's request. Completes through its callback, never inside this call.
  void Submit(const WaitingRequest& request) noexcept;
  // A caller's read without buffer (BdevDesc::ReadWithoutBuffer; request.read_data), the same
  // way.
  void SubmitReadWithoutBuffer(const WaitingRequest& request) noexcept;
  // BdevDesc::Abort (bdev_channel_abort.cc); `request.abort` is set, `request.buf` the cb_arg
  // to abort.
  void Abort(const WaitingRequest& request) noexcept;
  // Takes the bdev's timeouts again (bdev_channel_timeout.cc): at creation, and on each
  // BdevDesc::SetTimeout. On the channel's thread.
  void RefreshTimeouts();

  // The module completed `io` (BdevIo::Complete).
  void OnModuleCompletion(BdevIo& io) noexcept {
    if (io.status_ == BdevIoStatus::kNoMemory) [[unlikely]] {
      QueueNoMemory(io);
    } else if (thread_.in_submit()) {
      thread_.Defer(&io);
    } else {
      Finish(io);
    }
  }

  // The end of an I/O: a child goes back to its parent; a caller's I/O is copied back from
  // its bounce buffer, counted, freed, and its callback runs at its origin channel (a
  // forwarded I/O finishes at the lowest channel it reached).
  void Finish(BdevIo& io) noexcept;

  // A virtual bdev above passes `io` down to this channel's bdev (BdevDesc::Forward). Inline:
  // the common case (data for a base that neither bounces nor splits, with its buffer, in a
  // chain not yet at its deepest) is a mask test, a range test, a flags test and the base
  // module's Submit; everything else is ForwardSlow.
  void Forward(BdevIo& io, bool writable) noexcept {
    uint64_t end;
    // The two neighbours as one 16-bit value: the compiler loads and tests them at once.
    const unsigned depth_and_flags = io.forward_depth_ | (unsigned{io.data_flags_} << 8);
    if (((forward_fast_mask_[writable] >> static_cast<int>(io.type_)) & 1) &&
        !__builtin_add_overflow(io.offset_blocks_, io.num_blocks_, &end) && end <= block_count_ &&
        (depth_and_flags & (BdevIo::kMaxForwardDepth | BdevIo::kNeedsBuffer << 8)) == 0)
        [[likely]] {
      Retarget(io);
      // Forwarded from the upper module's Submit, the common case, this thread is already in
      // a submission call: the base's Submit is then a tail call.
      if (thread_.in_submit()) [[likely]] return bdev_.Submit(io);
      return SubmitToModuleOutOfLine(io);
    }
    ForwardSlow(io, writable);
  }

  // Completes with kAborted the I/O of this channel waiting for a data buffer (a reset, the
  // bdev's removal, the channel going away). On the channel's thread.
  void AbortBufferWaiters() noexcept;
  // BdevIo::GetDataBuffer: a buffer for `io` as this bdev needs it.
  void RequestBuffer(BdevIo& io, BdevIoBufferCallback cb) noexcept {
    thread_.RequestBuffer(io, alignment_mask_ + 1, requires_shared_memory_, cb);
  }

  // Takes the bdev's block count again after a resize (NotifyBdevBlockCountChange): the
  // count now, not the one of the resize that sent the walk, so that of two walks overtaking
  // each other the later value stays. On the channel's thread.
  void RefreshBlockCount() noexcept { block_count_ = bdev_.block_count(); }

  // Resubmits the I/O the module refused with kNoMemory (from the thread's poller).
  void RetryNoMemory() noexcept;
  // Cuts and submits the next children of a split parent.
  void ContinueSplit(BdevIo& parent) noexcept;

 private:
  // At most this many children of one parent are in flight at once.
  static constexpr uint32_t kMaxChildrenInFlight = 32;

  void SubmitToModule(BdevIo& io) noexcept {
    thread_.EnterSubmit();
    bdev_.Submit(io);
    thread_.LeaveSubmit();
  }
  // SubmitToModule as a call of its own, so that Forward's fast path only ever jumps.
  [[gnu::noinline]] void SubmitToModuleOutOfLine(BdevIo& io) noexcept { SubmitToModule(io); }
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
  // Counts a completed I/O in `stats` (this channel's or a route's); `bucket` is ticks'
  // histogram bucket.
  void Count(BdevIoStats& stats, const BdevIo& io, uint64_t ticks, int bucket) noexcept {
    if (io.status_ == BdevIoStatus::kSuccess) [[likely]] {
      stats.of(io.type_).Add(io.num_blocks_ << block_shift_, ticks);
      stats.latency_of(io.type_).AddToBucket(bucket);
    } else {
      ++stats.failed_ops;
    }
  }
  // A caller's I/O is done (and counted): copied back from its bounce buffer, freed, and its
  // callback runs.
  void Deliver(BdevIo& io) noexcept;
  // Deliver of an I/O with data_flags_: bounced, or a read without buffer (its callback gets
  // the data; the buffer goes back after it).
  [[gnu::noinline]] void DeliverWithData(BdevIo& io) noexcept;
  // Finish of a forwarded I/O: counted once in its route (one level) or at every level, and
  // finished at its origin.
  void FinishForwarded(BdevIo& io) noexcept;
  // A new route, a chain of more than one level, a forwarded child of a split.
  [[gnu::noinline]] void FinishForwardedSlow(BdevIo& io, uint64_t ticks, int bucket) noexcept;
  // The statistics of the route from `upper` into this channel (made on its first I/O), which
  // becomes the last route.
  BdevIoStats& RouteStats(BdevChannel& upper) noexcept;
  // forwarded_in_stats_, made on first use.
  BdevIoStats& ForwardedInStats() noexcept;
  void RetireRoutes() noexcept;
  // Makes `io`, forwarded from the channel it is on, this channel's.
  void Retarget(BdevIo& io) noexcept {
    io.forwarded_from_[io.forward_depth_++] = io.channel_;
    io.bdev_ = &bdev_;
    io.channel_ = this;
    io.module_channel_ = module_channel_.get();
  }
  // Takes a BdevIo for `request` and fills it in (the part of submission every request
  // shares); nullptr when none is free and the request waits for one.
  [[gnu::always_inline]] inline BdevIo* StartIo(const WaitingRequest& request) noexcept;
  void Dispatch(BdevIo& io) noexcept;
  // Reads without buffer (bdev_channel_buffer.cc): checks `io` (kReadData, its buffer null),
  // and has the layer get its buffer before the module unless the module takes such reads
  // (and then only if the I/O is not split here).
  void SubmitWithoutBuffer(BdevIo& io) noexcept;
  // A checked read still without buffer (kNeedsBuffer), submitted here or forwarded here: to
  // the module as it is, or to the module once the layer got its buffer.
  void SubmitNeedingBuffer(BdevIo& io) noexcept;
  // The layer's own buffer request answered: on to the module (or the splitter).
  static void LayerBufferReady(BdevIo& io, BdevIoStatus status) noexcept;
  // Forward's checks and cases outside the fast path.
  [[gnu::noinline]] void ForwardSlow(BdevIo& io, bool writable) noexcept;
  void QueueNoMemory(BdevIo& io) noexcept;
  void AbortNoMemory() noexcept;
  // Takes `io` out of the retry queue.
  void UnqueueNoMemory(BdevIo& io) noexcept;

  // Abort (bdev_channel_abort.cc).
  // Aborts one matching caller I/O, wherever it is, for `abort`.
  void AbortOne(BdevIo& io, BdevIo& abort) noexcept;
  // A module's answer (Bdev::Abort's done).
  static void AbortDone(void* cb_arg, BdevIoStatus status, int error_number);
  void AbortAnswered(BdevIo* abort, BdevIoStatus status, int error_number) noexcept;
  void DeliverAbort(BdevIo& abort) noexcept;

  // Timeouts (bdev_channel_timeout.cc).
  PollResult PollTimeouts() noexcept;
  static uint64_t UsToTsc(uint64_t us) noexcept;
  // This thread's IoChannel of the bdev, whose context this is (for the timeout callback).
  IoChannel* FindIoChannel() const noexcept;

  // Splitting (bdev_io_splitter.cc).
  bool NeedsSplit(const BdevIo& io) const noexcept {
    if (io.num_blocks_ > max_transfer_blocks_ ||
        static_cast<uint32_t>(io.iovcnt_) > max_segments_) {
      return true;
    }
    if (split_boundary_ == 0) return false;
    // A power-of-two boundary (RAID strips, most devices) needs no division: a 64-bit divide
    // costs tens of cycles, more than the rest of the test.
    if ((split_boundary_ & (split_boundary_ - 1)) == 0) [[likely]] {
      return (io.offset_blocks_ & (split_boundary_ - 1)) + io.num_blocks_ > split_boundary_;
    }
    return io.offset_blocks_ / split_boundary_ !=
           (io.offset_blocks_ + io.num_blocks_ - 1) / split_boundary_;
  }
  void StartSplit(BdevIo& parent) noexcept;
  bool BuildChild(BdevIo& parent, BdevIo& child) noexcept;
  void ChildDone(BdevIo& child) noexcept;

  // Bounce buffers (bdev_io_splitter.cc).
  // Whether data I/O `io` must be bounced here. Only when needs_data_fixups_.
  bool NeedsBounce(const BdevIo& io) const noexcept {
    return (alignment_mask_ != 0 && Misaligned(io)) || (may_split_ && UnsplittableSegments(io)) ||
           (requires_shared_memory_ && OutsideSharedMemory(io));
  }
  bool Misaligned(const BdevIo& io) const noexcept;
  bool UnsplittableSegments(const BdevIo& io) const noexcept;
  bool OutsideSharedMemory(const BdevIo& io) const noexcept {
    for (int i = 0; i < io.iovcnt_; ++i) {
      if (!InSharedIoMemory(io.iovs_[i].iov_base, io.iovs_[i].iov_len)) return true;
    }
    return false;
  }
  // The bounce buffer comes from the shared I/O arena when the bdev requires shared memory,
  // from DPDK's heap otherwise; Unbounce frees it by where it lies (it may run at another
  // channel: the origin of a forwarded I/O).
  bool Bounce(BdevIo& io) noexcept;
  void Unbounce(BdevIo& io) noexcept;
  // The zero buffer of emulated WRITE_ZEROES for bdevs that require shared memory (the pool's
  // is DPDK memory): one in the shared arena for the process, made by the first channel that
  // needs it, freed with the last. nullptr (logged) when it cannot be had.
  static void* AcquireSharedZeroBuffer(const Bdev& bdev) noexcept;
  static void ReleaseSharedZeroBuffer() noexcept;

  Bdev& bdev_;
  IoChannelRef thread_ref_;  // keeps the thread context alive while this channel lives
  BdevThreadContext& thread_;
  std::unique_ptr<ChannelContext> module_channel_;
  const uint32_t block_shift_;
  const uint64_t alignment_mask_;
  // The bdev's split limits with "none" as the largest value, so that each is one compare on
  // every data I/O of a bdev that has any (a virtio bdev: max_segments, max_transfer_blocks).
  const uint64_t max_transfer_blocks_;
  const uint32_t max_segments_;
  const uint32_t split_boundary_;  // 0: requests are not cut at a boundary
  // Any of those set (derived from them).
  const bool may_split_;
  // Data buffers must lie in the shared I/O arena (the bdev's requires_shared_memory).
  const bool requires_shared_memory_;
  // The module gets buffers for reads without one itself (takes_reads_without_buffer).
  const bool takes_reads_without_buffer_;
  // Data I/O may need bouncing or splitting here (what Forward must check before going
  // straight to the module, and Dispatch before the checks that cost).
  const bool needs_data_fixups_;
  // The boundary's mask when cutting at a power-of-two boundary is all the data fixing this
  // bdev needs (no alignment, segment, transfer or shared-memory limit: RAID0), else 0.
  const uint64_t split_only_mask_;
  // The bdev's, copied here: the checks of every I/O then read only this channel's cache line
  // (the bdev's properties are one more dependent load away).
  const uint32_t supported_mask_;
  const uint32_t module_supported_mask_;
  uint64_t block_count_;  // changes only at a resize (RefreshBlockCount)
  // The types Forward sends straight to the module, by the descriptor's writability: READ
  // (and WRITE when writable) if supported natively and nothing bounces or splits here.
  const uint32_t forward_fast_mask_[2];
  // What emulated WRITE_ZEROES writes from: the pool's zero buffer, or the shared one
  // (AcquireSharedZeroBuffer); nullptr if that failed.
  void* const zero_buffer_;
  // Callers' I/O submitted here and not yet delivered (wherever it was forwarded to), and the
  // split children cut here: what Abort and the timeout poller walk.
  BdevInFlightList in_flight_;
  BdevIo* nomem_head_ = nullptr;
  BdevIo* nomem_tail_ = nullptr;
  // The I/O submitted here by this channel's callers and counted here: not forwarded, or
  // forwarded more than one level (its origin counts it here).
  BdevIoStats stats_;
  // The I/O another channel submitted that is counted here outside a route: the levels below
  // the origin of a chain of more than one level, and split children forwarded from above. The
  // bdev's (TotalStats), not this channel's callers' (SubmittedStats). Made on first use (the
  // slow path only): most channels never see any, and the histogram is 22 KiB.
  std::unique_ptr<BdevIoStats> forwarded_in_stats_;
  // Routes into this channel (owned here) and out of it (owned by the lower channels).
  std::vector<std::unique_ptr<ForwardRoute>> inbound_routes_;
  std::vector<ForwardRoute*> outbound_routes_;
  // The route of the last forwarded I/O that completed here: one compare per completion.
  const BdevChannel* last_route_upper_ = nullptr;
  BdevIoStats* last_route_stats_ = nullptr;
  // The bdev's timeouts (RefreshTimeouts) and their poller, registered only while any is set.
  std::vector<ChannelTimeoutWatch> timeout_watches_;
  PollerHandle timeout_poller_;
  uint64_t timeout_period_us_ = 0;
};

}  // namespace pollux
