// The dynamic scheduler (SPDK's scheduler_dynamic, reworked): idle threads gather on the main
// core, then on the lowest cores that fit them, so that the reactors they leave sleep; the
// threads of an overloaded core, busiest first, spread to the least loaded cores that fit them. A move never
// takes a core above core_limit, a thread moves only within its cpumask, and a thread that
// moved is held where it is for kHoldPeriods periods (no ping-pong on loads that hover at a
// limit). Pure: no clock, no reactor; the service passes the loads in. Private.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "pollux/scheduler/scheduler.h"

namespace pollux {

class DynamicScheduler final : public Scheduler {
 public:
  // Periods a moved thread stays where it went.
  static constexpr uint64_t kHoldPeriods = 3;

  explicit DynamicScheduler(const SchedulerLimits& limits) : limits_(limits) {}
  std::string_view name() const override { return "dynamic"; }
  void Balance(const SchedulerInput& input, std::vector<int>& placement) override;

 private:
  SchedulerLimits limits_;
};

}  // namespace pollux
