#include "active_percent_load.h"

#include <rte_cycles.h>
#include <rte_pause.h>

#include <algorithm>

#include "pollux/reactor/thread.h"

namespace pollux::testing {

void ActivePercentLoad::Start(uint32_t active_percent) {
  period_tsc_ = rte_get_tsc_hz() * static_cast<uint64_t>(kPeriod.count()) / 1'000'000;
  PollerOptions options;
  options.period = kPeriod;
  poller_ = PollerHandle(Thread::Current()->RegisterPoller(
      "active_percent_load", [this] { return Run(); }, std::move(options)));
  // Paused first, so that SetActivePercent sees a change from 0 and starts the clock.
  poller_->Pause();
  SetActivePercent(active_percent);
}

void ActivePercentLoad::SetActivePercent(uint32_t active_percent) {
  active_percent_ = std::min<uint32_t>(active_percent, 100);
  if (active_percent_ == 0) {
    poller_->Pause();
    return;
  }
  if (poller_->paused()) {
    // The time spent paused is owed nothing: the share counts from now.
    last_run_tsc_ = rte_rdtsc();
    poller_->Resume();
  }
}

PollResult ActivePercentLoad::Run() noexcept {
  const uint64_t start = rte_rdtsc();
  // Capped before the multiplication (which then cannot overflow) and after it: a run after a
  // long stall spins one period, not the whole debt, so the thread still answers messages.
  const uint64_t elapsed = std::min(start - last_run_tsc_, 1000 * period_tsc_);
  const uint64_t owed = std::min(elapsed * active_percent_ / 100, period_tsc_);
  // The next run owes a share of the time from this start, the spin included: over many runs
  // the spins add up to exactly `active_percent` of the wall time.
  last_run_tsc_ = start;
  if (owed == 0) return PollResult::kIdle;
  const uint64_t end = start + owed;
  // Busy work that a scheduler must see as such: the core is held for the whole spin.
  while (rte_rdtsc() < end) rte_pause();
  return PollResult::kBusy;
}

}  // namespace pollux::testing
