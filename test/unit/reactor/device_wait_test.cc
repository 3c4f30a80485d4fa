// Idle with device I/O in flight: the DeviceWaitPolicy's choice between spinning and sleeping
// at once (pure logic, fed episode lengths), and the reactor using it (a fake device: an
// eventfd the test writes some time after the poller declared I/O in flight); a wait on helper
// threads always sleeps at once.
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>

#include "device_wait_policy.h"
#include "pollux/reactor/reactor.h"
#include "pollux/reactor/thread.h"
#include "reactor_test_env.h"

namespace pollux::testing {
namespace {

using std::chrono::microseconds;

// Runs `episodes` episodes in which spinning lasts `spin` ticks and sleeping `sleep`; returns
// how many of them slept.
int Feed(DeviceWaitPolicy& policy, int episodes, uint64_t spin, uint64_t sleep) {
  int slept = 0;
  for (int i = 0; i < episodes; ++i) {
    bool sleeps = policy.ChooseSleep();
    slept += sleeps;
    policy.EndEpisode(sleeps ? sleep : spin);
  }
  return slept;
}

using Policy = DeviceWaitPolicy;
constexpr int kWarmUp = static_cast<int>(Policy::kWarmUpEpisodes);
constexpr int kPhase = static_cast<int>(Policy::kPhase);

TEST(DeviceWaitPolicyTest, TriesBothAnswersInPhasesFirst) {
  DeviceWaitPolicy policy;
  // Spinning first, then the answers alternate a phase at a time.
  for (int i = 0; i < kWarmUp; ++i) {
    bool sleeps = policy.ChooseSleep();
    EXPECT_EQ(sleeps, (i / kPhase) % 2 == 1) << "episode " << i;
    policy.EndEpisode(100);
  }
  EXPECT_EQ(policy.episodes(), static_cast<uint64_t>(kWarmUp));
}

TEST(DeviceWaitPolicyTest, TheFirstEpisodesOfAPhaseAreNotCounted) {
  // Each phase's settling episodes are far longer (the first sleep after spins wakes a vCPU
  // that was never halting): they must not reach the averages.
  DeviceWaitPolicy policy;
  for (int i = 0; i < kWarmUp; ++i) {
    bool sleeps = policy.ChooseSleep();
    bool settling = i % kPhase < static_cast<int>(Policy::kSettle);
    policy.EndEpisode(settling ? 1'000'000 : (sleeps ? 300 : 100));
  }
  EXPECT_EQ(policy.average_spin_ticks(), 100u);
  EXPECT_EQ(policy.average_sleep_ticks(), 300u);
}

TEST(DeviceWaitPolicyTest, TakesTheBetterAndStillTriesTheOtherOnePhaseInMany) {
  DeviceWaitPolicy policy;
  Feed(policy, kWarmUp, 110, 70);
  EXPECT_TRUE(policy.prefers_sleep());
  constexpr int kRun = 4 * Policy::kExplorePhases * kPhase;
  int slept = Feed(policy, kRun, 110, 70);
  // Sleeps except for one exploring phase in kExplorePhases.
  EXPECT_EQ(kRun - slept, 4 * kPhase);
  EXPECT_EQ(policy.average_sleep_ticks(), 70u);
  EXPECT_EQ(policy.average_spin_ticks(), 110u);
}

TEST(DeviceWaitPolicyTest, FollowsAChange) {
  DeviceWaitPolicy policy;
  Feed(policy, kWarmUp, 110, 70);
  ASSERT_TRUE(policy.prefers_sleep());
  // The machine changes: sleeping now costs a long wake-up. The exploring phases see spinning
  // get cheap again, the sleeping ones see sleep get dear: the choice turns.
  Feed(policy, 8 * Policy::kExplorePhases * kPhase, 20, 300);
  EXPECT_FALSE(policy.prefers_sleep());
  int slept = Feed(policy, 4 * Policy::kExplorePhases * kPhase, 20, 300);
  EXPECT_EQ(slept, 4 * kPhase);
}

TEST(DeviceWaitPolicyTest, SpinsOnlyWhenThatHalvesTheWait) {
  // Spinning 40 % faster saves less waiting than the core it burns: sleep.
  DeviceWaitPolicy faster;
  Feed(faster, kWarmUp, 600, 1000);
  EXPECT_TRUE(faster.prefers_sleep());
  // A third of sleeping's wait (a wake-up that costs more than the wait itself): spin.
  DeviceWaitPolicy halves;
  Feed(halves, kWarmUp, 330, 1000);
  EXPECT_FALSE(halves.prefers_sleep());
  // The answers each policy then takes follow.
  EXPECT_EQ(Feed(faster, kPhase, 600, 1000), kPhase);
  EXPECT_EQ(Feed(halves, kPhase, 330, 1000), 0);
}

TEST(DeviceWaitPolicyTest, OneStretchedEpisodeDoesNotTurnTheChoice) {
  DeviceWaitPolicy policy;
  Feed(policy, kWarmUp, 110, 70);
  ASSERT_TRUE(policy.prefers_sleep());
  // A sleep that lasted 100 ms (a preempted vCPU), past the phase's settling episodes:
  // counted as 4 x 70.
  Feed(policy, static_cast<int>(Policy::kSettle), 110, 70);
  ASSERT_TRUE(policy.ChooseSleep());
  policy.EndEpisode(100'000'000);
  EXPECT_LE(policy.average_sleep_ticks(), 70u + (4 * 70u - 70u) / 16 + 1);
  EXPECT_TRUE(policy.prefers_sleep());
}

TEST(DeviceWaitPolicyTest, AveragesMove) {
  DeviceWaitPolicy policy;
  Feed(policy, kWarmUp, 1000, 1000);
  // Both stay at 1000 until the lengths change; then they move towards the new value.
  EXPECT_EQ(policy.average_spin_ticks(), 1000u);
  EXPECT_EQ(policy.average_sleep_ticks(), 1000u);
  Feed(policy, 200 * kPhase, 0, 0);
  EXPECT_LT(policy.average_spin_ticks() + policy.average_sleep_ticks(), 2000u);
}

// A reactor in interrupt mode whose spin window (10 s) never ends within a test: it sleeps
// only where the device-wait policy says so.
class DeviceWaitTest : public ReactorTest {
 protected:
  ReactorRuntimeOptions RuntimeOptions() const override {
    ReactorRuntimeOptions options;
    options.mode = ReactorMode::kInterrupt;
    options.spin_window = std::chrono::seconds(10);
    return options;
  }

