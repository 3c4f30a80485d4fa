// Abort (SPDK's spdk_bdev_abort): every caller I/O of a channel submitted with a given cb_arg.
//
// The channel's in-flight list says which I/O match; where each one is says who aborts it:
// - waiting for a BdevIo (the thread's waiting requests): the layer, at once;
// - waiting for a data buffer (a read without buffer): the layer, at once;
// - refused by its module with kNoMemory and queued for a retry: the layer, at once;
// - a split parent: the layer stops cutting children and aborts those it has out (each by
//   these same rules); the parent completes with kAborted once they are back;
// - in a module: the module, through Bdev::Abort, which may pass it down to its base.
// The abort is a BdevIo of its own (Kind::kAbort) that counts the module aborts it waits for:
// its callback runs once every one has answered, after the aborted I/O's own callbacks that
// the layer completed, and never inside the Abort call.
#include <cerrno>

#include "bdev_channel.h"

namespace pollux {

void BdevChannel::Abort(const WaitingRequest& request) noexcept {
  BdevIo* abort = thread_.Get();
  if (abort == nullptr) [[unlikely]] {
    thread_.AddWaitingRequest(request);
    return;
  }
  abort->kind_ = BdevIo::Kind::kAbort;
  abort->forward_depth_ = 0;
  abort->data_flags_ = 0;
  abort->bdev_ = &bdev_;
  abort->channel_ = this;
  abort->module_channel_ = module_channel_.get();
  abort->cb_ = request.cb;
  abort->cb_arg_ = request.cb_arg;
  abort->error_number_ = 0;
  abort->children_status_ = BdevIoStatus::kSuccess;
  // One reference held by this walk, so that module aborts answering at once cannot complete
  // the abort before every match has been seen.
  abort->children_in_flight_ = 1;
  void* const target = request.buf;  // the cb_arg to abort (WaitingRequest::abort)

  thread_.EnterSubmit();
  // Completions below are deferred to the thread's next poll (in_submit), so nothing leaves
  // the in-flight list while it is walked.
  size_t matched = thread_.AbortWaitingRequests(this, target, abort);
  for (BdevIo* io = in_flight_.front(); io != nullptr; io = BdevInFlightList::next(*io)) {
    if (io->kind_ != BdevIo::Kind::kUser || io->cb_arg_ != target) continue;
    ++matched;
    AbortOne(*io, *abort);
  }
  if (matched == 0) {
    // Nothing to abort is a failure the caller can tell apart: kFailed with ENOENT.
    abort->children_status_ = BdevIoStatus::kFailed;
    abort->error_number_ = ENOENT;
  }
  AbortAnswered(abort, BdevIoStatus::kSuccess, 0);  // the walk's reference
  thread_.LeaveSubmit();
}

void BdevChannel::AbortOne(BdevIo& io, BdevIo& abort) noexcept {
  // Where the I/O is now: after BdevDesc::Forward, a lower bdev's channel.
  BdevChannel& at = *io.channel_;
  if (io.status_ == BdevIoStatus::kNoMemory) {
    // Only the retry queue holds an I/O with this status (the retry resets it).
    at.UnqueueNoMemory(io);
    return at.CompleteInLayer(io, BdevIoStatus::kAborted);
  }
  if (io.data_flags_ & BdevIo::kWaitingForBuffer) {
    // Waiting for a data buffer (the layer's request or its module's GetDataBuffer): out of
    // the thread's queue; the module, if it asked, never hears back (as in SPDK).
    thread_.CancelBufferWait(io);
    return at.CompleteInLayer(io, BdevIoStatus::kAborted);
  }
  // A split parent: its live children are on the in-flight list of the channel that cut them.
  bool split_parent = io.waiting_for_io_;
  for (BdevIo* child = at.in_flight_.front(); child != nullptr;
       child = BdevInFlightList::next(*child)) {
    if (child->kind_ != BdevIo::Kind::kChild || child->parent_ != &io) continue;
    if (!split_parent) {
      split_parent = true;
      // No more children; the parent fails with kAborted once those out are back.
      io.split_next_block_ = io.offset_blocks_ + io.num_blocks_;
      if (io.children_status_ == BdevIoStatus::kSuccess)
        io.children_status_ = BdevIoStatus::kAborted;
    }
    if (child->status_ == BdevIoStatus::kNoMemory) {
      child->channel_->UnqueueNoMemory(*child);
      child->channel_->CompleteInLayer(*child, BdevIoStatus::kAborted);
    } else {
      ++abort.children_in_flight_;
      child->bdev_->Abort(*child, &AbortDone, &abort);
    }
  }
  if (io.waiting_for_io_) {
    // No child out and none to be had: the layer ends it now.
    thread_.RemoveWaitingParent(&io);
    io.waiting_for_io_ = false;
    return at.CompleteInLayer(io, BdevIoStatus::kAborted);
  }
  if (split_parent) return;
  ++abort.children_in_flight_;
  io.bdev_->Abort(io, &AbortDone, &abort);
}

void BdevChannel::AbortDone(void* cb_arg, BdevIoStatus status, int error_number) {
  auto* abort = static_cast<BdevIo*>(cb_arg);
  abort->channel_->AbortAnswered(abort, status, error_number);
}

void BdevChannel::AbortAnswered(BdevIo* abort, BdevIoStatus status, int error_number) noexcept {
  if (status != BdevIoStatus::kSuccess && abort->children_status_ == BdevIoStatus::kSuccess) {
    abort->children_status_ = status;
    abort->error_number_ = error_number;
  }
  if (--abort->children_in_flight_ == 0) {
    CompleteInLayer(*abort, abort->children_status_, abort->error_number_);
  }
}

void BdevChannel::DeliverAbort(BdevIo& abort) noexcept {
  // The requests it took from the wait for a BdevIo first: their callbacks come before the
  // abort's, as the module-aborted ones' do.
  thread_.DeliverAbortedRequests(&abort);
  BdevIoStatus status = abort.status_;
  int error_number = status == BdevIoStatus::kSuccess ? 0 : abort.error_number_;
  BdevIoCallback cb = abort.cb_;
  void* cb_arg = abort.cb_arg_;
  thread_.Put(&abort);
  cb(cb_arg, status, error_number);
}

void BdevChannel::UnqueueNoMemory(BdevIo& io) noexcept {
  BdevIo* previous = nullptr;
  for (BdevIo* queued = nomem_head_; queued != nullptr; queued = queued->next_) {
    if (queued != &io) {
      previous = queued;
      continue;
    }
    (previous != nullptr ? previous->next_ : nomem_head_) = io.next_;
    if (nomem_tail_ == &io) nomem_tail_ = previous;
    break;
  }
  io.status_ = BdevIoStatus::kSuccess;
}

}  // namespace pollux
