// The static scheduler: every thread on its home core, where the user put it (its creation
// core, or its core when thread_set_cpumask last changed its mask). Nothing moves once every
// thread is home, so selecting it undoes whatever another scheduler moved. Private.
#pragma once

#include <string_view>
#include <vector>

#include "pollux/scheduler/scheduler.h"

namespace pollux {

class StaticScheduler final : public Scheduler {
 public:
  std::string_view name() const override { return "static"; }
  void Balance(const SchedulerInput& input, std::vector<int>& placement) override {
    for (size_t i = 0; i < input.threads.size(); ++i) placement[i] = input.threads[i].home_cpu;
  }
};

}  // namespace pollux
