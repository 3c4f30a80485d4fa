// The adaptive depth-1 choice shared by every file engine (the "queue-depth-1 lesson"):
// a lone request goes fastest as a plain synchronous preadv/pwritev on the reactor (55 us
// where the asynchronous round trip took 70 us on QEMU); as soon as requests overlap, the
// asynchronous engine wins by far. The choice is made per request from the observed depth,
// with no tunable:
//
//   inline (synchronous, on the reactor) when
//     - nothing is in flight asynchronously on this thread, over every file channel of every
//       file bdev (a thread-local count), and
//     - no other I/O of this thread has completed without its callback having run yet
//       (BdevIo::ThreadHasUndeliveredCompletions: a request submitted before the previous
//       one was delivered means the load is not depth 1), and
//     - no overlap was seen recently: once two requests overlapped (either test above failed),
//       the next kOverlapMemory submissions on this thread go asynchronous, so that a steady
//       depth-2+ load does not flip-flop between paths.
//   asynchronous otherwise.
//
// A reactor running inline is blocked for one device latency: that is the point at depth 1
// (nothing else to do) and is never chosen while other file I/O on the thread is pending.
//
// Threads: all state is per OS thread (thread_local) and touched only by the reactor running
// the channel; a pollux Thread that moves to another reactor simply starts with that
// reactor's state, which is safe (the counts only steer a heuristic).
#pragma once

#include <cstdint>

namespace pollux {

// The per-reactor load that the policy reads. One per OS thread.
struct FileThreadLoad {
  uint32_t in_flight = 0;             // asynchronous file I/O outstanding on this thread
  uint32_t overlap_credit = 0;        // submissions left that must go asynchronous
};

// This OS thread's load (constinit: no TLS init-wrapper call on access).
extern constinit thread_local FileThreadLoad file_thread_load;

// How many submissions after an observed overlap stay asynchronous.
inline constexpr uint32_t kOverlapMemory = 64;

// Per-channel side of the policy. FileChannel owns one; engines need not touch it.
class AdaptiveSubmit {
 public:
  // In Submit, on the channel's thread: whether to run this request inline.
  // `completions_undelivered`: the request's BdevIo::ThreadHasUndeliveredCompletions().
  bool ChooseInline(bool completions_undelivered) noexcept {
    FileThreadLoad& load = file_thread_load;
    bool alone = load.in_flight == 0 && !completions_undelivered;
    if (!alone) {
      load.overlap_credit = kOverlapMemory;
      return false;
    }
    if (load.overlap_credit != 0) {
      --load.overlap_credit;
      return false;
    }
    ++inline_count_;
    return true;
  }
  // A request went to the asynchronous engine (the engine accepted it).
  void AsyncStarted() noexcept {
    ++file_thread_load.in_flight;
    ++in_flight_;
    ++async_count_;
  }
  // An asynchronous request completed (successfully or not).
  void AsyncFinished() noexcept {
    --file_thread_load.in_flight;
    --in_flight_;
  }

  // This channel's asynchronous requests in flight.
  uint32_t in_flight() const { return in_flight_; }
  // Requests this channel ran inline / asynchronously since it was created (for tests and
  // figures: the choice at depth 1, 2, 4, 32).
  uint64_t inline_count() const { return inline_count_; }
  uint64_t async_count() const { return async_count_; }

 private:
  uint32_t in_flight_ = 0;
  uint64_t inline_count_ = 0;
  uint64_t async_count_ = 0;
};

}  // namespace pollux
