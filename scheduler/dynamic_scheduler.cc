#include "dynamic_scheduler.h"

#include <algorithm>
#include <map>
#include <numeric>

namespace pollux {
namespace {

bool Allowed(const ThreadLoad& t, int cpu) {
  return std::binary_search(t.cpumask.begin(), t.cpumask.end(), cpu);
}

}  // namespace

void DynamicScheduler::Balance(const SchedulerInput& input, std::vector<int>& placement) {
  const auto& threads = input.threads;
  std::map<int, double> core_load;
  for (int cpu : input.cpus) core_load[cpu] = 0;
  for (size_t i = 0; i < threads.size(); ++i) core_load[placement[i]] += threads[i].load;
  const double load_limit = limits_.load_limit;
  const double core_limit = limits_.core_limit;
  auto movable = [](const ThreadLoad& t) { return t.periods_since_move >= kHoldPeriods; };
  auto move = [&](size_t i, int to) {
    core_load[placement[i]] -= threads[i].load;
    core_load[to] += threads[i].load;
    placement[i] = to;
  };

  // 1. Idle threads gather: the main core first, then the lowest cores. A thread goes only to
  //    a core before its own in that order, so gathering converges and never swaps threads.
  std::vector<int> gather_order = {input.main_cpu};
  for (int cpu : input.cpus) {
    if (cpu != input.main_cpu) gather_order.push_back(cpu);
  }
  auto rank = [&](int cpu) {
    return std::find(gather_order.begin(), gather_order.end(), cpu) - gather_order.begin();
  };
  for (size_t i = 0; i < threads.size(); ++i) {
    const ThreadLoad& t = threads[i];
    if (t.load >= load_limit || !movable(t)) continue;
    for (int cpu : gather_order) {
      if (rank(cpu) >= rank(placement[i])) break;
      if (Allowed(t, cpu) && core_load[cpu] + t.load <= core_limit) {
        move(i, cpu);
        break;
      }
    }
  }

  // 2. Overloaded cores shed threads, busiest first, to the least loaded core that stays
  //    within core_limit with it, until they are within core_limit themselves. Idle threads
  //    too: on a saturated core every thread measures less than it asks for (a gathering
  //    that filled a core from such measures is undone here), and once a core is not
  //    saturated its measures are true, so step 1 does not bring the thread back.
  std::vector<size_t> by_load(threads.size());
  std::iota(by_load.begin(), by_load.end(), 0);
  std::stable_sort(by_load.begin(), by_load.end(),
                   [&](size_t a, size_t b) { return threads[a].load > threads[b].load; });
  for (int cpu : input.cpus) {
    if (core_load[cpu] <= limits_.core_busy) continue;
    for (size_t i : by_load) {
      const ThreadLoad& t = threads[i];
      if (core_load[cpu] <= core_limit) break;
      if (placement[i] != cpu || !movable(t)) continue;
      // An empty core takes any thread (one busier than core_limit would fit nowhere else).
      auto fits = [&](int other) {
        return other != cpu && core_load.count(other) != 0 && Allowed(t, other) &&
               (core_load[other] == 0 || core_load[other] + t.load <= core_limit);
      };
      int best = -1;
      if (t.load < load_limit) {
        // An idle thread goes where idle threads gather: the first core that fits.
        auto it = std::find_if(gather_order.begin(), gather_order.end(), fits);
        if (it != gather_order.end()) best = *it;
      } else {
        // A busy one to the least loaded core that fits.
        for (int other : t.cpumask) {
          if (fits(other) && (best < 0 || core_load[other] < core_load[best])) best = other;
        }
      }
      if (best >= 0) move(i, best);
    }
  }
}

}  // namespace pollux
