// Reactors: the sleep protocol of interrupt mode (no lost wake-up), timers and wake fds waking
// a sleeping reactor, pollers that hold it awake, fd handlers in both modes, mode switches.
#include "pollux/reactor/reactor.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/futex.h>
#include <rte_cycles.h>
#include <rte_pause.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <thread>

#include "absl/strings/str_join.h"
#include "pollux/reactor/thread.h"
#include "reactor_test_env.h"

namespace pollux::testing {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using ::testing::Contains;
using ::testing::HasSubstr;

// ---- a futex-backed counter: the reactor side bumps it, the test side waits with a timeout

struct WaitableCounter {
  std::atomic<uint32_t> value{0};
  std::atomic<uint32_t> waiters{0};

  void Bump() {
    value.fetch_add(1, std::memory_order_seq_cst);
    // Pairs with the waiter's seq_cst increment of `waiters` before its re-check: either we see
    // the waiter and wake it, or it sees the new value. The futex timeout backs this up anyway.
    if (waiters.load(std::memory_order_seq_cst) != 0) {
      syscall(SYS_futex, reinterpret_cast<uint32_t*>(&value), FUTEX_WAKE_PRIVATE, INT32_MAX,
              nullptr, nullptr, 0);
    }
  }

  // Waits until value >= target: spins for `spin` first, then sleeps on the futex. Returns
  // false after `timeout`.
  bool WaitFor(uint32_t target, microseconds spin, milliseconds timeout) {
    uint64_t spin_end = rte_rdtsc() + rte_get_tsc_hz() / 1000000 * spin.count();
    while (rte_rdtsc() < spin_end) {
      if (value.load(std::memory_order_acquire) >= target) return true;
      rte_pause();
    }
    auto deadline = std::chrono::steady_clock::now() + timeout;
    waiters.fetch_add(1, std::memory_order_seq_cst);
    bool reached = false;
    while (true) {
      uint32_t seen = value.load(std::memory_order_seq_cst);
      if (seen >= target) {
        reached = true;
        break;
      }
      if (std::chrono::steady_clock::now() > deadline) break;
      struct timespec ten_ms = {0, 10'000'000};
      syscall(SYS_futex, reinterpret_cast<uint32_t*>(&value), FUTEX_WAIT_PRIVATE, seen, &ten_ms,
              nullptr, 0);
    }
    waiters.fetch_sub(1, std::memory_order_seq_cst);
    return reached;
  }
};

class InterruptTest : public ReactorTest {
 protected:
  ReactorRuntimeOptions RuntimeOptions() const override {
    ReactorRuntimeOptions options;
    options.mode = ReactorMode::kInterrupt;
    options.spin_window = microseconds(0);
    return options;
  }
  uint64_t Sleeps(size_t index) { return Info(index).sleeps; }
  // An idle reactor sleeps until something wakes it, so its sleep count stops growing: wait
  // until it went to sleep after `sleeps_before` (read before the action that woke it, since
  // it may be back asleep by the time the action returns) and is asleep now.
  bool FallsAsleep(size_t index, uint64_t sleeps_before) {
    return WaitUntil([&] {
      ReactorInfo info = Info(index);
      return info.sleeping && info.sleeps > sleeps_before;
    });
  }
};

void SpinFor(uint64_t ns) {
  uint64_t end = rte_rdtsc() + rte_get_tsc_hz() / 1000000000.0 * ns;
  while (rte_rdtsc() < end) rte_pause();
}

// The core of the sleep protocol. An OS thread sends one message at a time to a Thread on a
// reactor in interrupt mode and waits for it to run: sometimes at once (the reactor is still
// awake or arming), sometimes after a random delay or once the reactor is seen asleep (a
// wake-up through the eventfd). A lost wake-up leaves a message unrun: it shows as a timeout.
TEST_F(InterruptTest, NoLostWakeUpOver100kCycles) {
  constexpr uint32_t kCycles = 100'000;
  Thread* receiver = CreateThread("receiver", 0);
  auto counter = std::make_shared<WaitableCounter>();
  WaitableCounter* c = counter.get();
  uint64_t sleeps_before = Sleeps(0);
  std::mt19937 random(12345);
  uint32_t lost_at = UINT32_MAX;
  auto start = std::chrono::steady_clock::now();
  for (uint32_t i = 0; i < kCycles; ++i) {
    if (i == kCycles / 2) runtime().SetSpinWindow(microseconds(2));
    switch (random() % 4) {
      case 0:  // at once: races the reactor's arming
        break;
      case 1:  // a few microseconds: lands around the arm-fence-poll-sleep sequence
        SpinFor(random() % 5000);
        break;
      case 2:  // once the reactor says it sleeps (or gives up after 200 us)
        for (int spin = 0; spin < 2000 && !reactor(0).sleeping(); ++spin) SpinFor(100);
        break;
      case 3:  // let the scheduler run something else, then send
        std::this_thread::yield();
        break;
    }
    while (!receiver->SendMessage([c] { c->Bump(); })) rte_pause();
    if (!c->WaitFor(i + 1, microseconds(random() % 2 == 0 ? 0 : 20), milliseconds(5000))) {
      lost_at = i;
      break;
    }
  }
  auto elapsed = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start);
  ReactorInfo info = Info(0);
  EXPECT_EQ(lost_at, UINT32_MAX) << "message " << lost_at << " did not run within 5 s; reactor "
                                 << (info.sleeping ? "asleep" : "awake");
  uint64_t sleeps = info.sleeps - sleeps_before;
  EXPECT_GT(sleeps, 1000u) << "the reactor hardly slept: the test did not test wake-ups";
  RecordProperty("sleeps", std::to_string(sleeps));
  RecordProperty("elapsed_ms", std::to_string(elapsed.count()));
  std::printf("[ info     ] %u cycles in %lld ms, reactor slept %llu times\n", kCycles,
              static_cast<long long>(elapsed.count()), static_cast<unsigned long long>(sleeps));
  if (lost_at == UINT32_MAX) ExitThread(receiver);
}