  struct Result {
    uint64_t sleeps;
    uint64_t episodes;
    uint64_t window_tsc;  // the fake device's polling window at the end
  };

  // How the test completes each request of the fake device.
  enum class Completion {
    // 200 us after the poller declared it (nothing to wait for: the episode never opens).
    kAfterDelay,
    // 200 us after the reactor opened the request's device-wait episode. An episode opens at
    // the first idle pass after the request; a reactor preempted past the completion never
    // has one (it finds the completion at once, and that wait was no wait), so completing
    // on a timer alone lost an episode under load (63 of 64).
    kAfterEpisodeOpens,
    // Once the reactor has gone to sleep (a reactor that must sleep at once may still be
    // preempted for longer than 200 us on a loaded machine).
    kWhenAsleep,
  };

  // `ios` requests through a fake device on reactor 0: the poller marks one in flight (and
  // declares that it awaits `awaited`), the test writes the eventfd (the completion) as
  // `completion` says, the poller reads it and is done.
  Result RunFakeDevice(int ios, AwaitedWork awaited, Completion completion) {
    Thread* t = CreateThread("device", 0);
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    EXPECT_GE(fd, 0);
    struct State {
      Poller* poller = nullptr;
      std::atomic<int> completed{0};
    };
    auto state = std::make_shared<State>();
    PollerOptions options;
    options.wake_fd = fd;
    RunOn(t, [&] {
      state->poller = t->RegisterPoller(
          "fake_device",
          [fd, state] {
            uint64_t value;
            if (read(fd, &value, sizeof(value)) != sizeof(value)) return PollResult::kIdle;
            state->poller->SetAwaiting(AwaitedWork::kNothing);
            state->completed.fetch_add(1, std::memory_order_release);
            return PollResult::kBusy;
          },
          std::move(options));
    });
    const ReactorInfo before = Info(0);
    for (int i = 0; i < ios; ++i) {
      const ReactorInfo last = Info(0);
      RunOn(t, [&] { state->poller->SetAwaiting(awaited); });
      switch (completion) {
        case Completion::kAfterDelay:
          break;
        case Completion::kAfterEpisodeOpens:
          EXPECT_TRUE(WaitUntil([&] {
            return Info(0).device_wait_episodes > last.device_wait_episodes;
          })) << "request "
              << i << ": no device-wait episode opened";
          break;
        case Completion::kWhenAsleep:
          EXPECT_TRUE(WaitUntil([&] { return Info(0).sleeps > last.sleeps; }))
              << "request " << i << ": the reactor did not sleep";
          break;
      }
      if (completion != Completion::kWhenAsleep) std::this_thread::sleep_for(microseconds(200));
      uint64_t one = 1;
      EXPECT_EQ(write(fd, &one, sizeof(one)), static_cast<ssize_t>(sizeof(one)));
      EXPECT_TRUE(WaitUntil([&] { return state->completed.load() == i + 1; }))
          << "completion " << i << " was not polled";
    }
    // Sleeps are counted before the reactor sleeps and episodes when they open, so nothing is
    // left to publish once the last completion was polled.
    const ReactorInfo after = Info(0);
    const uint64_t window = CallOn(t, [&] { return state->poller->poll_window_tsc(); });
    RunOn(t, [&] { state->poller->Unregister(); });
    ExitThread(t);
    close(fd);
    return {after.sleeps - before.sleeps, after.device_wait_episodes - before.device_wait_episodes,
            window};
  }
};

TEST_F(DeviceWaitTest, AwaitingADeviceMaySleepBeforeTheSpinWindowEnds) {
  constexpr int kIos = 2 * kWarmUp;
  Result result = RunFakeDevice(kIos, AwaitedWork::kDevice, Completion::kAfterEpisodeOpens);
  // Every request was an episode (more only if something else on the reactor worked in one);
  // the policy chose sleeping for every other phase of the first kWarmUp (which answer wins
  // afterwards depends on this machine). Half of those episodes, at least, found the reactor
  // asleep when the completion came 200 us after the episode opened.
  EXPECT_GE(result.episodes, static_cast<uint64_t>(kIos));
  EXPECT_GE(result.sleeps, static_cast<uint64_t>(kWarmUp / 4));
}

TEST_F(DeviceWaitTest, WithoutADeviceTheSourcesWindowGrowsToCoverItsGaps) {
  // Events ~200 us apart, far below the maximum (10 s): each sleep a source ends doubles its
  // window (from 4 us), so after a handful of sleeps the reactor polls through the gaps. Two
  // sources wake it here, the fake device and the thread's mailbox (the test's message before
  // each request): without windows every request would cost two sleeps.
  constexpr int kIos = 4 * kWarmUp;
  Result result = RunFakeDevice(kIos, AwaitedWork::kNothing, Completion::kAfterDelay);
  EXPECT_GE(result.sleeps, 1u);
  EXPECT_LE(result.sleeps, static_cast<uint64_t>(kIos / 4));
  EXPECT_GE(result.window_tsc, runtime().tsc_hz() / 10000) << "window under 100 us";
  EXPECT_EQ(result.episodes, 0u);
}

TEST_F(DeviceWaitTest, AwaitingHelperThreadsSleepsAtOnceWithoutSampling) {
  constexpr int kIos = kWarmUp;
  Result result = RunFakeDevice(kIos, AwaitedWork::kHelperThreads, Completion::kWhenAsleep);
  // Every wait slept (the spin window never ends), and none fed the device policy.
  EXPECT_GE(result.sleeps, static_cast<uint64_t>(kIos));
  EXPECT_EQ(result.episodes, 0u);
}

}  // namespace
}  // namespace pollux::testing
