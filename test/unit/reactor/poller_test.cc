// Pollers: active and timed, unregistering and registering from inside a poller, pause and
// resume, PollerHandle. Every test runs in poll and in interrupt mode.
#include "pollux/reactor/poller.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "pollux/reactor/reactor.h"
#include "pollux/reactor/thread.h"
#include "reactor_test_env.h"

namespace pollux::testing {
namespace {

using std::chrono::milliseconds;

using PollerTest = ModeTest;

// A poller that counts its runs. Idle unless told otherwise; `woken_by_messages` so that in
// interrupt mode it does not hold the reactor awake (the tests drive it with messages).
struct Counting {
  std::atomic<uint64_t> runs{0};
  Poller* poller = nullptr;
};

Poller* RegisterCounting(Thread* thread, std::string name, std::shared_ptr<Counting> counting,
                         PollerOptions options = {}) {
  return CallOn(thread, [&]() -> Poller* {
    counting->poller = thread->RegisterPoller(
        name,
        [counting] {
          counting->runs.fetch_add(1, std::memory_order_relaxed);
          return PollResult::kIdle;
        },
        std::move(options));
    return counting->poller;
  });
}

size_t PollerCount(Thread* thread) {
  return CallOn(thread, [thread] { return thread->poller_count(); });
}

TEST_P(PollerTest, ActivePollerRunsEveryIteration) {
  Thread* thread = CreateThread("t");
  auto counting = std::make_shared<Counting>();
  PollerOptions options;
  options.woken_by_messages = true;
  Poller* poller = RegisterCounting(thread, "active", counting, std::move(options));
  EXPECT_EQ(poller->name(), "active");
  EXPECT_EQ(poller->thread(), thread);
  EXPECT_FALSE(poller->is_timed());
  // Each round trip is at least one poll of the thread, which runs the poller after the
  // message (so the last round trip's run may still be under way when it returns).
  uint64_t before = counting->runs.load();
  WaitForIterations(thread, 101);
  EXPECT_GE(counting->runs.load() - before, 100u);
  EXPECT_EQ(PollerCount(thread), 1u);
  RunOn(thread, [poller] { poller->Unregister(); });
  ExitThread(thread);
}

TEST_P(PollerTest, BusyPollerRunsRepeatedlyWithoutMessages) {
  Thread* thread = CreateThread("t");
  auto counting = std::make_shared<Counting>();
  Poller* poller = CallOn(thread, [&] {
    return thread->RegisterPoller("busy", [counting] {
      counting->runs.fetch_add(1, std::memory_order_relaxed);
      return PollResult::kBusy;
    });
  });
  EXPECT_TRUE(WaitUntil([&] { return counting->runs.load() >= 100'000; }));
  EXPECT_EQ(CallOn(thread, [poller] { return poller->busy_count() == poller->run_count(); }), true);
  RunOn(thread, [poller] { poller->Unregister(); });
  ExitThread(thread);
}

// Period 1 ms for ~200 ms: the run count lies in a sane window (machines are noisy), and
// never above what the period allows.
TEST_P(PollerTest, TimedPollerRunsOncePerPeriod) {
  Thread* thread = CreateThread("t");
  auto counting = std::make_shared<Counting>();
  PollerOptions options;
  options.period = std::chrono::milliseconds(1);
  auto start = std::chrono::steady_clock::now();
  Poller* poller = RegisterCounting(thread, "timed", counting, std::move(options));
  // It keeps firing (however loaded the machine: no lower bound on the rate is checked)...
  EXPECT_TRUE(WaitUntil([&] { return counting->runs.load() >= 20; }));
  RunOn(thread, [poller] { poller->Pause(); });
  auto elapsed = std::chrono::steady_clock::now() - start;
  uint64_t runs = counting->runs.load();
  EXPECT_GE(runs, 20u);
  // ...but never more often than once per period, which holds on any machine.
  // The next run is scheduled a full period after the previous one (slack for the TSC
  // calibration against the steady clock).
  EXPECT_LE(runs, static_cast<uint64_t>(elapsed / milliseconds(1) * 1.05) + 2);
  EXPECT_TRUE(CallOn(thread, [poller] { return poller->is_timed(); }));
  EXPECT_EQ(CallOn(thread, [thread] { return thread->Stats().timed_poller_runs; }), runs);
  RunOn(thread, [poller] { poller->Unregister(); });
  ExitThread(thread);
}

TEST_P(PollerTest, UnregisterFromInsideItsOwnFunction) {
  Thread* thread = CreateThread("t");
  for (bool timed : {false, true}) {
    SCOPED_TRACE(timed ? "timed" : "active");
    auto runs = std::make_shared<std::atomic<int>>(0);
    auto self = std::make_shared<Poller*>(nullptr);
    PollerOptions options;
    if (timed) options.period = std::chrono::microseconds(100);
    RunOn(thread, [&] {
      *self = thread->RegisterPoller(
          "self-unregistering",
          [runs, self] {
            if (runs->fetch_add(1) + 1 == 5) (*self)->Unregister();
            return PollResult::kBusy;
          },
          std::move(options));
    });
    EXPECT_TRUE(WaitUntil([&] { return runs->load() >= 5; }));
    WaitForIterations(thread, 50);
    std::this_thread::sleep_for(milliseconds(2));  // a few timed periods
    WaitForIterations(thread, 5);
    EXPECT_EQ(runs->load(), 5);
    EXPECT_EQ(PollerCount(thread), 0u);
  }
  ExitThread(thread);
}

TEST_P(PollerTest, UnregisterAnotherPollerFromInsideAPoller) {
  Thread* thread = CreateThread("t");
  auto victim = std::make_shared<Counting>();
  PollerOptions options;
  options.woken_by_messages = true;
  Poller* victim_poller = RegisterCounting(thread, "victim", victim, std::move(options));
  auto killer_runs = std::make_shared<std::atomic<int>>(0);
  RunOn(thread, [&] {
    auto self = std::make_shared<Poller*>(nullptr);
    *self = thread->RegisterPoller("killer", [victim_poller, killer_runs, self] {
      killer_runs->fetch_add(1);
      victim_poller->Unregister();
      (*self)->Unregister();
      return PollResult::kBusy;
    });
  });
  EXPECT_TRUE(WaitUntil([&] { return killer_runs->load() >= 1; }));
  uint64_t victim_runs = victim->runs.load();
  WaitForIterations(thread, 50);
  EXPECT_EQ(killer_runs->load(), 1);
  EXPECT_EQ(victim->runs.load(), victim_runs);
  EXPECT_EQ(PollerCount(thread), 0u);
  ExitThread(thread);
}

TEST_P(PollerTest, RegisterPollersFromInsideAPoller) {
  Thread* thread = CreateThread("t");
  auto active = std::make_shared<Counting>();
  auto timed = std::make_shared<Counting>();
  auto registered = std::make_shared<std::atomic<int>>(0);
  RunOn(thread, [&] {
    auto self = std::make_shared<Poller*>(nullptr);
    *self = thread->RegisterPoller("parent", [thread, active, timed, registered, self] {
      // Registering appends to the list being iterated; the new pollers run from the next poll.
      active->poller = thread->RegisterPoller("child", [active] {
        active->runs.fetch_add(1);
        return PollResult::kIdle;
      });
      PollerOptions options;
      options.period = std::chrono::milliseconds(1);
      timed->poller = thread->RegisterPoller(
          "timed-child",
          [timed] {
            timed->runs.fetch_add(1);
            return PollResult::kIdle;
          },
          std::move(options));
      registered->fetch_add(1);
      (*self)->Unregister();
      return PollResult::kIdle;
    });
  });
  EXPECT_TRUE(WaitUntil([&] { return active->runs.load() >= 1000 && timed->runs.load() >= 5; }))
      << "active child ran " << active->runs.load() << " times, timed child " << timed->runs.load();
  EXPECT_EQ(registered->load(), 1);
  EXPECT_EQ(PollerCount(thread), 2u);
  RunOn(thread, [&] {
    active->poller->Unregister();
    timed->poller->Unregister();
  });
  EXPECT_EQ(PollerCount(thread), 0u);
  ExitThread(thread);
}

TEST_P(PollerTest, PausedActivePollerDoesNotRunUntilResumed) {
  Thread* thread = CreateThread("t");
  auto counting = std::make_shared<Counting>();
  PollerOptions options;
  options.woken_by_messages = true;
  Poller* poller = RegisterCounting(thread, "pausable", counting, std::move(options));
  WaitForIterations(thread, 10);
  RunOn(thread, [poller] { poller->Pause(); });
  EXPECT_TRUE(CallOn(thread, [poller] { return poller->paused(); }));
  uint64_t paused_at = counting->runs.load();
  WaitForIterations(thread, 100);
  EXPECT_EQ(counting->runs.load(), paused_at);
  // Pausing twice is harmless; resuming a running poller too.
  RunOn(thread, [poller] {
    poller->Pause();
    poller->Resume();
    poller->Resume();
  });
  WaitForIterations(thread, 100);
  EXPECT_GE(counting->runs.load(), paused_at + 100);
  RunOn(thread, [poller] { poller->Unregister(); });
  ExitThread(thread);
}

TEST_P(PollerTest, PausedTimedPollerDoesNotRunUntilResumed) {
  Thread* thread = CreateThread("t");
  auto counting = std::make_shared<Counting>();
  PollerOptions options;
  options.period = std::chrono::microseconds(500);
  Poller* poller = RegisterCounting(thread, "pausable-timed", counting, std::move(options));
  EXPECT_TRUE(WaitUntil([&] { return counting->runs.load() >= 3; }));
  RunOn(thread, [poller] { poller->Pause(); });
  uint64_t paused_at = counting->runs.load();
  std::this_thread::sleep_for(milliseconds(20));  // 40 periods
  WaitForIterations(thread, 10);
  EXPECT_EQ(counting->runs.load(), paused_at);
  RunOn(thread, [poller] { poller->Resume(); });
  // In interrupt mode the reactor slept without a deadline while the poller was paused;
  // resuming must give the sleep its deadline back.
  EXPECT_TRUE(WaitUntil([&] { return counting->runs.load() >= paused_at + 3; }));
  RunOn(thread, [poller] { poller->Unregister(); });
  ExitThread(thread);
}

TEST_P(PollerTest, PollerPausesItself) {
  Thread* thread = CreateThread("t");
  auto runs = std::make_shared<std::atomic<int>>(0);
  auto self = std::make_shared<Poller*>(nullptr);
  RunOn(thread, [&] {
    *self = thread->RegisterPoller("self-pausing", [runs, self] {
      if (runs->fetch_add(1) + 1 == 3) (*self)->Pause();
      return PollResult::kBusy;
    });
  });
  EXPECT_TRUE(WaitUntil([&] { return runs->load() >= 3; }));
  WaitForIterations(thread, 50);
  EXPECT_EQ(runs->load(), 3);
  RunOn(thread, [&] { (*self)->Resume(); });
  EXPECT_TRUE(WaitUntil([&] { return runs->load() >= 4; }));
  RunOn(thread, [&] { (*self)->Unregister(); });
  ExitThread(thread);
}

TEST_P(PollerTest, PollerHandleUnregistersOnDestruction) {
  Thread* thread = CreateThread("t");
  auto counting = std::make_shared<Counting>();
  auto handle = std::make_shared<PollerHandle>();
  PollerOptions options;
  options.woken_by_messages = true;
  *handle = PollerHandle(RegisterCounting(thread, "handled", counting, std::move(options)));
  EXPECT_TRUE(static_cast<bool>(*handle));
  WaitForIterations(thread, 10);
  EXPECT_GE(counting->runs.load(), 10u);
  EXPECT_EQ(PollerCount(thread), 1u);

  // Move: the moved-from handle owns nothing.
  auto other = std::make_shared<PollerHandle>();
  RunOn(thread, [&] { *other = std::move(*handle); });
  EXPECT_FALSE(static_cast<bool>(*handle));
  EXPECT_EQ(PollerCount(thread), 1u);

  RunOn(thread, [&] { other.reset(); });  // the destructor unregisters
  uint64_t after = counting->runs.load();
  WaitForIterations(thread, 50);
  EXPECT_EQ(counting->runs.load(), after);
  EXPECT_EQ(PollerCount(thread), 0u);
  RunOn(thread, [&] { handle.reset(); });  // empty: nothing to do
  ExitThread(thread);
}

TEST_P(PollerTest, StatsCountPollerRunsAndMessages) {
  Thread* thread = CreateThread("t");
  ThreadStats before = CallOn(thread, [thread] { return thread->Stats(); });
  WaitForIterations(thread, 20);
  ThreadStats after = CallOn(thread, [thread] { return thread->Stats(); });
  EXPECT_GE(after.messages - before.messages, 20u);
  EXPECT_GT(after.busy_tsc, before.busy_tsc);
  ExitThread(thread);
}

INSTANTIATE_TEST_SUITE_P(Modes, PollerTest,
                         ::testing::Values(ReactorMode::kPoll, ReactorMode::kInterrupt),
                         [](const auto& info) { return std::string(ReactorModeName(info.param)); });

}  // namespace
}  // namespace pollux::testing