// Several OS threads race each other and the reactor's sleep: each sends one message at a time
// and waits for it. One sender's wake-up (it clears the armed flag) must serve the others too.
TEST_F(InterruptTest, NoLostWakeUpWithConcurrentSenders) {
  constexpr int kSenders = 3;
  constexpr uint32_t kCyclesEach = 20'000;
  Thread* receiver = CreateThread("receiver", 0);
  std::vector<std::unique_ptr<WaitableCounter>> counters;
  for (int i = 0; i < kSenders; ++i) counters.push_back(std::make_unique<WaitableCounter>());
  uint64_t sleeps_before = Sleeps(0);
  std::atomic<int> lost{0};
  std::vector<std::thread> senders;
  for (int s = 0; s < kSenders; ++s) {
    senders.emplace_back([&, s] {
      WaitableCounter* c = counters[s].get();
      std::mt19937 random(s);
      for (uint32_t i = 0; i < kCyclesEach && lost.load() == 0; ++i) {
        if (random() % 2 == 0) SpinFor(random() % 10000);
        while (!receiver->SendMessage([c] { c->Bump(); })) rte_pause();
        if (!c->WaitFor(i + 1, microseconds(5), milliseconds(5000))) lost.fetch_add(1);
      }
    });
  }
  for (auto& t : senders) t.join();
  EXPECT_EQ(lost.load(), 0) << "a message did not run within 5 s: lost wake-up";
  EXPECT_GT(Sleeps(0) - sleeps_before, 1000u);
  if (lost.load() == 0) ExitThread(receiver);
}

