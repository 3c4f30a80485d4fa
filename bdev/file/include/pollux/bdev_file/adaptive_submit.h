// The adaptive depth-1 choice shared by every file engine (the "queue-depth-1 lesson"):
// a lone request goes fastest as a plain synchronous preadv/pwritev on the reactor (55 us
// where the asynchronous round trip took 70 us on QEMU); as soon as requests overlap, the
// asynchronous engine wins by far. The choice is made per request from the observed depth,
// with no tunable:
//
//   inline (synchronous, on the reactor) when
//     - nothing else on this reactor has work (Reactor::QuietBesides): every other thread
//       found nothing in its last poll, and no poller on the reactor waits for a device or for
//       helper threads (every file channel with asynchronous requests out says so, from the
//       moment it hands one over). Blocking the reactor for one device latency is the point
//       at depth 1 and would stall anybody else's work, messages or completions; and
//     - no other I/O of this thread has completed without its callback having run yet
//       (BdevIo::ThreadHasUndeliveredCompletions: a request submitted before the previous
//       one was delivered means the load is not depth 1), and
//     - no overlap was seen recently: once two requests overlapped (either test above failed),
//       the next kOverlapMemory submissions on this reactor go asynchronous, so that a steady
//       depth-2+ load does not flip-flop between paths.
//   asynchronous otherwise.
//
// Threads: the overlap memory is per OS thread (per reactor; thread_local) and steers a
// heuristic only; what must be exact (who waits for what) is counted by the reactor, which
// moves a Thread's share along with it.
#pragma once

#include <cstdint>

namespace pollux {

// Submissions left on this reactor that must go asynchronous (constinit: no TLS init-wrapper
// call on access).
extern constinit thread_local uint32_t file_overlap_credit;

// How many submissions after an observed overlap stay asynchronous.
inline constexpr uint32_t kOverlapMemory = 64;

// Per-channel side of the policy. FileChannel owns one; engines need not touch it.
class AdaptiveSubmit {
 public:
  // In Submit, on the channel's thread: whether to run this request inline.
  // `reactor_quiet`: Reactor::QuietBesides(this thread); `completions_undelivered`: the
  // request's BdevIo::ThreadHasUndeliveredCompletions().
  bool ChooseInline(bool reactor_quiet, bool completions_undelivered) noexcept {
    bool alone = reactor_quiet && in_flight_ == 0 && !completions_undelivered;
    if (!alone) {
      file_overlap_credit = kOverlapMemory;
      return false;
    }
    if (file_overlap_credit != 0) {
      --file_overlap_credit;
      return false;
    }
    ++inline_count_;
    return true;
  }
  // A request went to the asynchronous engine (the engine accepted it).
  void AsyncStarted() noexcept {
    ++in_flight_;
    ++async_count_;
  }
  // An asynchronous request completed (successfully or not).
  void AsyncFinished() noexcept { --in_flight_; }

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
