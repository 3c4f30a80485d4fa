#include "bdev_channel.h"

#include <rte_cycles.h>

#include <bit>

#include "bdev_io_pool.h"
#include "bdev_state.h"
#include "pollux/env/log.h"
#include "pollux/env/shared_io_memory.h"

namespace pollux {
namespace {

bool IsWrite(IoType type) {
  return type == IoType::kWrite || type == IoType::kWriteZeroes || type == IoType::kUnmap;
}

bool CarriesData(IoType type) { return type == IoType::kRead || type == IoType::kWrite; }

// Whether `mask` (a Bdev's supported_mask_ or module_supported_mask_) has `type`.
bool HasType(uint32_t mask, IoType type) { return (mask >> static_cast<int>(type)) & 1; }

uint32_t TypeBit(IoType type) { return 1u << static_cast<int>(type); }

// BdevChannel::forward_fast_mask_: data types the module takes as they come.
uint32_t ForwardFastMask(bool needs_data_fixups, uint32_t module_supported_mask, bool writable) {
  if (needs_data_fixups) return 0;
  return module_supported_mask & (TypeBit(IoType::kRead) | (writable ? TypeBit(IoType::kWrite) : 0));
}

}  // namespace

void BdevIo::Complete(BdevIoStatus status, int error_number) noexcept {
  status_ = status;
  // Only failures touch the cold line.
  if (status != BdevIoStatus::kSuccess) [[unlikely]] error_number_ = error_number;
  channel_->OnModuleCompletion(*this);
}

bool BdevIo::ThreadHasUndeliveredCompletions() const noexcept {
  return channel_->thread_context().has_undelivered();
}

BdevChannel::BdevChannel(Bdev& bdev)
    : bdev_(bdev),
      thread_ref_(GetIoChannel(*GetBdevIoPool())),
      thread_(thread_ref_->context<BdevThreadContext>()),
      module_channel_(bdev.CreateChannel()),
      block_shift_(static_cast<uint32_t>(std::countr_zero(bdev.block_size()))),
      alignment_mask_(bdev.required_alignment() - 1),
      max_transfer_blocks_(bdev.max_transfer_blocks() != 0 ? bdev.max_transfer_blocks()
                                                            : UINT64_MAX),
      max_segments_(bdev.max_segments() != 0 ? bdev.max_segments() : UINT32_MAX),
      split_boundary_(bdev.split_on_optimal_io_boundary() ? bdev.optimal_io_boundary() : 0),
      may_split_(split_boundary_ != 0 || max_transfer_blocks_ != UINT64_MAX ||
                 max_segments_ != UINT32_MAX),
      requires_shared_memory_(bdev.requires_shared_memory()),
      takes_reads_without_buffer_(bdev.properties().takes_reads_without_buffer),
      needs_data_fixups_(alignment_mask_ != 0 || may_split_ || requires_shared_memory_),
      split_only_mask_(split_boundary_ > 1 && std::has_single_bit(split_boundary_) &&
                               alignment_mask_ == 0 && !requires_shared_memory_ &&
                               max_segments_ == UINT32_MAX && max_transfer_blocks_ == UINT64_MAX
                           ? split_boundary_ - 1
                           : 0),
      supported_mask_(bdev.supported_mask_),
      module_supported_mask_(bdev.module_supported_mask_),
      block_count_(bdev.block_count()),
      forward_fast_mask_{ForwardFastMask(needs_data_fixups_, module_supported_mask_, false),
                         ForwardFastMask(needs_data_fixups_, module_supported_mask_, true)},
      zero_buffer_(requires_shared_memory_ && HasType(supported_mask_, IoType::kWriteZeroes) &&
                           !HasType(module_supported_mask_, IoType::kWriteZeroes)
                       ? AcquireSharedZeroBuffer(bdev)
                       : GetBdevIoPool()->zero_buffer()) {
  RefreshTimeouts();
}

BdevChannel::~BdevChannel() {
  // Reads waiting for a data buffer end here (the thread's queue would resume them on a
  // channel that is gone), with their callbacks, now: a deferred completion would too.
  for (BdevIo* io : thread_.CancelBufferWaits(this)) {
    io->status_ = BdevIoStatus::kAborted;
    Finish(*io);
  }
  // The zero buffer's address says whether it is the shared one.
  if (InSharedIoMemory(zero_buffer_, 1)) ReleaseSharedZeroBuffer();
  thread_.RemoveChannel(this);
  if (!in_flight_.empty() || nomem_head_ != nullptr) {
    PX_LOG(kError, "bdev", "%s: channel destroyed with %zu I/O in flight", bdev_.name(),
           in_flight_.CountSlow());
  }
  bdev_.state_->RetireStats(stats_);
  if (forwarded_in_stats_ != nullptr) bdev_.state_->RetireStats(*forwarded_in_stats_);
  RetireRoutes();
}

BdevIoStats BdevChannel::TotalStats() const {
  BdevIoStats total = SubmittedStats();
  if (forwarded_in_stats_ != nullptr) total.Merge(*forwarded_in_stats_);
  for (const auto& route : inbound_routes_) total.Merge(route->stats);
  return total;
}

BdevIoStats BdevChannel::SubmittedStats() const {
  // A route out of here carries I/O this channel's callers submitted (its upper end is always
  // the origin: only one-level forwards have routes).
  BdevIoStats submitted = stats_;
  for (const ForwardRoute* route : outbound_routes_) submitted.Merge(route->stats);
  return submitted;
}

BdevIoStats& BdevChannel::ForwardedInStats() noexcept {
  if (forwarded_in_stats_ == nullptr) [[unlikely]] {
    forwarded_in_stats_ = std::make_unique<BdevIoStats>();
  }
  return *forwarded_in_stats_;
}

BdevIoStats& BdevChannel::RouteStats(BdevChannel& upper) noexcept {
  ForwardRoute* found = nullptr;
  for (const auto& route : inbound_routes_) {
    if (route->upper == &upper) {
      found = route.get();
      break;
    }
  }
  if (found == nullptr) {
    // The first I/O from `upper`: once per pair of channels.
    inbound_routes_.push_back(std::make_unique<ForwardRoute>(ForwardRoute{&upper, this, {}}));
    found = inbound_routes_.back().get();
    upper.outbound_routes_.push_back(found);
  }
  last_route_upper_ = &upper;
  last_route_stats_ = &found->stats;
  return found->stats;
}

void BdevChannel::RetireRoutes() noexcept {
  // A route's I/O belongs to both bdevs: the channel going away retires it for its own bdev
  // and, for a route into here, for the upper bdev too if that channel is still there (it
  // stops summing the route).
  for (const auto& route : inbound_routes_) {
    bdev_.state_->RetireStats(route->stats);
    if (BdevChannel* upper = route->upper) {
      upper->bdev_.state_->RetireStats(route->stats);
      std::erase(upper->outbound_routes_, route.get());
    }
  }
  for (ForwardRoute* route : outbound_routes_) {
    bdev_.state_->RetireStats(route->stats);
    route->upper = nullptr;
    // A channel made later at this address must not hit the lower channel's cache.
    if (route->lower->last_route_upper_ == this) route->lower->last_route_upper_ = nullptr;
  }
}

BdevIoStatus BdevChannel::Check(const BdevIo& io, bool writable,
                                bool caller_iovs) const noexcept {
  IoType type = io.type_;
  if (!HasType(supported_mask_, type)) return BdevIoStatus::kNotSupported;
  if (IsWrite(type) && !writable) return BdevIoStatus::kInvalid;
  uint64_t end = io.offset_blocks_ + io.num_blocks_;
  if (end < io.offset_blocks_ || end > block_count_) return BdevIoStatus::kOutOfRange;
  if (io.num_blocks_ == 0 && type != IoType::kFlush && type != IoType::kReset) {
    return BdevIoStatus::kInvalid;
  }
  if (CarriesData(type)) {
    if (io.iovcnt_ <= 0) return BdevIoStatus::kInvalid;
    if (caller_iovs) {
      uint64_t bytes = 0;
      for (int i = 0; i < io.iovcnt_; ++i) {
        if (io.iovs_[i].iov_base == nullptr && io.iovs_[i].iov_len != 0) {
          return BdevIoStatus::kInvalid;
        }
        bytes += io.iovs_[i].iov_len;
      }
      if (bytes != io.num_blocks_ << block_shift_) return BdevIoStatus::kInvalid;
    } else if (io.single_iov_.iov_base == nullptr) {
      return BdevIoStatus::kInvalid;
    }
  }
  return BdevIoStatus::kSuccess;
}

BdevIo* BdevChannel::StartIo(const WaitingRequest& request) noexcept {
  BdevIo* io = thread_.Get();
  if (io == nullptr) [[unlikely]] {
    // Pool exhausted: the request waits for an object (never fails for it).
    thread_.AddWaitingRequest(request);
    return nullptr;
  }
  in_flight_.PushBack(*io);
  io->desc_ = request.desc;
  io->type_ = request.type;
  io->kind_ = BdevIo::Kind::kUser;
  io->forward_depth_ = 0;
  io->data_flags_ = 0;
  io->bdev_ = &bdev_;
  io->channel_ = this;
  io->module_channel_ = module_channel_.get();
  io->offset_blocks_ = request.offset_blocks;
  io->num_blocks_ = request.num_blocks;
  io->cb_ = request.cb;
  io->cb_arg_ = request.cb_arg;
  io->submit_tsc_ = thread_.Now();
  if (request.iov == nullptr) {
    io->single_iov_.iov_base = request.buf;
    io->single_iov_.iov_len = request.num_blocks << block_shift_;
    io->iovs_ = &io->single_iov_;
    io->iovcnt_ = CarriesData(request.type) ? 1 : 0;
  } else {
    io->iovs_ = request.iov;
    io->iovcnt_ = request.iovcnt;
  }
  return io;
}

void BdevChannel::Submit(const WaitingRequest& request) noexcept {
  BdevIo* io = StartIo(request);
  if (io == nullptr) [[unlikely]]
    return;
  thread_.EnterSubmit();
  BdevIoStatus status = Check(*io, request.writable, request.iov != nullptr);
  if (status != BdevIoStatus::kSuccess) [[unlikely]] {
    CompleteInLayer(*io, status);
  } else {
    Dispatch(*io);
  }
  thread_.LeaveSubmit();
}

void BdevChannel::SubmitReadWithoutBuffer(const WaitingRequest& request) noexcept {
  BdevIo* io = StartIo(request);
  if (io == nullptr) [[unlikely]]
    return;
  // A path of its own (bdev_channel_buffer.cc), so that Submit does not even test for it.
  io->data_flags_ = BdevIo::kReadData;
  thread_.EnterSubmit();
  SubmitWithoutBuffer(*io);
  thread_.LeaveSubmit();
}

void BdevChannel::Dispatch(BdevIo& io) noexcept {
  IoType type = io.type_;
  if (CarriesData(type)) {
    // One test for the devices that take any buffer of any size (most of them).
    if (needs_data_fixups_) {
      // A striping bdev: cut at a power-of-two boundary, nothing else (one compare, where the
      // general checks below cost about 30 instructions per I/O).
      if (split_only_mask_ != 0) {
        if ((io.offset_blocks_ & split_only_mask_) + io.num_blocks_ > split_only_mask_ + 1) {
          return StartSplit(io);
        }
        return SubmitToModule(io);
      }
      // Bounced: buffers the device cannot take (misaligned, or outside the shared memory its
      // back-end maps), and iovecs that would make a child of a split end inside a block (a
      // block over more segments than the module takes).
      if (NeedsBounce(io) && !Bounce(io)) return CompleteInLayer(io, BdevIoStatus::kFailed);
      if (may_split_ && NeedsSplit(io)) return StartSplit(io);
    }
    return SubmitToModule(io);
  }
  if (!HasType(module_supported_mask_, type)) {
    // Emulated: WRITE_ZEROES as writes of a zero buffer; FLUSH of a device without write
    // cache has nothing to do.
    if (type == IoType::kWriteZeroes) {
      // No zero buffer: the shared one could not be had when the channel was made (logged).
      if (zero_buffer_ == nullptr) return CompleteInLayer(io, BdevIoStatus::kFailed);
      return StartSplit(io);
    }
    return CompleteInLayer(io, BdevIoStatus::kSuccess);
  }
  if (type == IoType::kReset) {
    AbortNoMemory();
    AbortBufferWaiters();
  }
  SubmitToModule(io);
}

void BdevChannel::Finish(BdevIo& io) noexcept {
  if (io.forward_depth_ != 0) [[unlikely]] return FinishForwarded(io);
  if (io.kind_ != BdevIo::Kind::kUser) [[unlikely]] {
    return io.kind_ == BdevIo::Kind::kChild ? ChildDone(io) : DeliverAbort(io);
  }
  const uint64_t ticks = thread_.Now() - io.submit_tsc_;
  Count(stats_, io, ticks, LatencyHistogram::BucketOf(ticks));
  Deliver(io);
}

void BdevChannel::FinishForwarded(BdevIo& io) noexcept {
  // One object, submitted and completed at the same instants at every level it was forwarded
  // through: one latency and one histogram bucket serve them all.
  const uint64_t ticks = thread_.Now() - io.submit_tsc_;
  const int bucket = LatencyHistogram::BucketOf(ticks);
  BdevChannel& origin = *io.forwarded_from_[0];
  // Only tail calls leave this function (a call would cost it a stack frame): a one-level
  // forward on the last route is counted here, anything else in FinishForwardedSlow.
  if (io.forward_depth_ != 1 || io.kind_ != BdevIo::Kind::kUser ||
      &origin != last_route_upper_) [[unlikely]] {
    return FinishForwardedSlow(io, ticks, bucket);
  }
  // One virtual layer: one count in the route serves both bdevs. Deliver reads none of
  // bdev_, channel_ and module_channel_ (the next Submit sets them).
  io.forward_depth_ = 0;
  Count(*last_route_stats_, io, ticks, bucket);
  origin.Deliver(io);
}

void BdevChannel::Deliver(BdevIo& io) noexcept {
  in_flight_.Remove(io);
  if (io.data_flags_ != 0) [[unlikely]] {
    return DeliverWithData(io);
  }
  BdevIoStatus status = io.status_;
  int error_number = status == BdevIoStatus::kSuccess ? 0 : io.error_number_;
  BdevIoCallback cb = io.cb_;
  void* cb_arg = io.cb_arg_;
  // Freed before the callback: a callback that submits again reuses this very object.
  thread_.Put(&io);
  cb(cb_arg, status, error_number);
}

void BdevChannel::FinishForwardedSlow(BdevIo& io, uint64_t ticks, int bucket) noexcept {
  const int depth = io.forward_depth_;
  io.forward_depth_ = 0;
  BdevChannel& origin = *io.forwarded_from_[0];
  if (depth == 1 && io.kind_ == BdevIo::Kind::kUser) {
    Count(RouteStats(origin), io, ticks, bucket);
    return origin.Deliver(io);
  }
  // Deeper chains and split children: every level below the origin saw a real I/O (a child
  // included), each counted in its bdev's statistics, apart from what its own callers submitted.
  Count(ForwardedInStats(), io, ticks, bucket);
  for (int level = depth - 1; level > 0; --level) {
    BdevChannel& channel = *io.forwarded_from_[level];
    channel.Count(channel.ForwardedInStats(), io, ticks, bucket);
  }
  if (io.kind_ == BdevIo::Kind::kChild) {
    // A child goes on living in its parent's split: make it the origin's again (the origin
    // counts the parent, not its children).
    io.bdev_ = &origin.bdev_;
    io.channel_ = &origin;
    io.module_channel_ = origin.module_channel_.get();
    return origin.ChildDone(io);
  }
  origin.Count(origin.stats_, io, ticks, bucket);
  origin.Deliver(io);
}

namespace {

// The completion of a forward that could not reuse the I/O (see Forward).
void ForwardedCopyDone(void* cb_arg, BdevIoStatus status, int error_number) {
  static_cast<BdevIo*>(cb_arg)->Complete(status, error_number);
}

}  // namespace

void BdevChannel::ForwardSlow(BdevIo& io, bool writable) noexcept {
  // Check's first three checks again, against the base: written out, as a helper shared with
  // Check cost the null bdev's path 4 instructions per I/O.
  IoType type = io.type_;
  BdevIoStatus status = BdevIoStatus::kSuccess;
  uint64_t end = io.offset_blocks_ + io.num_blocks_;
  if (!HasType(supported_mask_, type)) {
    status = BdevIoStatus::kNotSupported;
  } else if (IsWrite(type) && !writable) {
    status = BdevIoStatus::kInvalid;
  } else if (end < io.offset_blocks_ || end > block_count_) {
    status = BdevIoStatus::kOutOfRange;
  }
  if (status != BdevIoStatus::kSuccess) return io.Complete(status);
  // In place unless the base needs a second bounce (the I/O's bounce state is taken) or the
  // chain is too deep: then as an ordinary request whose completion completes `io`.
  if (((io.data_flags_ & BdevIo::kBounced) && CarriesData(type) && needs_data_fixups_ &&
       NeedsBounce(io)) ||
      io.forward_depth_ == BdevIo::kMaxForwardDepth) [[unlikely]] {
    bool data = CarriesData(type);
    return Submit(WaitingRequest{this, type, writable, data ? io.iovs_ : nullptr,
                                 data ? io.iovcnt_ : 0, nullptr, io.offset_blocks_, io.num_blocks_,
                                 &ForwardedCopyDone, &io, io.desc_, false, false});
  }
  Retarget(io);
  thread_.EnterSubmit();
  // A read still without buffer (from a module that takes them) goes on as at submission here:
  // as it is if this module takes them too, else once the layer got its buffer.
  if (io.data_flags_ & BdevIo::kNeedsBuffer) {
    SubmitNeedingBuffer(io);
  } else {
    Dispatch(io);
  }
  thread_.LeaveSubmit();
}

void BdevChannel::QueueNoMemory(BdevIo& io) noexcept {
  io.next_ = nullptr;
  if (nomem_tail_ == nullptr) {
    nomem_head_ = &io;
  } else {
    nomem_tail_->next_ = &io;
  }
  nomem_tail_ = &io;
  thread_.AddRetryChannel(this);
}

void BdevChannel::RetryNoMemory() noexcept {
  BdevIo* io = nomem_head_;
  nomem_head_ = nomem_tail_ = nullptr;
  while (io != nullptr) {
    BdevIo* next = io->next_;
    io->status_ = BdevIoStatus::kSuccess;
    SubmitToModule(*io);
    io = next;
  }
}

void BdevChannel::AbortNoMemory() noexcept {
  BdevIo* io = nomem_head_;
  nomem_head_ = nomem_tail_ = nullptr;
  while (io != nullptr) {
    BdevIo* next = io->next_;
    CompleteInLayer(*io, BdevIoStatus::kAborted);
    io = next;
  }
}

}  // namespace pollux
