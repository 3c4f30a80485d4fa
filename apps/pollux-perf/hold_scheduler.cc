#include "hold_scheduler.h"

#include <memory>
#include <string_view>
#include <vector>

#include "pollux/scheduler/scheduler.h"

namespace pollux::perf {
namespace {

class HoldScheduler final : public Scheduler {
 public:
  std::string_view name() const override { return kHoldSchedulerName; }
  // `placement` comes preset to each thread's current core: leaving it moves nothing.
  void Balance(const SchedulerInput&, std::vector<int>&) override {}
};

}  // namespace

absl::Status RegisterHoldScheduler() {
  return RegisterScheduler(
      kHoldSchedulerName, [](const SchedulerLimits&) { return std::make_unique<HoldScheduler>(); });
}

}  // namespace pollux::perf
