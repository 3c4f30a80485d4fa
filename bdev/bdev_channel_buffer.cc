// Reads without a buffer (BdevDesc::ReadWithoutBuffer, BdevIo::GetDataBuffer; SPDK's
// spdk_bdev_io_get_buf): the channel's half. The buffers themselves, their per-thread caches
// and the queue of I/O waiting for one are BdevBufferCache's (bdev_buffer_cache.h), driven by
// the thread context.
//
// The path of such a read:
// - SubmitReadWithoutBuffer (bdev_channel.cc, beside Submit, whose first half it shares):
//   its own entry, so Submit tests nothing for it; marked kReadData (its callback is a
//   BdevReadDataCallback). SubmitWithoutBuffer checks it as if it had a buffer and marks it
//   kNeedsBuffer.
// - A module that takes such reads (takes_reads_without_buffer) gets it as it is and calls
//   GetDataBuffer when it needs memory; for the others the layer asks for the buffer itself
//   and submits once it has it (LayerBufferReady). A read the layer splits here always gets
//   its buffer first: the caller must see one buffer, not one per child.
// - A module that takes them may forward one still without buffer (BdevDesc::Forward): the
//   base's channel decides the same way (ForwardSlow, SubmitNeedingBuffer); the buffer then
//   goes back at the origin's delivery, on the same thread.
// - Delivery (DeliverWithData): the callback gets a copy of the iovec (the BdevIo is free
//   before the callback, as every BdevIo), then the buffer goes back, to the oldest read of
//   this thread waiting for one of that size, or to the cache.
#include <cstdint>

#include "bdev_channel.h"
#include "pollux/env/log.h"

namespace pollux {

void BdevIo::GetDataBuffer(BdevIoBufferCallback cb) noexcept {
  if ((data_flags_ & kNeedsBuffer) == 0) return cb(*this, BdevIoStatus::kSuccess);
  channel_->RequestBuffer(*this, cb);
}

void BdevChannel::SubmitWithoutBuffer(BdevIo& io) noexcept {
  // Check refuses a null buffer: it checks the rest with a stand-in. A READ: the descriptor's
  // mode does not matter.
  static char stand_in;
  io.single_iov_.iov_base = &stand_in;
  BdevIoStatus status = Check(io, /*writable=*/false, /*caller_iovs=*/false);
  io.single_iov_.iov_base = nullptr;
  if (status != BdevIoStatus::kSuccess) return CompleteInLayer(io, status);
  io.data_flags_ |= BdevIo::kNeedsBuffer;
  SubmitNeedingBuffer(io);
}

void BdevChannel::SubmitNeedingBuffer(BdevIo& io) noexcept {
  if (takes_reads_without_buffer_ && !(may_split_ && NeedsSplit(io))) return SubmitToModule(io);
  RequestBuffer(io, &LayerBufferReady);
}

void BdevChannel::LayerBufferReady(BdevIo& io, BdevIoStatus status) noexcept {
  BdevChannel& channel = *io.channel_;
  if (status != BdevIoStatus::kSuccess) return channel.CompleteInLayer(io, status);
  // The buffer meets the bdev's alignment and memory already: nothing to bounce.
  if (channel.may_split_ && channel.NeedsSplit(io)) return channel.StartSplit(io);
  channel.SubmitToModule(io);
}

void BdevChannel::DeliverWithData(BdevIo& io) noexcept {
  if (io.data_flags_ & BdevIo::kBounced) Unbounce(io);
  const uint8_t flags = io.data_flags_;
  BdevIoStatus status = io.status_;
  if ((flags & BdevIo::kReadData) && status == BdevIoStatus::kSuccess &&
      io.iovs_[0].iov_base == nullptr) [[unlikely]] {
    // A module that takes reads without buffer completed one without giving it any.
    PX_LOG(kError, "bdev", "%s: a read without buffer completed without data: failed",
           bdev_.name());
    status = BdevIoStatus::kFailed;
  }
  int error_number = status == BdevIoStatus::kSuccess ? 0 : io.error_number_;
  BdevIoCallback cb = io.cb_;
  void* cb_arg = io.cb_arg_;
  // Copied out: the callback may submit again, into this very object.
  const iovec data = (flags & BdevIo::kReadData) != 0 ? io.iovs_[0] : iovec{};
  const int pool = io.buffer_pool_;
  void* const buffer = io.buffer_;
  thread_.Put(&io);
  if ((flags & BdevIo::kReadData) == 0) {
    cb(cb_arg, status, error_number);
  } else if (status == BdevIoStatus::kSuccess) {
    LoadReadDataCallback(cb)(cb_arg, status, 0, &data, 1);
  } else {
    LoadReadDataCallback(cb)(cb_arg, status, error_number, nullptr, 0);
  }
  // After the callback: the caller read the data from it until now.
  if (flags & BdevIo::kLentBuffer) thread_.ReleaseBuffer(pool, buffer);
}

void BdevChannel::AbortBufferWaiters() noexcept {
  for (BdevIo* io : thread_.CancelBufferWaits(this)) CompleteInLayer(*io, BdevIoStatus::kAborted);
}

}  // namespace pollux
