// AioQueue: one channel's path to the kernel through Linux AIO. Iocbs are queued as requests
// arrive and go to the kernel together, in one io_submit per poll (or at once, when the caller
// sees the kernel starving: SubmitQueued may be called any time); completions are reaped from
// the context's user-space ring; every iocb carries the queue's eventfd, which a reactor in
// interrupt mode watches to sleep while I/O is in flight. Private to the aio module; it knows
// nothing of bdevs (the iocbs and what they belong to are the caller's), so tests drive it
// directly.
//
// Threads: an AioQueue belongs to the thread that created it; every call is made there.
#pragma once

#include <libaio.h>

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "aio_context.h"

namespace pollux {

class AioQueue {
 public:
  // Called for every iocb that finished: `res` is the kernel's result (bytes transferred, or
  // -errno), also for an iocb io_submit refused. May queue new iocbs (Enqueue) from inside.
  using CompletionFn = void (*)(void* arg, iocb& cb, int64_t res) noexcept;

  struct Options {
    // How many iocbs may be queued and in flight together (io_setup's nr_events).
    uint32_t depth = 128;
    // False: reap with io_getevents (the fallback), for tests and comparisons.
    bool reap_from_user_ring = true;
  };

  static absl::StatusOr<std::unique_ptr<AioQueue>> Create(const Options& options,
                                                          CompletionFn on_complete, void* arg);
  // Destroys the AIO context first (io_destroy waits for what is still in flight; those
  // completions are not delivered: destroy an idle queue).
  ~AioQueue();
  AioQueue(const AioQueue&) = delete;
  AioQueue& operator=(const AioQueue&) = delete;

  // Queues `cb` (prepared by the caller, `cb.data` is its own) for the next submission and
  // makes the kernel signal event_fd() when it completes. False when `depth` iocbs are queued
  // or in flight already: the caller retries later (a bdev answers kNoMemory).
  bool Enqueue(iocb& cb) noexcept {
    if (queued_ + in_flight_ + failed_count_ >= depth_) [[unlikely]] return false;
    io_set_eventfd(&cb, event_fd_.fd());
    queue_[queued_++] = &cb;
    return true;
  }

  // Hands everything queued to the kernel: one io_submit in the normal case (more only when
  // the kernel takes part of the batch). Returns how many iocbs it took. What the kernel has no
  // room for (EAGAIN) stays queued for the next call; an iocb refused with its own error is
  // completed with it by the next Reap. Completes nothing itself.
  uint32_t SubmitQueued() noexcept;

  // Completes what finished: iocbs refused at submission, then the completion ring's events
  // (no syscall when the ring is empty). Returns how many it completed.
  uint32_t Reap() noexcept;

  // Reap, then SubmitQueued (what the completions queued goes out at once). Whether it did
  // anything. For callers without a poll loop of their own (tests).
  bool Poll() noexcept { return (Reap() + SubmitQueued()) != 0; }

  // The poller's arm hook (the reactor is about to sleep): submits what is queued, then says
  // whether sleeping is safe: false when completions are already waiting. A completion after
  // this check signals event_fd(), which the sleeping reactor watches.
  bool Arm() noexcept;

  int event_fd() const { return event_fd_.fd(); }
  uint32_t depth() const { return depth_; }
  uint32_t queued() const { return queued_; }
  uint32_t in_flight() const { return in_flight_; }
  // Nothing queued, in flight, or waiting to be completed: the poller may pause.
  bool idle() const { return queued_ == 0 && in_flight_ == 0 && failed_count_ == 0; }
  bool reaps_from_user_ring() const { return context_.reaps_from_user_ring(); }

  // Counters, for tests and statistics.
  uint64_t submit_calls() const { return submit_calls_; }
  uint64_t eagain_count() const { return eagain_count_; }

 private:
  // An iocb io_submit refused with an error of its own, completed at the end of the poll.
  struct Refused {
    iocb* cb;
    int error_number;
  };
  // Completions moved out of the ring per pass.
  static constexpr unsigned kReapBatch = 32;

  AioQueue(uint32_t depth, AioContext context, EventFd event_fd, CompletionFn on_complete,
           void* arg);
  uint32_t CompleteRefused() noexcept;

  const uint32_t depth_;
  uint32_t queued_ = 0;     // queue_[0, queued_) wait for io_submit
  uint32_t in_flight_ = 0;  // taken by the kernel, not reaped yet
  uint32_t failed_count_ = 0;
  std::unique_ptr<iocb*[]> queue_;
  std::unique_ptr<Refused[]> failed_;
  // The fallback's arm hook must take events to know of them: they wait here for the poll.
  std::unique_ptr<io_event[]> stash_;
  uint32_t stash_count_ = 0;
  CompletionFn on_complete_;
  void* arg_;
  uint64_t submit_calls_ = 0;
  uint64_t eagain_count_ = 0;
  EventFd event_fd_;
  AioContext context_;  // last: destroyed first, while the eventfd still exists
};

}  // namespace pollux
