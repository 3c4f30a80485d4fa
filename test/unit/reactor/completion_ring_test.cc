// CompletionRing: objects pushed by foreign OS threads reach the owner once each; an armed ring
// wakes the owner once, and only when few of its objects are out if asked to; a sleeping
// reactor is woken by a push and loses nothing under racing producers.
#include "pollux/reactor/completion_ring.h"

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "pollux/reactor/poller.h"
#include "reactor_test_env.h"

namespace pollux::testing {
namespace {

// Reads the eventfd: how many writes it had since the last read (0 if none).
uint64_t TakeWakes(int fd) {
  uint64_t value = 0;
  return read(fd, &value, sizeof(value)) == sizeof(value) ? value : 0;
}

TEST(CompletionRingTest, ObjectsFromManyThreadsArriveOnceEach) {
  constexpr uint32_t kThreads = 4;
  constexpr uint32_t kPerThread = 20000;
  constexpr uint32_t kCapacity = 64;
  CompletionRing ring(kCapacity, "test_cq");
  std::vector<uint32_t> objects(kThreads * kPerThread);
  std::vector<uint8_t> seen(objects.size(), 0);
  // The owner keeps at most kCapacity objects out, as a channel does: a token per push.
  std::atomic<int32_t> tokens{kCapacity};
  std::vector<std::thread> producers;
  for (uint32_t t = 0; t < kThreads; ++t) {
    producers.emplace_back([&, t] {
      for (uint32_t i = 0; i < kPerThread; ++i) {
        while (tokens.fetch_sub(1) <= 0) {
          tokens.fetch_add(1);
          std::this_thread::yield();
        }
        uint32_t& object = objects[t * kPerThread + i];
        object = t * kPerThread + i;
        ring.Push(&object);
      }
    });
  }
  uint32_t drained = 0;
  while (drained < objects.size()) {
    void* batch[32];
    unsigned n = ring.Drain(batch, 32);
    for (unsigned i = 0; i < n; ++i) {
      uint32_t index = *static_cast<uint32_t*>(batch[i]);
      ASSERT_LT(index, objects.size());
      ASSERT_EQ(&objects[index], batch[i]);
      ++seen[index];
    }
    drained += n;
    tokens.fetch_add(static_cast<int32_t>(n));
    if (n == 0) std::this_thread::yield();
  }
  for (auto& producer : producers) producer.join();
  for (uint8_t count : seen) ASSERT_EQ(count, 1);
  void* extra;
  EXPECT_EQ(ring.Drain(&extra, 1), 0u);
  EXPECT_EQ(ring.wake_writes(), 0u) << "never armed, never woken";
}

TEST(CompletionRingTest, AnArmedRingWakesOncePerArming) {
  CompletionRing ring(8, "test_cq");
  int objects[4] = {};
  ring.Push(&objects[0]);
  EXPECT_EQ(TakeWakes(ring.wake_fd()), 0u) << "not armed";
  ring.Arm();
  ring.Push(&objects[1]);
  ring.Push(&objects[2]);
  EXPECT_EQ(TakeWakes(ring.wake_fd()), 1u) << "one write per arming";
  ring.Arm();
  ring.Disarm();
  ring.Push(&objects[3]);
  EXPECT_EQ(TakeWakes(ring.wake_fd()), 0u) << "disarmed";
  EXPECT_EQ(ring.wake_writes(), 1u);
  void* batch[8];
  EXPECT_EQ(ring.Drain(batch, 8), 4u);
  EXPECT_EQ(batch[0], &objects[0]);
  EXPECT_EQ(batch[3], &objects[3]);
}

TEST(CompletionRingTest, WakesOnlyWhenFewAreOut) {
  CompletionRing ring(16, "test_cq");
  int objects[8] = {};
  ring.HandedOut(8);
  ring.Arm();
  // 7, 6, 5, 4, 3 still out after these: more than 2, no wake-up.
  for (int i = 0; i < 5; ++i) ring.Push(&objects[i], 2);
  EXPECT_EQ(TakeWakes(ring.wake_fd()), 0u);
  ring.Push(&objects[5], 2);  // 2 out
  EXPECT_EQ(TakeWakes(ring.wake_fd()), 1u);
  // Handed out again without the owner's count catching up yet: the last one out still wakes.
  ring.Arm();
  ring.Push(&objects[6], 0);  // 1 out
  EXPECT_EQ(TakeWakes(ring.wake_fd()), 0u);
  ring.Push(&objects[7], 0);  // 0 out
  EXPECT_EQ(TakeWakes(ring.wake_fd()), 1u);
  void* batch[16];
  EXPECT_EQ(ring.Drain(batch, 16), 8u);
}

TEST(CompletionRingTest, AGivenWakeFdIsWrittenAndLeftOpen) {
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  {
    CompletionRing ring(4, "test_cq", fd);
    EXPECT_EQ(ring.wake_fd(), fd);
    int object = 0;
    ring.Arm();
    ring.Push(&object);
    void* out;
    EXPECT_EQ(ring.Drain(&out, 1), 1u);
  }
  EXPECT_EQ(TakeWakes(fd), 1u) << "the ring wrote the fd and did not close it";
  EXPECT_EQ(close(fd), 0);
}

class CompletionRingReactorTest : public ReactorTest {
 protected:
  ReactorRuntimeOptions RuntimeOptions() const override { return InterruptModeOptions(); }
};

// The owner is a poller on a reactor that sleeps between bursts; producers push at random
// moments, some while it arms: every object arrives, and the reactor did sleep.
TEST_F(CompletionRingReactorTest, PushesWakeASleepingReactorAndNoneIsLost) {
  Thread* t = CreateThread("owner", 0);
  constexpr uint32_t kThreads = 3;
  constexpr uint32_t kPerThread = 3000;
  struct Owner {
    CompletionRing ring{kThreads * kPerThread, "test_cq"};
    std::atomic<uint32_t> received{0};
  };
  auto owner = std::make_shared<Owner>();
  PollerOptions options;
  options.wake_fd = owner->ring.wake_fd();
  options.arm = [owner] {
    owner->ring.Arm();
    return true;
  };
  options.disarm = [owner] { owner->ring.Disarm(); };
  Poller* poller = CallOn(t, [&] {
    return t->RegisterPoller(
        "completions",
        [owner] {
          void* batch[64];
          unsigned n = owner->ring.Drain(batch, 64);
          owner->received.fetch_add(n, std::memory_order_relaxed);
          return n != 0 ? PollResult::kBusy : PollResult::kIdle;
        },
        std::move(options));
  });
  const uint64_t sleeps_before = Info(0).sleeps;
  std::vector<int> objects(kThreads * kPerThread);
  std::vector<std::thread> producers;
  for (uint32_t p = 0; p < kThreads; ++p) {
    producers.emplace_back([&, p] {
      std::mt19937 random(p);
      for (uint32_t i = 0; i < kPerThread; ++i) {
        // Now and then a pause long enough for the reactor to fall asleep.
        if (random() % 64 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
        owner->ring.Push(&objects[p * kPerThread + i]);
      }
    });
  }
  for (auto& producer : producers) producer.join();
  EXPECT_TRUE(WaitUntil([&] { return owner->received.load() == kThreads * kPerThread; }))
      << owner->received.load() << " of " << kThreads * kPerThread << " arrived";
  EXPECT_GT(Info(0).sleeps, sleeps_before) << "the reactor never slept";
  EXPECT_GT(owner->ring.wake_writes(), 0u);
  RunOn(t, [poller] { poller->Unregister(); });
  ExitThread(t);
}

}  // namespace
}  // namespace pollux::testing
