// The scheduler service: the selected Scheduler, run every period by a timed poller on the app
// thread. Each period it samples every thread's busy time (ReactorRuntime::SnapshotThreads),
// turns the growth since the last sample into a load in percent of a core, asks the scheduler
// where each thread goes, and moves the threads that change core (Thread::Move). A thread
// outside its cpumask (its mask changed during a move) is sent home whatever the scheduler
// says. Private.
#pragma once

#include <cstdint>
#include <map>
#include <memory>

#include "absl/status/status.h"
#include "pollux/reactor/poller.h"
#include "pollux/scheduler/scheduler.h"

namespace pollux {

class SchedulerService {
 public:
  // The running service, or nullptr (before the scheduler subsystem starts, after it stops).
  static SchedulerService* Get();
  // On the app thread: starts with `config` (already checked).
  static void Start(const SchedulerConfig& config, std::unique_ptr<Scheduler> scheduler);
  static void Stop();

  const SchedulerConfig& config() const { return config_; }
  // Replaces the scheduler and its period; runs the new one at once (a switch to static puts
  // threads home without waiting a period).
  void Select(const SchedulerConfig& config, std::unique_ptr<Scheduler> scheduler);
  // One period: sample, balance, move. Returns the number of moves started.
  int RunPeriod();

 private:
  SchedulerService(const SchedulerConfig& config, std::unique_ptr<Scheduler> scheduler);
  void RegisterPoller();

  struct Sample {
    uint64_t busy_tsc = 0;
    uint64_t tsc = 0;
    uint64_t last_move_period = UINT64_MAX;  // never
    uint64_t seen_period = 0;
  };

  SchedulerConfig config_;
  std::unique_ptr<Scheduler> scheduler_;
  PollerHandle poller_;
  uint64_t period_ = 0;
  std::map<uint64_t, Sample> samples_;  // by thread id
};

}  // namespace pollux