// The same between two reactors in interrupt mode: a message bounces between Threads on
// different reactors; both sleep between hops.
TEST_F(InterruptTest, NoLostWakeUpBetweenReactors) {
  constexpr uint32_t kHops = 20'000;
  Thread* a = CreateThread("a", 0);
  Thread* b = CreateThread("b", 1);
  struct Bounce {
    Thread* a;
    Thread* b;
    std::atomic<uint32_t> hops{0};  // written by one side at a time, read by the watchdog
    WaitableCounter finished;
    std::mt19937 random{7};
    static void Hop(void* arg) {
      auto* self = static_cast<Bounce*>(arg);
      if (self->hops.fetch_add(1, std::memory_order_relaxed) + 1 == kHops) {
        self->finished.Bump();
        return;
      }
      // Sometimes dawdle so that the other reactor falls asleep before the message arrives.
      if (self->random() % 2 == 0) SpinFor(self->random() % 20000);
      Thread* next = Thread::Current() == self->a ? self->b : self->a;
      while (!next->SendMessage(&Bounce::Hop, self)) rte_pause();
    }
  };
  auto bounce = std::make_unique<Bounce>();
  bounce->a = a;
  bounce->b = b;
  uint64_t sleeps_before = Sleeps(0) + Sleeps(1);
  ASSERT_TRUE(a->SendMessage(&Bounce::Hop, bounce.get()));
  // Progress watchdog: fail if the hop count stops moving for 5 s.
  uint32_t last = 0;
  auto last_progress = std::chrono::steady_clock::now();
  bool finished = false;
  while (!(finished = bounce->finished.WaitFor(1, microseconds(0), milliseconds(100)))) {
    uint32_t now_hops = bounce->hops.load(std::memory_order_relaxed);
    if (now_hops != last) {
      last = now_hops;
      last_progress = std::chrono::steady_clock::now();
    } else if (std::chrono::steady_clock::now() - last_progress > std::chrono::seconds(5)) {
      break;
    }
  }
  ASSERT_TRUE(finished) << "bouncing stopped at hop " << last << ": lost wake-up";
  uint64_t sleeps = Sleeps(0) + Sleeps(1) - sleeps_before;
  EXPECT_GT(sleeps, 1000u);
  std::printf("[ info     ] %u hops, reactors slept %llu times\n", kHops,
              static_cast<unsigned long long>(sleeps));
  ExitThread(a);
  ExitThread(b);
}

// A thread with only a 20 ms timed poller: the reactor sleeps between runs and wakes for each.
TEST_F(InterruptTest, SleepingReactorWakesForTimedPoller) {
  Thread* t = CreateThread("timer", 0);
  auto runs = std::make_shared<std::atomic<uint64_t>>(0);
  PollerOptions options;
  options.period = milliseconds(20);
  auto start = std::chrono::steady_clock::now();
  Poller* poller = CallOn(t, [&] {
    return t->RegisterPoller(
        "tick",
        [runs] {
          runs->fetch_add(1);
          return PollResult::kBusy;
        },
        std::move(options));
  });
  uint64_t sleeps_before = Sleeps(0);
  ASSERT_TRUE(WaitUntil([&] { return runs->load() >= 10; }));
  auto elapsed = std::chrono::steady_clock::now() - start;
  uint64_t r = runs->load();
  uint64_t sleeps = Sleeps(0) - sleeps_before;
  EXPECT_LE(r, static_cast<uint64_t>(elapsed / milliseconds(20) * 1.05) + 2);
  // Between two runs the reactor has nothing to do: it sleeps at least once.
  EXPECT_GE(sleeps, r - 2) << r << " runs";
  EXPECT_LT(sleeps, 2000u) << "the reactor woke far more often than its timer";
  RunOn(t, [poller] { poller->Unregister(); });
  ExitThread(t);
}

