// The adaptive depth-1 choice shared by every file engine (the "queue-depth-1 lesson"):
// as soon as requests overlap, the asynchronous engine wins by far; a lone request may go
// faster as a plain synchronous preadv/pwritev on the reactor (55 us where the asynchronous
// round trip took 70 us on QEMU), or slower (on the VM here the synchronous call halts the
// vCPU, whose wake-up cost more than io_uring with the reactor polling: over NBD at depth 1,
// 124 us inline against 88 us asynchronous in poll mode, 136 against 116 in interrupt mode).
// So lone requests are timed both ways and take the faster (MeasuredChoice), with no tunable:
//
//   a request is lone when
//     - nothing else on this reactor has work (Reactor::QuietBesides): every other thread
//       found nothing in its last poll, and no poller on the reactor waits for a device or for
//       helper threads (every file channel with asynchronous requests out says so, from the
//       moment it hands one over). Blocking the reactor for one device latency would stall
//       anybody else's work, messages or completions; and
//     - no other I/O of this thread has completed without its callback having run yet
//       (BdevIo::ThreadHasUndeliveredCompletions: a request submitted before the previous
//       one was delivered means the load is not depth 1), and
//     - this channel has nothing in flight, and
//     - no overlap was seen recently: once two requests overlapped (a test above failed),
//       the next kOverlapMemory submissions on this reactor go asynchronous, so that a steady
//       depth-2+ load does not flip-flop between paths.
//   A lone request runs inline or goes to the engine as the measured choice says: the time
//   from submission to completion of each (the synchronous call; the engine's round trip with
//   the reactor's wait, spinning or sleeping as its own policy chose) is what is compared.
//   Everything else goes asynchronous.
//
// Threads: the overlap memory is per OS thread (per reactor; thread_local) and steers a
// heuristic only; what must be exact (who waits for what) is counted by the reactor, which
// moves a Thread's share along with it.
#pragma once

#include <cstdint>

#include "pollux/reactor/measured_choice.h"

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
  // request's BdevIo::ThreadHasUndeliveredCompletions(). A lone request is then timed: the
  // caller reports it with InlineFinished, or AsyncStarted and AsyncFinished.
  bool ChooseInline(bool reactor_quiet, bool completions_undelivered) noexcept {
    timing_ = Timing::kNone;
    bool alone = reactor_quiet && in_flight_ == 0 && !completions_undelivered;
    if (!alone) {
      file_overlap_credit = kOverlapMemory;
      return false;
    }
    if (file_overlap_credit != 0) {
      --file_overlap_credit;
      return false;
    }
    if (choice_.Choose() == kAsyncOption) {
      timing_ = Timing::kAsync;
      return false;
    }
    timing_ = Timing::kInline;
    ++inline_count_;
    return true;
  }
  // The inline request ChooseInline chose took `ticks`.
  void InlineFinished(uint64_t ticks) noexcept {
    timing_ = Timing::kNone;
    choice_.End(ticks);
  }

  // Whether the request about to be handed to the engine is a lone one being timed: then
  // AsyncStarted wants the time.
  bool timing_lone_async() const noexcept { return timing_ == Timing::kAsync; }
  // A request went to the asynchronous engine (the engine accepted it); `now`: the clock, for a
  // lone request (timing_lone_async), else ignored.
  void AsyncStarted(uint64_t now = 0) noexcept {
    ++in_flight_;
    ++async_count_;
    if (timing_ == Timing::kAsync) {
      timing_ = Timing::kAsyncInFlight;
      lone_start_ = now;
    }
  }
  // The engine refused the request ChooseInline looked at: nothing is timed.
  void AsyncRefused() noexcept { timing_ = Timing::kNone; }
  // An asynchronous request completed (successfully or not). True when it ends a lone
  // request's timing: then call LoneAsyncFinished with the clock.
  bool AsyncFinished() noexcept {
    --in_flight_;
    return timing_ == Timing::kAsyncInFlight && in_flight_ == 0;
  }
  void LoneAsyncFinished(uint64_t now) noexcept {
    timing_ = Timing::kNone;
    choice_.End(now - lone_start_);
  }

  // This channel's asynchronous requests in flight.
  uint32_t in_flight() const { return in_flight_; }
  // Requests this channel ran inline / asynchronously since it was created (for tests and
  // figures: the choice at depth 1, 2, 4, 32).
  uint64_t inline_count() const { return inline_count_; }
  uint64_t async_count() const { return async_count_; }
  // The measured choice for lone requests (averages, for figures and tests).
  const MeasuredChoice& lone_choice() const { return choice_; }
  static constexpr int kInlineOption = 0;
  static constexpr int kAsyncOption = 1;

 private:
  enum class Timing : uint8_t { kNone, kInline, kAsync, kAsyncInFlight };

  uint32_t in_flight_ = 0;
  Timing timing_ = Timing::kNone;
  uint64_t lone_start_ = 0;
  uint64_t inline_count_ = 0;
  uint64_t async_count_ = 0;
  // Inline first; equal averages go asynchronous (the reactor stays free).
  MeasuredChoice choice_;
};

}  // namespace pollux
