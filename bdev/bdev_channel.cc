#include "bdev_channel.h"

#include <rte_cycles.h>

#include <bit>

#include "bdev_io_pool.h"
#include "bdev_state.h"
#include "pollux/env/log.h"

namespace pollux {
namespace {

bool IsWrite(IoType type) {
  return type == IoType::kWrite || type == IoType::kWriteZeroes || type == IoType::kUnmap;
}

bool CarriesData(IoType type) { return type == IoType::kRead || type == IoType::kWrite; }

// Whether `mask` (a Bdev's supported_mask_ or module_supported_mask_) has `type`.
bool HasType(uint32_t mask, IoType type) { return (mask >> static_cast<int>(type)) & 1; }

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
      may_split_((bdev.split_on_optimal_io_boundary() && bdev.optimal_io_boundary() != 0) ||
                 bdev.max_transfer_blocks() != 0 || bdev.max_segments() != 0),
      needs_data_fixups_(alignment_mask_ != 0 || may_split_),
      supported_mask_(bdev.supported_mask_),
      module_supported_mask_(bdev.module_supported_mask_),
      block_count_(bdev.block_count()) {}

BdevChannel::~BdevChannel() {
  thread_.RemoveChannel(this);
  if (in_flight_ != 0 || nomem_head_ != nullptr) {
    PX_LOG(kError, "bdev", "%s: channel destroyed with %lu I/O in flight", bdev_.name(),
           in_flight_);
  }
  bdev_.state_->RetireStats(stats_);
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

void BdevChannel::Submit(const WaitingRequest& request) noexcept {
  BdevIo* io = thread_.Get();
  if (io == nullptr) [[unlikely]] {
    // Pool exhausted: the request waits for an object (never fails for it).
    thread_.AddWaitingRequest(request);
    return;
  }
  io->type_ = request.type;
  io->kind_ = BdevIo::Kind::kUser;
  io->forward_depth_ = 0;
  io->bounced_ = false;
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
  thread_.EnterSubmit();
  BdevIoStatus status = Check(*io, request.writable, request.iov != nullptr);
  if (status != BdevIoStatus::kSuccess) [[unlikely]] {
    CompleteInLayer(*io, status);
  } else {
    Dispatch(*io);
  }
  thread_.LeaveSubmit();
}

void BdevChannel::Dispatch(BdevIo& io) noexcept {
  IoType type = io.type_;
  if (CarriesData(type)) {
    // Bounced: buffers the device cannot take, and iovecs that would make a child of a split
    // end inside a block (a block over more segments than the module takes).
    if (((alignment_mask_ != 0 && Misaligned(io)) || (may_split_ && UnsplittableSegments(io))) &&
        !Bounce(io)) {
      return CompleteInLayer(io, BdevIoStatus::kFailed);
    }
    if (may_split_ && NeedsSplit(io)) return StartSplit(io);
    return SubmitToModule(io);
  }
  if (!HasType(module_supported_mask_, type)) {
    // Emulated: WRITE_ZEROES as writes of a zero buffer; FLUSH of a device without write
    // cache has nothing to do.
    if (type == IoType::kWriteZeroes) return StartSplit(io);
    return CompleteInLayer(io, BdevIoStatus::kSuccess);
  }
  if (type == IoType::kReset) AbortNoMemory();
  SubmitToModule(io);
}

void BdevChannel::Finish(BdevIo& io) noexcept {
  if (io.forward_depth_ != 0) [[unlikely]] return FinishForwarded(io);
  if (io.kind_ == BdevIo::Kind::kChild) return ChildDone(io);
  const uint64_t ticks = thread_.Now() - io.submit_tsc_;
  Deliver(io, ticks, LatencyHistogram::BucketOf(ticks));
}

void BdevChannel::Deliver(BdevIo& io, uint64_t ticks, int bucket) noexcept {
  if (io.bounced_) [[unlikely]] Unbounce(io);
  Count(io, ticks, bucket);
  BdevIoStatus status = io.status_;
  int error_number = status == BdevIoStatus::kSuccess ? 0 : io.error_number_;
  BdevIoCallback cb = io.cb_;
  void* cb_arg = io.cb_arg_;
  // Freed before the callback: a callback that submits again reuses this very object.
  thread_.Put(&io);
  cb(cb_arg, status, error_number);
}

void BdevChannel::FinishForwarded(BdevIo& io) noexcept {
  // One object, submitted and completed at the same instants at every level: one latency and
  // one histogram bucket serve them all.
  const uint64_t ticks = thread_.Now() - io.submit_tsc_;
  const int bucket = LatencyHistogram::BucketOf(ticks);
  // Every level below the origin saw a real I/O (a child of a split included).
  Count(io, ticks, bucket);
  for (int level = io.forward_depth_ - 1; level > 0; --level) {
    io.forwarded_from_[level]->Count(io, ticks, bucket);
  }
  io.forward_depth_ = 0;
  BdevChannel& origin = *io.forwarded_from_[0];
  io.bdev_ = &origin.bdev_;
  io.channel_ = &origin;
  io.module_channel_ = origin.module_channel_.get();
  if (io.kind_ == BdevIo::Kind::kChild) [[unlikely]] return origin.ChildDone(io);
  origin.Deliver(io, ticks, bucket);
}

namespace {

// The completion of a forward that could not reuse the I/O (see Forward).
void ForwardedCopyDone(void* cb_arg, BdevIoStatus status, int error_number) {
  static_cast<BdevIo*>(cb_arg)->Complete(status, error_number);
}

}  // namespace

void BdevChannel::Forward(BdevIo& io, bool writable) noexcept {
  // Check's first three checks again, against the base: written out rather than shared, as a
  // shared helper returning a status cost 4 instructions per I/O on the null bdev's path.
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
  if (status != BdevIoStatus::kSuccess) [[unlikely]] return io.Complete(status);
  // The common case: data for a base that neither bounces nor splits goes straight to its
  // module (SubmitToModule defers a completion inside the base's Submit).
  if (CarriesData(type) && !needs_data_fixups_ &&
      io.forward_depth_ != BdevIo::kMaxForwardDepth) [[likely]] {
    Retarget(io);
    return SubmitToModule(io);
  }
  // In place unless the base needs a second bounce (the I/O's bounce state is taken) or the
  // chain is too deep: then as an ordinary request whose completion completes `io`.
  bool bounce = CarriesData(type) && ((alignment_mask_ != 0 && Misaligned(io)) ||
                                      (may_split_ && UnsplittableSegments(io)));
  if ((bounce && io.bounced_) || io.forward_depth_ == BdevIo::kMaxForwardDepth) [[unlikely]] {
    bool data = CarriesData(type);
    return Submit(WaitingRequest{this, type, writable, data ? io.iovs_ : nullptr,
                                 data ? io.iovcnt_ : 0, nullptr, io.offset_blocks_,
                                 io.num_blocks_, &ForwardedCopyDone, &io});
  }
  Retarget(io);
  thread_.EnterSubmit();
  Dispatch(io);
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
