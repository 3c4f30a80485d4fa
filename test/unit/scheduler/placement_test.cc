// The placement algorithms against synthetic loads on a fake clock: a simulated machine gives
// each thread the share of its core it asks for (or a fair share of a saturated core), the
// scheduler moves threads every period, and the tests check where they end up and how often
// they moved.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "dynamic_scheduler.h"
#include "pollux/scheduler/scheduler.h"
#include "static_scheduler.h"

namespace pollux {
namespace {

using ::testing::Contains;

// A machine of `cores` cores (0..n-1, 0 the main core) whose threads each demand a share of a
// core; what a thread gets on a saturated core is what the scheduler measures.
class FakeMachine {
 public:
  explicit FakeMachine(int cores) {
    for (int c = 0; c < cores; ++c) input_.cpus.push_back(c);
    input_.main_cpu = 0;
  }

  // Adds a thread on `cpu` demanding `demand` percent; returns its index.
  size_t AddThread(int cpu, double demand, std::vector<int> cpumask = {}) {
    ThreadLoad t;
    t.id = input_.threads.size() + 1;
    t.name = "t" + std::to_string(t.id);
    t.cpu = cpu;
    t.home_cpu = cpu;
    t.cpumask = cpumask.empty() ? input_.cpus : std::move(cpumask);
    input_.threads.push_back(t);
    demand_.push_back(demand);
    return input_.threads.size() - 1;
  }
  void SetDemand(size_t i, double demand) { demand_[i] = demand; }

  // One period: measure, balance, apply. Returns the moves made.
  int Period(Scheduler& scheduler) {
    Measure();
    std::vector<int> placement;
    for (const ThreadLoad& t : input_.threads) placement.push_back(t.cpu);
    scheduler.Balance(input_, placement);
    int moves = 0;
    for (size_t i = 0; i < placement.size(); ++i) {
      ThreadLoad& t = input_.threads[i];
      if (t.periods_since_move != UINT64_MAX) ++t.periods_since_move;
      if (placement[i] == t.cpu) continue;
      EXPECT_TRUE(std::binary_search(t.cpumask.begin(), t.cpumask.end(), placement[i]))
          << t.name << " moved outside its cpumask to core " << placement[i];
      history_[i].push_back({period_, t.cpu, placement[i]});
      t.cpu = placement[i];
      t.periods_since_move = 0;
      ++moves;
    }
    ++period_;
    return moves;
  }

  // The demand placed on each core (what it would carry unsaturated).
  std::map<int, double> CoreDemand() const {
    std::map<int, double> load;
    for (int c : input_.cpus) load[c] = 0;
    for (size_t i = 0; i < demand_.size(); ++i) load[input_.threads[i].cpu] += demand_[i];
    return load;
  }
  std::set<int> UsedCores() const {
    std::set<int> used;
    for (const ThreadLoad& t : input_.threads) used.insert(t.cpu);
    return used;
  }
  int cpu(size_t i) const { return input_.threads[i].cpu; }

  struct Move {
    uint64_t period;
    int from;
    int to;
  };
  const std::vector<Move>& moves_of(size_t i) { return history_[i]; }

 private:
  void Measure() {
    std::map<int, double> demand = CoreDemand();
    for (size_t i = 0; i < demand_.size(); ++i) {
      double on_core = demand[input_.threads[i].cpu];
      input_.threads[i].load = on_core > 100 ? demand_[i] * 100 / on_core : demand_[i];
    }
  }