// A poller with no wake fd, no arm hook and not woken by messages holds its reactor awake, and
// ReactorInfo says which poller does.
TEST_F(InterruptTest, PollerThatCannotSleepHoldsTheReactorAwake) {
  Thread* t = CreateThread("spinner-thread", 0);
  auto runs = std::make_shared<std::atomic<uint64_t>>(0);
  Poller* poller = CallOn(t, [&] {
    return t->RegisterPoller("spinner", [runs] {
      runs->fetch_add(1, std::memory_order_relaxed);
      return PollResult::kIdle;
    });
  });
  EXPECT_TRUE(CallOn(t, [poller] { return poller->holds_reactor_awake(); }));
  EXPECT_EQ(CallOn(t, [t] { return t->PollersHoldingReactorAwake(); }),
            std::vector<std::string>{"spinner"});
  ASSERT_TRUE(WaitUntil([&] {
    auto reasons = Info(0).awake_reasons;
    return reasons.size() == 1 && reasons[0].find("spinner") != std::string::npos;
  })) << absl::StrJoin(Info(0).awake_reasons, "; ");
  EXPECT_THAT(Info(0).awake_reasons[0], HasSubstr("\"spinner\" on thread \"spinner-thread\""));
  uint64_t sleeps = Sleeps(0);
  uint64_t runs_then = runs->load();
  ASSERT_TRUE(WaitUntil([&] { return runs->load() > runs_then + 100'000; }));
  EXPECT_EQ(Sleeps(0), sleeps) << "slept while a poller could not";
  EXPECT_TRUE(Info(1).awake_reasons.empty());

  RunOn(t, [poller] { poller->Unregister(); });
  EXPECT_TRUE(FallsAsleep(0, sleeps));
  EXPECT_TRUE(Info(0).awake_reasons.empty());
  ExitThread(t);
}

// A paused poller that cannot sleep does not hold the reactor awake.
TEST_F(InterruptTest, PausedPollerLetsTheReactorSleep) {
  Thread* t = CreateThread("t", 0);
  uint64_t sleeps = Sleeps(0);
  Poller* poller = CallOn(t, [&] {
    Poller* p = t->RegisterPoller("spinner", [] { return PollResult::kIdle; });
    p->Pause();
    return p;
  });
  EXPECT_TRUE(FallsAsleep(0, sleeps));
  RunOn(t, [poller] { poller->Unregister(); });
  ExitThread(t);
}

// A poller with a wake fd lets the reactor sleep; writing the fd wakes it and the poller runs.
TEST_F(InterruptTest, WakeFdWakesTheReactorForItsPoller) {
  Thread* t = CreateThread("t", 0);
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  auto seen = std::make_shared<WaitableCounter>();
  PollerOptions options;
  options.wake_fd = fd;
  Poller* poller = CallOn(t, [&] {
    return t->RegisterPoller(
        "fd-poller",
        [fd, seen] {
          uint64_t value;
          if (read(fd, &value, sizeof(value)) != sizeof(value)) return PollResult::kIdle;
          for (uint64_t i = 0; i < value; ++i) seen->Bump();
          return PollResult::kBusy;
        },
        std::move(options));
  });
  EXPECT_FALSE(CallOn(t, [poller] { return poller->holds_reactor_awake(); }));
  uint64_t sleeps_before = Sleeps(0);
  constexpr uint32_t kWrites = 2000;
  std::mt19937 random(99);
  for (uint32_t i = 0; i < kWrites; ++i) {
    if (random() % 2 == 0) SpinFor(random() % 20000);
    uint64_t one = 1;
    ASSERT_EQ(write(fd, &one, sizeof(one)), static_cast<ssize_t>(sizeof(one)));
    ASSERT_TRUE(seen->WaitFor(i + 1, microseconds(10), milliseconds(5000)))
        << "write " << i << " did not wake the poller";
  }
  EXPECT_GT(Sleeps(0) - sleeps_before, kWrites / 10);
  RunOn(t, [poller] { poller->Unregister(); });
  ExitThread(t);
  close(fd);
}

// A poller's owner may close its wake fd right after unregistering it (a channel's eventfd in
// the channel's destructor). A new eventfd that gets the same number, watched by a new poller,
// must still wake the reactor: the old registration is gone at Unregister, not at a later reap
// that would remove the new one.
TEST_F(InterruptTest, WakeFdNumberReusedRightAfterUnregisterStillWakes) {
  Thread* t = CreateThread("t", 0);
  auto seen = std::make_shared<WaitableCounter>();
  auto make_poller = [&](int fd) {
    PollerOptions options;
    options.wake_fd = fd;
    return t->RegisterPoller(
        "fd-poller",
        [fd, seen] {
          uint64_t value;
          if (read(fd, &value, sizeof(value)) != sizeof(value)) return PollResult::kIdle;
          seen->Bump();
          return PollResult::kBusy;
        },
        std::move(options));
  };
  int first = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  ASSERT_GE(first, 0);
  uint64_t sleeps = Sleeps(0);  // read before each action that wakes the reactor
  Poller* old_poller = CallOn(t, [&] { return make_poller(first); });
  // Unregister, close and reuse the number within one message: no poll iteration in between.
  // Not a structured binding: clang 14 cannot capture those (the lambda below).
  const std::pair<int, Poller*> reused = CallOn(t, [&] {
    old_poller->Unregister();
    close(first);
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return std::pair<int, Poller*>(fd, fd >= 0 ? make_poller(fd) : nullptr);
  });
  const int second = reused.first;
  Poller* const poller = reused.second;
  ASSERT_GE(second, 0);
  // The kernel hands out the lowest free number, so this is the reuse case unless another
  // thread opened an fd in between (then the test still checks that wake-ups work).
  if (second != first) std::fprintf(stderr, "note: fd %d not reused (got %d)\n", first, second);
  for (uint32_t i = 0; i < 20; ++i) {
    ASSERT_TRUE(FallsAsleep(0, sleeps));
    sleeps = Sleeps(0);
    uint64_t one = 1;
    ASSERT_EQ(write(second, &one, sizeof(one)), static_cast<ssize_t>(sizeof(one)));
    ASSERT_TRUE(seen->WaitFor(i + 1, microseconds(10), milliseconds(5000)))
        << "write " << i << " did not wake the reactor";
  }
  RunOn(t, [poller] { poller->Unregister(); });
  ExitThread(t);
  close(second);
}

// An arm hook (virtqueue-style notifications): the producer signals the wake fd only while the
// poller is armed; the reactor polls once more after arming, so work that raced the arming is
// found. Arm and disarm calls pair up; an arm hook returning false keeps the reactor awake.
TEST_F(InterruptTest, ArmHookAndPollAfterArming) {
  Thread* t = CreateThread("t", 0);
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  struct Source {
    std::atomic<uint32_t> produced{0};
    uint32_t consumed = 0;  // poller only
    std::atomic<bool> armed{false};
    std::atomic<bool> refuse_arm{false};
    std::atomic<uint64_t> arms{0}, disarms{0};
    WaitableCounter done;
  };
  auto source = std::make_shared<Source>();
  PollerOptions options;
  options.wake_fd = fd;
  options.arm = [source] {
    source->arms.fetch_add(1);
    if (source->refuse_arm.load()) return false;
    source->armed.store(true, std::memory_order_seq_cst);
    return true;
  };
  options.disarm = [source] {
    source->disarms.fetch_add(1);
    source->armed.store(false, std::memory_order_relaxed);
  };
  Poller* poller = CallOn(t, [&] {
    return t->RegisterPoller(
        "notified",
        [source, fd] {
          uint64_t drain;
          while (read(fd, &drain, sizeof(drain)) == sizeof(drain)) {
          }
          uint32_t produced = source->produced.load(std::memory_order_acquire);
          if (produced == source->consumed) return PollResult::kIdle;
          while (source->consumed < produced) {
            ++source->consumed;
            source->done.Bump();
          }
          return PollResult::kBusy;
        },
        std::move(options));
  });
  uint64_t sleeps_before = Sleeps(0);
  std::mt19937 random(5);
  constexpr uint32_t kItems = 3000;
  for (uint32_t i = 0; i < kItems; ++i) {
    if (random() % 2 == 0) SpinFor(random() % 20000);
    source->produced.fetch_add(1, std::memory_order_seq_cst);
    // Notify only an armed consumer (a suppressed virtqueue kick otherwise).
    if (source->armed.load(std::memory_order_seq_cst)) {
      uint64_t one = 1;
      ASSERT_EQ(write(fd, &one, sizeof(one)), static_cast<ssize_t>(sizeof(one)));
    }
    ASSERT_TRUE(source->done.WaitFor(i + 1, microseconds(10), milliseconds(5000)))
        << "item " << i << " was not seen: lost notification";
  }
  EXPECT_GT(Sleeps(0) - sleeps_before, kItems / 10);
  // Arm and disarm pair up (read on the thread: they run there).
  WaitForIterations(t, 2);
  EXPECT_TRUE(CallOn(t, [source] { return source->arms.load() == source->disarms.load(); }))
      << source->arms.load() << " arms, " << source->disarms.load() << " disarms";

  // Refusing to arm keeps the reactor awake.
  source->refuse_arm = true;
  WaitForIterations(t, 2);
  uint64_t sleeps = Sleeps(0);
  uint64_t arms = source->arms.load();
  ASSERT_TRUE(WaitUntil([&] { return source->arms.load() > arms + 1000; }));
  EXPECT_EQ(Sleeps(0), sleeps);
  RunOn(t, [poller] { poller->Unregister(); });
  ExitThread(t);
  close(fd);
}

// A poller registered by another poller during the reactor's last poll before sleeping (the
// poll after arming) runs: the reactor does not go to sleep past it.
TEST_F(InterruptTest, PollerRegisteredInTheLastPollBeforeSleepRuns) {
  Thread* t = CreateThread("t", 0);
  auto child_runs = std::make_shared<std::atomic<uint64_t>>(0);
  auto child = std::make_shared<Poller*>(nullptr);
  auto parent = std::make_shared<Poller*>(nullptr);
  PollerOptions options;
  options.woken_by_messages = true;
  RunOn(t, [&] {
    *parent = t->RegisterPoller(
        "parent",
        [t, child, child_runs, parent] {
          // sleeping() is set from arming until the reactor wakes: this is the poll after arming.
          if (*child == nullptr && Reactor::Current()->sleeping()) {
            *child = t->RegisterPoller("child", [child_runs] {
              child_runs->fetch_add(1, std::memory_order_relaxed);
              return PollResult::kIdle;  // cannot sleep: holds the reactor awake once it is seen
            });
            (*parent)->Unregister();
          }
          return PollResult::kIdle;
        },
        std::move(options));
  });
  EXPECT_TRUE(WaitUntil([&] { return child_runs->load() >= 1000; }, milliseconds(10'000)))
      << "the reactor went to sleep past a poller registered in its last poll";
  RunOn(t, [&] {
    if (*parent != nullptr && *child == nullptr) (*parent)->Unregister();
    if (*child != nullptr) (*child)->Unregister();
  });
  ExitThread(t);
}

// An arm hook without a disarm hook is allowed.
TEST_F(InterruptTest, ArmHookWithoutDisarm) {
  Thread* t = CreateThread("t", 0);
  auto arms = std::make_shared<std::atomic<uint64_t>>(0);
  PollerOptions options;
  options.arm = [arms] {
    arms->fetch_add(1);
    return true;
  };
  uint64_t sleeps = Sleeps(0);
  Poller* poller = CallOn(t, [&] {
    return t->RegisterPoller(
        "arm-only", [] { return PollResult::kIdle; }, std::move(options));
  });
  EXPECT_TRUE(FallsAsleep(0, sleeps));
  WaitForIterations(t, 20);  // each wakes the reactor, which disarms
  EXPECT_GE(arms->load(), 1u);
  RunOn(t, [poller] { poller->Unregister(); });
  ExitThread(t);
}

// A poller woken by messages lets the reactor sleep, and a message wakes it so it runs.
TEST_F(InterruptTest, PollerWokenByMessages) {
  Thread* t = CreateThread("t", 0);
  auto runs = std::make_shared<std::atomic<uint64_t>>(0);
  PollerOptions options;
  options.woken_by_messages = true;
  uint64_t sleeps = Sleeps(0);
  Poller* poller = CallOn(t, [&] {
    return t->RegisterPoller(
        "on-message",
        [runs] {
          runs->fetch_add(1);
          return PollResult::kIdle;
        },
        std::move(options));
  });
  ASSERT_TRUE(FallsAsleep(0, sleeps));
  for (int i = 0; i < 100; ++i) {
    uint64_t before = runs->load();
    ASSERT_TRUE(WaitUntil([&] { return Info(0).sleeping; }));
    RunOn(t, [] {});  // wakes the reactor; the poller runs in the same poll as the message
    ASSERT_TRUE(WaitUntil([&] { return runs->load() > before; }));
  }
  EXPECT_GE(Sleeps(0) - sleeps, 100u);
  RunOn(t, [poller] { poller->Unregister(); });
  ExitThread(t);
}

// Fd handlers run in both modes, for eventfds and pipes, and stop after RemoveFdHandler.
class FdHandlerTest : public ReactorTest, public ::testing::WithParamInterface<ReactorMode> {
 protected:
  ReactorRuntimeOptions RuntimeOptions() const override {
    ReactorRuntimeOptions options;
    options.mode = GetParam();
    options.spin_window = microseconds(0);
    return options;
  }
};

TEST_P(FdHandlerTest, EventfdAndPipe) {
  Thread* t = CreateThread("t", 1);
  int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  int pipe_fds[2];
  ASSERT_GE(efd, 0);
  ASSERT_EQ(pipe2(pipe_fds, O_NONBLOCK | O_CLOEXEC), 0);
  auto events = std::make_shared<WaitableCounter>();
  auto bytes = std::make_shared<WaitableCounter>();
  auto wrong_thread = std::make_shared<std::atomic<int>>(0);
  RunOn(t, [&] {
    ASSERT_TRUE(t->AddFdHandler(efd, [efd, events, t, wrong_thread] {
                   if (Thread::Current() != t) wrong_thread->fetch_add(1);
                   uint64_t value;
                   if (read(efd, &value, sizeof(value)) == sizeof(value)) {
                     for (uint64_t i = 0; i < value; ++i) events->Bump();
                   }
                 }).ok());
    ASSERT_TRUE(t->AddFdHandler(pipe_fds[0], [fd = pipe_fds[0], bytes] {
                   char buffer[64];
                   ssize_t n;
                   while ((n = read(fd, buffer, sizeof(buffer))) > 0) {
                     for (ssize_t i = 0; i < n; ++i) bytes->Bump();
                   }
                 }).ok());
    absl::Status twice = t->AddFdHandler(efd, [] {});
    EXPECT_EQ(twice.code(), absl::StatusCode::kAlreadyExists);
  });
  for (uint32_t i = 0; i < 200; ++i) {
    uint64_t one = 1;
    ASSERT_EQ(write(efd, &one, sizeof(one)), static_cast<ssize_t>(sizeof(one)));
    ASSERT_TRUE(events->WaitFor(i + 1, microseconds(10), milliseconds(5000))) << "event " << i;
    ASSERT_EQ(write(pipe_fds[1], "x", 1), 1);
    ASSERT_TRUE(bytes->WaitFor(i + 1, microseconds(10), milliseconds(5000))) << "byte " << i;
  }
  EXPECT_EQ(wrong_thread->load(), 0);

  RunOn(t, [&] { t->RemoveFdHandler(efd); });
  uint64_t one = 1;
  ASSERT_EQ(write(efd, &one, sizeof(one)), static_cast<ssize_t>(sizeof(one)));
  // Run the pipe handler twice more: the eventfd handler had chances to run meanwhile.
  for (uint32_t i = 200; i < 202; ++i) {
    ASSERT_EQ(write(pipe_fds[1], "y", 1), 1);
    ASSERT_TRUE(bytes->WaitFor(i + 1, microseconds(10), milliseconds(5000)));
  }
  std::this_thread::sleep_for(milliseconds(5));
  WaitForIterations(t, 5);
  EXPECT_EQ(events->value.load(), 200u) << "a removed fd handler ran";
  RunOn(t, [&] { t->RemoveFdHandler(pipe_fds[0]); });
  ExitThread(t);
  close(efd);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
}

// A handler may remove itself (and another handler of its thread) while it runs.
TEST_P(FdHandlerTest, HandlerRemovesItself) {
  Thread* t = CreateThread("t", 0);
  int a = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  int b = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  auto calls = std::make_shared<std::atomic<int>>(0);
  RunOn(t, [&] {
    // Level-triggered and never read: fires until removed.
    ASSERT_TRUE(t->AddFdHandler(a, [t, a, b, calls] {
                   calls->fetch_add(1);
                   t->RemoveFdHandler(b);
                   t->RemoveFdHandler(a);
                 }).ok());
    ASSERT_TRUE(t->AddFdHandler(b, [t, a, b, calls] {
                   calls->fetch_add(1);
                   t->RemoveFdHandler(a);
                   t->RemoveFdHandler(b);
                 }).ok());
  });
  uint64_t one = 1;
  ASSERT_EQ(write(a, &one, sizeof(one)), 8);
  ASSERT_EQ(write(b, &one, sizeof(one)), 8);
  ASSERT_TRUE(WaitUntil([&] { return calls->load() >= 1; }));
  std::this_thread::sleep_for(milliseconds(5));
  WaitForIterations(t, 5);
  EXPECT_EQ(calls->load(), 1) << "one handler removed both; neither may run again";
  ExitThread(t);
  close(a);
  close(b);
}

INSTANTIATE_TEST_SUITE_P(Modes, FdHandlerTest,
                         ::testing::Values(ReactorMode::kPoll, ReactorMode::kInterrupt),
                         [](const auto& info) { return std::string(ReactorModeName(info.param)); });

// SetMode switches a running runtime: poll mode never sleeps, interrupt mode does.
class ModeSwitchTest : public ReactorTest {};

TEST_F(ModeSwitchTest, SetModeSwitchesARunningRuntime) {
  Thread* t0 = CreateThread("t0", 0);
  Thread* t1 = CreateThread("t1", 1);
  EXPECT_EQ(runtime().mode(), ReactorMode::kPoll);
  uint64_t s0 = Info(0).sleeps, s1 = Info(1).sleeps;
  WaitForIterations(t0, 50);
  WaitForIterations(t1, 50);
  EXPECT_EQ(Info(0).sleeps, s0);
  EXPECT_EQ(Info(1).sleeps, s1);
  EXPECT_EQ(Info(0).mode, ReactorMode::kPoll);

  runtime().SetSpinWindow(microseconds(5));
  EXPECT_EQ(runtime().spin_window(), microseconds(5));
  runtime().SetMode(ReactorMode::kInterrupt);
  EXPECT_EQ(runtime().mode(), ReactorMode::kInterrupt);
  auto asleep = [&](size_t index, uint64_t before) {
    return WaitUntil([&] {
      ReactorInfo info = Info(index);
      return info.sleeping && info.sleeps > before;
    });
  };
  EXPECT_TRUE(asleep(0, s0));
  EXPECT_TRUE(asleep(1, s1));
  EXPECT_EQ(Info(0).mode, ReactorMode::kInterrupt);
  // Messages still run on sleeping reactors, each waking it.
  WaitForIterations(t0, 50);
  WaitForIterations(t1, 50);
  EXPECT_GT(Info(0).sleeps, s0 + 1);

  runtime().SetMode(ReactorMode::kPoll);
  // After one round trip each reactor has seen poll mode: no more sleeps.
  WaitForIterations(t0, 1);
  WaitForIterations(t1, 1);
  s0 = Info(0).sleeps;
  s1 = Info(1).sleeps;
  std::this_thread::sleep_for(milliseconds(20));
  WaitForIterations(t0, 20);
  WaitForIterations(t1, 20);
  EXPECT_EQ(Info(0).sleeps, s0);
  EXPECT_EQ(Info(1).sleeps, s1);
  EXPECT_FALSE(Info(0).sleeping);

  // And back to interrupt mode.
  runtime().SetMode(ReactorMode::kInterrupt);
  EXPECT_TRUE(asleep(0, s0));
  WaitForIterations(t0, 20);
  ExitThread(t0);
  ExitThread(t1);
}

TEST(ReactorModeTest, ParseAndName) {
  EXPECT_EQ(*ParseReactorMode("poll"), ReactorMode::kPoll);
  EXPECT_EQ(*ParseReactorMode("interrupt"), ReactorMode::kInterrupt);
  EXPECT_EQ(ReactorModeName(ReactorMode::kPoll), "poll");
  EXPECT_EQ(ReactorModeName(ReactorMode::kInterrupt), "interrupt");
  auto bad = ParseReactorMode("sleepy");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("unknown mode \"sleepy\""));
}

class ReactorInfoTest : public ReactorTest {};

TEST_F(ReactorInfoTest, DescribesEveryReactor) {
  Thread* t = CreateThread("listed", 1);
  WaitForIterations(t, 1);
  std::vector<ReactorInfo> infos = runtime().Info();
  ASSERT_EQ(infos.size(), Eal()->reactor_lcores().size());
  for (size_t i = 0; i < infos.size(); ++i) {
    EXPECT_EQ(infos[i].index, i);
    EXPECT_EQ(infos[i].lcore, Eal()->reactor_lcores()[i].lcore_id);
    EXPECT_EQ(infos[i].cpu, Eal()->reactor_lcores()[i].cpu);
    EXPECT_EQ(runtime().ReactorOnCpu(infos[i].cpu), &reactor(i));
  }
  ASSERT_EQ(infos[1].threads.size(), 1u);
  EXPECT_EQ(infos[1].threads[0].name, "listed");
  EXPECT_EQ(infos[1].threads[0].id, t->id());
  EXPECT_TRUE(infos[0].threads.empty());
  // Counted at the end of each iteration: the one that ran our message may still be going.
  EXPECT_TRUE(WaitUntil([&] {
    ReactorInfo info = Info(1);
    return info.busy_tsc > 0 && info.idle_tsc > 0;
  }));
  EXPECT_EQ(runtime().ReactorOnCpu(12345), nullptr);
  EXPECT_GT(runtime().tsc_hz(), 0u);
  ExitThread(t);
}

}  // namespace
}  // namespace pollux::testing
