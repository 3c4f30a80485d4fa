#include "aio_queue.h"

#include <cerrno>
#include <cstring>
#include <utility>

#include "pollux/env/log.h"

namespace pollux {

absl::StatusOr<std::unique_ptr<AioQueue>> AioQueue::Create(const Options& options,
                                                           CompletionFn on_complete, void* arg) {
  if (options.depth == 0) return absl::InvalidArgumentError("aio queue depth must not be 0");
  absl::StatusOr<EventFd> event_fd = EventFd::Create();
  if (!event_fd.ok()) return event_fd.status();
  absl::StatusOr<AioContext> context =
      AioContext::Create(options.depth, options.reap_from_user_ring);
  if (!context.ok()) return context.status();
  return std::unique_ptr<AioQueue>(new AioQueue(options.depth, std::move(*context),
                                                std::move(*event_fd), on_complete, arg));
}

AioQueue::AioQueue(uint32_t depth, AioContext context, EventFd event_fd,
                   CompletionFn on_complete, void* arg)
    : depth_(depth),
      queue_(new iocb*[depth]),
      failed_(new Refused[depth]),
      stash_(new io_event[kReapBatch]),
      on_complete_(on_complete),
      arg_(arg),
      event_fd_(std::move(event_fd)),
      context_(std::move(context)) {}

AioQueue::~AioQueue() {
  if (!idle()) {
    PX_LOG(kError, "aio", "queue destroyed with %u iocbs queued, %u in flight, %u refused",
           queued_, in_flight_, failed_count_);
  }
}

bool AioQueue::Arm() noexcept {
  if (queued_ != 0) SubmitQueued();
  // Queued iocbs the kernel did not take (EAGAIN) or refused: this thread has work now.
  if (queued_ != 0 || failed_count_ != 0 || stash_count_ != 0) return false;
  if (context_.reaps_from_user_ring()) return !context_.HasCompletions();
  // The fallback cannot look without taking: take them now, the next poll completes them.
  if (in_flight_ == 0) return true;
  stash_count_ = static_cast<uint32_t>(context_.Reap(stash_.get(), kReapBatch));
  return stash_count_ == 0;
}

uint32_t AioQueue::SubmitQueued() noexcept {
  uint32_t start = 0;
  uint32_t taken = 0;
  while (start < queued_) {
    ++submit_calls_;
    int rc = context_.Submit(queue_.get() + start, queued_ - start);
    if (rc > 0) {
      // All taken (the usual case), or part of them: then the rest is tried again at once,
      // and the next call says why the first of them was not taken.
      start += static_cast<uint32_t>(rc);
      taken += static_cast<uint32_t>(rc);
      continue;
    }
    if (rc == -EAGAIN || rc == 0) {
      // The kernel has no room now: the rest stays queued for the next poll, when completions
      // have freed some.
      ++eagain_count_;
      break;
    }
    // This iocb's own error (a bad fd, an operation the file does not do): it completes
    // with it at the end of the poll, and the ones after it are tried.
    failed_[failed_count_++] = Refused{queue_[start], -rc};
    ++start;
  }
  if (start != 0) {
    queued_ -= start;
    std::memmove(queue_.get(), queue_.get() + start, queued_ * sizeof(iocb*));
  }
  in_flight_ += taken;
  return taken;
}

uint32_t AioQueue::Reap() noexcept {
  uint32_t total = 0;
  if (failed_count_ != 0) [[unlikely]] total += CompleteRefused();
  if (stash_count_ != 0) [[unlikely]] {
    // Taken from the kernel by the fallback's arm hook (callbacks never arm, so the stash
    // stays as it is while it is walked).
    uint32_t count = std::exchange(stash_count_, 0);
    in_flight_ -= count;
    for (uint32_t i = 0; i < count; ++i) on_complete_(arg_, *stash_[i].obj, stash_[i].res);
    total += count;
  }
  if (in_flight_ == 0) return total;
  io_event events[kReapBatch];
  for (;;) {
    int count = context_.Reap(events, kReapBatch);
    if (count <= 0) break;
    in_flight_ -= static_cast<uint32_t>(count);
    for (int i = 0; i < count; ++i) on_complete_(arg_, *events[i].obj, events[i].res);
    total += static_cast<uint32_t>(count);
    if (static_cast<unsigned>(count) < kReapBatch) break;
  }
  return total;
}

uint32_t AioQueue::CompleteRefused() noexcept {
  // Only SubmitQueued adds refusals, and callbacks never call it, so the entries stay put
  // while they are walked; the count drops before each callback so that its slot is free for
  // an iocb the callback queues.
  uint32_t count = failed_count_;
  for (uint32_t i = 0; i < count; ++i) {
    Refused refused = failed_[i];
    --failed_count_;
    on_complete_(arg_, *refused.cb, -static_cast<int64_t>(refused.error_number));
  }
  return count;
}

}  // namespace pollux
