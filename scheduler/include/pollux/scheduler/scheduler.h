// Thread placement (SPDK's scheduler framework): every period a scheduler reads how busy each
// lightweight Thread was and decides on which reactor each runs next. The built-in ones are
// `static` (threads stay where they were put; switching to it puts every thread back on its
// home core) and `dynamic` (idle threads gather on the fewest cores so that the emptied
// reactors sleep; busy ones spread so that no core is above its load limit). A user plugs in
// another with RegisterScheduler and selects it by name (framework_set_scheduler).
//
// Threads: the service that runs the scheduler lives on the app thread; Balance runs there.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pollux {

// The dynamic scheduler's limits, in percent of a core (SPDK's names and defaults).
struct SchedulerLimits {
  // A thread busier than this is busy: it is never gathered onto another thread's core.
  uint32_t load_limit = 20;
  // No move may take a core above this load.
  uint32_t core_limit = 80;
  // A core above this is overloaded: its busy threads are spread to other cores.
  uint32_t core_busy = 95;
};

// One thread as a scheduler sees it at the end of a period.
struct ThreadLoad {
  uint64_t id = 0;
  std::string name;
  int cpu = -1;       // where it runs now
  int home_cpu = -1;  // where the user put it
  std::vector<int> cpumask;  // ascending: the cores it may run on
  // Busy time over the period, in percent of one core (0-100; a thread that appeared during
  // the period counts from its first sample).
  double load = 0;
  // Periods since it last moved (a large number when it never did).
  uint64_t periods_since_move = UINT64_MAX;
};

// What a scheduler decides from: every reactor's core (ascending) and every thread. The first
// core hosts the app thread: the dynamic scheduler gathers idle threads there.
struct SchedulerInput {
  std::vector<int> cpus;
  int main_cpu = -1;
  std::vector<ThreadLoad> threads;
};

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  virtual std::string_view name() const = 0;
  // Called once when the scheduler is selected, then once per period: writes the core each
  // thread is to run on into `placement` (sized as input.threads, preset to each thread's
  // current core). A core outside a thread's cpumask is ignored (the thread then goes home).
  virtual void Balance(const SchedulerInput& input, std::vector<int>& placement) = 0;
};

using SchedulerFactory = std::function<std::unique_ptr<Scheduler>(const SchedulerLimits&)>;

// Makes `name` selectable by framework_set_scheduler. Fails when the name is taken. Call at
// start-up (a static initializer of a module, or before RunApp).
absl::Status RegisterScheduler(std::string name, SchedulerFactory factory);
// The registered names, "dynamic" and "static" among them, sorted.
std::vector<std::string> SchedulerNames();

struct SchedulerConfig {
  std::string name = "static";
  uint64_t period_us = 1'000'000;
  SchedulerLimits limits;
};

// Selects the scheduler and its period (framework_set_scheduler). On the app thread, once the
// app runs. Fails without changing anything on an unknown name or a bad value.
absl::Status SetScheduler(const SchedulerConfig& config);
SchedulerConfig GetScheduler();

}  // namespace pollux
