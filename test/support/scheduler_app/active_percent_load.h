// The load of one scheduler test thread: a timed poller that makes its Thread busy for a given
// share of wall time (SPDK's test/event/scheduler "active_percent") and lets the reactor sleep
// for the rest.
//
// How: the poller runs once per millisecond (a timed poller, whose deadline is the reactor's
// sleep timeout in interrupt mode) and spins, reporting kBusy, for `active_percent` of the wall
// time since its previous run. Runs that come late (the reactor woke late, or another busy
// thread held it) owe more and spin longer, up to one period, so the thread's busy time over
// any second is `active_percent` of that second as long as its core can give it that much.
// At 0 the poller is paused: a paused timed poller sets no deadline, so an otherwise idle
// reactor sleeps until a message comes.
//
// Threads: created anywhere, then owned by one Thread: Start, SetActivePercent and the
// destructor run on that thread (the poller moves with it when the scheduler moves it).
#pragma once

#include <chrono>
#include <cstdint>

#include "pollux/reactor/poller.h"

namespace pollux::testing {

class ActivePercentLoad {
 public:
  // How often the poller runs: the window whose share it spins.
  static constexpr std::chrono::microseconds kPeriod{1000};

  // Inert until Start. Any thread.
  ActivePercentLoad() = default;
  // Unregisters the poller. On the owning thread.
  ~ActivePercentLoad() = default;
  ActivePercentLoad(const ActivePercentLoad&) = delete;
  ActivePercentLoad& operator=(const ActivePercentLoad&) = delete;

  // Registers the poller on the calling Thread, which then owns this load. `active_percent`
  // is 0 to 100. Once.
  void Start(uint32_t active_percent);
  // Changes the share from the next run on; 0 pauses the poller. On the owning thread.
  void SetActivePercent(uint32_t active_percent);
  uint32_t active_percent() const { return active_percent_; }

 private:
  PollResult Run() noexcept;

  uint32_t active_percent_ = 0;
  uint64_t period_tsc_ = 0;    // kPeriod in TSC ticks: the longest spin of one run
  uint64_t last_run_tsc_ = 0;  // when the previous run started (or the share last changed)
  PollerHandle poller_;
};

}  // namespace pollux::testing