  SchedulerInput input_;
  std::vector<double> demand_;
  uint64_t period_ = 0;
  std::map<size_t, std::vector<Move>> history_;
};

TEST(DynamicSchedulerTest, IdleThreadsGatherOnTheMainCore) {
  FakeMachine m(4);
  for (int i = 0; i < 12; ++i) m.AddThread(i % 4, 1 + i % 5);
  DynamicScheduler scheduler{SchedulerLimits{}};
  m.Period(scheduler);
  EXPECT_EQ(m.UsedCores(), std::set<int>{0});
  // Settled: nothing moves afterwards.
  for (int p = 0; p < 10; ++p) EXPECT_EQ(m.Period(scheduler), 0);
}

TEST(DynamicSchedulerTest, IdleThreadsThatDoNotFitTheMainCoreFillTheNextCores) {
  FakeMachine m(4);
  // 10 threads at 15%: 5 fit under the core limit (80%) on a core.
  for (int i = 0; i < 10; ++i) m.AddThread(3, 15);
  DynamicScheduler scheduler{SchedulerLimits{}};
  // The first gathering measures them on their saturated core (10% each) and puts 8 on the
  // main core, which is then saturated in turn; once the hold is over it sheds to core 1.
  for (int p = 0; p < 2 + static_cast<int>(DynamicScheduler::kHoldPeriods); ++p) {
    m.Period(scheduler);
  }
  EXPECT_EQ(m.UsedCores(), (std::set<int>{0, 1}));
  for (auto [core, load] : m.CoreDemand()) EXPECT_LE(load, 95) << "core " << core;
  for (int p = 0; p < 10; ++p) EXPECT_EQ(m.Period(scheduler), 0);
}

TEST(DynamicSchedulerTest, BusyThreadsOfAnOverloadedCoreSpread) {
  FakeMachine m(4);
  std::vector<size_t> busy;
  for (int i = 0; i < 3; ++i) busy.push_back(m.AddThread(0, 70));
  size_t idle = m.AddThread(2, 2);
  DynamicScheduler scheduler{SchedulerLimits{}};
  for (int p = 0; p < 10; ++p) m.Period(scheduler);
  std::set<int> cores;
  for (size_t i : busy) cores.insert(m.cpu(i));
  EXPECT_EQ(cores.size(), 3u) << "each busy thread on a core of its own";
  for (auto [core, load] : m.CoreDemand()) EXPECT_LE(load, 80) << "core " << core;
  EXPECT_EQ(m.cpu(idle), 0) << "the idle thread gathers on the main core";
}

TEST(DynamicSchedulerTest, NoMoveTakesACoreAboveItsLimit) {
  FakeMachine m(2);
  // Two threads that each need 60%: they cannot share a core under 80%, and neither can move
  // onto the other's core.
  size_t a = m.AddThread(0, 60);
  size_t b = m.AddThread(1, 60);
  DynamicScheduler scheduler{SchedulerLimits{}};
  for (int p = 0; p < 20; ++p) EXPECT_EQ(m.Period(scheduler), 0);
  EXPECT_NE(m.cpu(a), m.cpu(b));
}

TEST(DynamicSchedulerTest, AThreadBusierThanTheCoreLimitStillMovesToAnEmptyCore) {
  FakeMachine m(2);
  size_t a = m.AddThread(0, 90);
  size_t b = m.AddThread(0, 90);
  DynamicScheduler scheduler{SchedulerLimits{.load_limit = 20, .core_limit = 40, .core_busy = 95}};
  for (int p = 0; p < 3; ++p) m.Period(scheduler);
  EXPECT_NE(m.cpu(a), m.cpu(b));
}

TEST(DynamicSchedulerTest, ThreadsStayWithinTheirCpumask) {
  FakeMachine m(4);
  // Idle threads that may not run on the main core gather on the lowest core they may use.
  for (int i = 0; i < 4; ++i) m.AddThread(3, 5, {2, 3});
  m.AddThread(3, 5, {3});
  DynamicScheduler scheduler{SchedulerLimits{}};
  for (int p = 0; p < 5; ++p) m.Period(scheduler);
  EXPECT_EQ(m.UsedCores(), (std::set<int>{2, 3}));
  EXPECT_EQ(m.cpu(4), 3);
}

TEST(DynamicSchedulerTest, NoPingPongOverAThousandPeriodsOfLoadsHoveringAtTheLimits) {
  FakeMachine m(2);
  std::mt19937 rng(42);
  // Threads whose loads hover around the load limit (20%) and a busy pair that keeps the
  // cores near the core limit.
  std::vector<size_t> hover;
  for (int i = 0; i < 6; ++i) hover.push_back(m.AddThread(i % 2, 20));
  size_t busy_a = m.AddThread(0, 45);
  size_t busy_b = m.AddThread(1, 45);
  DynamicScheduler scheduler{SchedulerLimits{}};
  std::uniform_real_distribution<double> around(17, 23);
  int total = 0;
  for (int p = 0; p < 1000; ++p) {
    for (size_t i : hover) m.SetDemand(i, around(rng));
    total += m.Period(scheduler);
  }
  // A thread never goes back to the core it left within the hold.
  for (size_t i = 0; i < 8; ++i) {
    const auto& moves = m.moves_of(i);
    for (size_t k = 1; k < moves.size(); ++k) {
      if (moves[k].to == moves[k - 1].from) {
        EXPECT_GE(moves[k].period - moves[k - 1].period, DynamicScheduler::kHoldPeriods)
            << "thread " << i << " went back at period " << moves[k].period;
      }
    }
  }
  // Far from a move every period: the placement settles.
  EXPECT_LT(total, 50) << total << " moves in 1000 periods";
  (void)busy_a;
  (void)busy_b;
}

TEST(DynamicSchedulerTest, AMovedThreadIsHeldForTheHoldPeriods) {
  FakeMachine m(2);
  size_t t = m.AddThread(1, 5);
  DynamicScheduler scheduler{SchedulerLimits{}};
  m.Period(scheduler);
  ASSERT_EQ(m.cpu(t), 0);
  // Now it is busy and its core overloaded by a newcomer: it may only move after the hold.
  m.SetDemand(t, 70);
  m.AddThread(0, 70);
  for (uint64_t p = 1; p < DynamicScheduler::kHoldPeriods; ++p) {
    m.Period(scheduler);
    EXPECT_EQ(m.cpu(t), 0) << "period " << p;
  }
  for (int p = 0; p < 3; ++p) m.Period(scheduler);
  EXPECT_EQ(m.UsedCores(), (std::set<int>{0, 1}));
}

TEST(StaticSchedulerTest, PutsEveryThreadBackHome) {
  FakeMachine m(4);
  for (int i = 0; i < 8; ++i) m.AddThread(i % 4, 2);
  DynamicScheduler dynamic{SchedulerLimits{}};
  m.Period(dynamic);
  ASSERT_EQ(m.UsedCores(), std::set<int>{0});
  StaticScheduler static_scheduler;
  EXPECT_EQ(m.Period(static_scheduler), 6);
  for (size_t i = 0; i < 8; ++i) EXPECT_EQ(m.cpu(i), static_cast<int>(i % 4));
  for (int p = 0; p < 5; ++p) EXPECT_EQ(m.Period(static_scheduler), 0);
}

TEST(SchedulerRegistryTest, BuiltInsAreListedAndNamesAreUnique) {
  EXPECT_THAT(SchedulerNames(), Contains("static"));
  EXPECT_THAT(SchedulerNames(), Contains("dynamic"));
  auto factory = [](const SchedulerLimits&) { return std::make_unique<StaticScheduler>(); };
  EXPECT_TRUE(RegisterScheduler("mine", factory).ok());
  EXPECT_THAT(SchedulerNames(), Contains("mine"));
  EXPECT_EQ(RegisterScheduler("mine", factory).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(RegisterScheduler("", factory).code(), absl::StatusCode::kInvalidArgument);
  // Without a running app there is nothing to select.
  EXPECT_EQ(SetScheduler(SchedulerConfig{}).code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace pollux
