// How long an idle reactor polls before it sleeps (IdleSpinPolicy): each source's window grows
// while its events come within the maximum and falls to nothing when they do not, and a poller
// that cannot wake its reactor stops keeping it awake once idle for the park time.
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

#include "idle_spin_policy.h"
#include "pollux/reactor/poller.h"
#include "pollux/reactor/reactor.h"
#include "pollux/reactor/thread.h"
#include "reactor_test_env.h"

namespace pollux::testing {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

constexpr uint64_t kFirst = 4;
constexpr uint64_t kMax = 100;

TEST(IdleSpinPolicyTest, AWindowStartsSmallAndDoublesUpToTheMaximum) {
  uint64_t window = 0;
  window = IdleSpinPolicy::AdjustWindow(window, 50, kMax, kFirst);
  EXPECT_EQ(window, 4u);
  window = IdleSpinPolicy::AdjustWindow(window, 50, kMax, kFirst);
  EXPECT_EQ(window, 8u);
  for (int i = 0; i < 10; ++i) window = IdleSpinPolicy::AdjustWindow(window, 99, kMax, kFirst);
  EXPECT_EQ(window, kMax);
}

TEST(IdleSpinPolicyTest, AWaitTheWindowCoveredChangesNothing) {
  EXPECT_EQ(IdleSpinPolicy::AdjustWindow(32, 32, kMax, kFirst), 32u);
  EXPECT_EQ(IdleSpinPolicy::AdjustWindow(32, 5, kMax, kFirst), 32u);
}

TEST(IdleSpinPolicyTest, AWaitBeyondTwiceTheMaximumEndsPolling) {
  EXPECT_EQ(IdleSpinPolicy::AdjustWindow(64, 2 * kMax + 1, kMax, kFirst), 0u);
  EXPECT_EQ(IdleSpinPolicy::AdjustWindow(0, 1'000'000, kMax, kFirst), 0u);
}

TEST(IdleSpinPolicyTest, AWaitLengthenedByTheWakeUpStillEarnsAWindow) {
  // Events 10 us apart under a 20 us maximum, each wake-up 12 us: blocks of 22 us.
  uint64_t window = 0;
  for (int i = 0; i < 4; ++i) window = IdleSpinPolicy::AdjustWindow(window, 22, 20, kFirst);
  EXPECT_EQ(window, 20u);
}

TEST(IdleSpinPolicyTest, WhatIsAwaitedDecidesBeforeTheWindows) {
  IdleSpinPolicy policy;
  // Helper threads on this core: never spin.
  EXPECT_EQ(policy.ChooseSpin(AwaitedWork::kHelperThreads, 80, kMax), 0u);
  EXPECT_FALSE(policy.EndEpisode(10));
  // Nothing awaited: the longest window, never beyond the maximum.
  EXPECT_EQ(policy.ChooseSpin(AwaitedWork::kNothing, 80, kMax), 80u);
  EXPECT_EQ(policy.ChooseSpin(AwaitedWork::kNothing, 500, kMax), kMax);
  EXPECT_FALSE(policy.EndEpisode(10));
  // A device: the device-wait policy's answer (its first phase spins), spinning the maximum;
  // the episode is its sample.
  EXPECT_EQ(policy.ChooseSpin(AwaitedWork::kDevice, 0, kMax), kMax);
  EXPECT_TRUE(policy.EndEpisode(10));
  EXPECT_EQ(policy.device_wait().episodes(), 1u);
}

class IdleSpinTest : public ReactorTest {
 protected:
  ReactorRuntimeOptions RuntimeOptions() const override {
    ReactorRuntimeOptions options;
    options.mode = ReactorMode::kInterrupt;
    options.spin_window = microseconds(100);
    options.park_after = milliseconds(50);
    return options;
  }
};

TEST_F(IdleSpinTest, ASourceWhoseEventsComeRarelyLetsTheReactorSleepAtOnce) {
  Thread* t = CreateThread("rare", 0);
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  std::atomic<int> events{0};
  PollerHandle poller;
  RunOn(t, [&] {
    PollerOptions options;
    options.wake_fd = fd;
    poller = PollerHandle(t->RegisterPoller(
        "rare",
        [&] {
          uint64_t value;
          if (read(fd, &value, sizeof(value)) != sizeof(value)) return PollResult::kIdle;
          ++events;
          return PollResult::kBusy;
        },
        std::move(options)));
  });
  constexpr int kEvents = 20;
  const uint64_t wakeups_before = Info(0).wakeups;
  for (int i = 0; i < kEvents; ++i) {
    // 5 ms apart, fifty times the maximum window: the source never earns one.
    std::this_thread::sleep_for(milliseconds(5));
    uint64_t one = 1;
    ASSERT_EQ(write(fd, &one, sizeof(one)), static_cast<ssize_t>(sizeof(one)));
    ASSERT_TRUE(WaitUntil([&] { return events.load() == i + 1; }));
  }
  EXPECT_EQ(CallOn(t, [&] { return poller->poll_window_tsc(); }), 0u);
  // The reactor was asleep at each event: it woke for each.
  EXPECT_GE(Info(0).wakeups - wakeups_before, static_cast<uint64_t>(kEvents));
  RunOn(t, [&] { poller.reset(); });
  ExitThread(t);
  close(fd);
}

// spdk#1769: a poller with no way to wake its reactor kept the core from ever sleeping.
TEST_F(IdleSpinTest, APollerThatCannotWakeTheReactorIsPolledSlowlyOnceIdle) {
  Thread* t = CreateThread("no_wake_fd", 0);
  std::atomic<bool> work{false};
  std::atomic<uint64_t> handled{0};
  PollerHandle poller;
  RunOn(t, [&] {
    poller = PollerHandle(t->RegisterPoller("no_wake_fd", [&] {
      if (!work.exchange(false)) return PollResult::kIdle;
      ++handled;
      return PollResult::kBusy;
    }));
  });
  // First it holds the reactor awake, and the reactor says why.
  EXPECT_TRUE(CallOn(t, [&] { return poller->holds_reactor_awake(); }));
  // Idle for the park time: polled slowly, and the reactor sleeps between its polls.
  ASSERT_TRUE(WaitUntil([&] { return CallOn(t, [&] { return poller->slow_polled(); }); }));
  const ReactorInfo before = Info(0);
  const uint64_t runs = CallOn(t, [&] { return poller->run_count(); });
  ASSERT_TRUE(WaitUntil([&] {
    return Info(0).sleeps > before.sleeps + 5 &&
           CallOn(t, [&] { return poller->run_count(); }) > runs + 5;
  }));
  EXPECT_TRUE(Info(0).awake_reasons.empty());
  // Work found by a slow poll brings it back to every pass.
  work = true;
  ASSERT_TRUE(WaitUntil([&] { return handled.load() == 1; }));
  EXPECT_FALSE(CallOn(t, [&] { return poller->slow_polled(); }));
  RunOn(t, [&] { poller.reset(); });
  ExitThread(t);
}

}  // namespace
}  // namespace pollux::testing
