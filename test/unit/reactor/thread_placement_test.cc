// Thread placement: cpumasks, home cores, and moves between reactors with messages in flight,
// pollers, timers and fd handlers registered, in both reactor modes; per-reactor modes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "pollux/reactor/reactor.h"
#include "pollux/reactor/thread.h"
#include "reactor_test_env.h"

namespace pollux::testing {
namespace {

using std::chrono::microseconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class PlacementTest : public ModeTest {
 protected:
  // A thread on reactor `index` that may run on every reactor.
  Thread* CreateMovable(std::string name, size_t index) {
    ThreadOptions options;
    options.cpu = reactor(index).cpu();
    options.cpumask = runtime().cpus();
    auto thread = Thread::Create(std::move(name), options);
    EXPECT_TRUE(thread.ok()) << thread.status();
    if (!thread.ok()) std::abort();
    return *thread;
  }

  // Moves `thread` to reactor `index` and waits until the target has adopted it.
  void MoveAndWait(Thread* thread, size_t index) {
    uint64_t moves = thread->Stats().moves;
    bool elsewhere = thread->reactor() != &reactor(index);
    ASSERT_TRUE(Thread::Move(thread->id(), reactor(index).cpu()).ok());
    if (elsewhere) {
      ASSERT_TRUE(WaitUntil([&] { return thread->Stats().moves == moves + 1; }));
    }
    ASSERT_EQ(thread->reactor(), &reactor(index));
  }
};

TEST_P(PlacementTest, MessagesFromOneSenderStayInOrderAcrossMoves) {
  if (runtime().reactors().size() < 2) GTEST_SKIP() << "needs two reactors";
  Thread* t = CreateMovable("mover", 0);
  struct Log {
    std::vector<uint64_t> seen;  // on t only
  } log;
  constexpr uint64_t kMessages = 200'000;
  std::atomic<bool> sent_all{false};
  std::thread sender([&] {
    for (uint64_t i = 0; i < kMessages; ++i) {
      while (!t->SendMessage([&log, i] { log.seen.push_back(i); })) std::this_thread::yield();
    }
    sent_all = true;
  });
  int moves = 0;
  while (!sent_all.load() && moves < 400) {
    MoveAndWait(t, static_cast<size_t>(++moves % 2));
  }
  sender.join();
  ASSERT_TRUE(WaitUntil([&] { return CallOn(t, [&] { return log.seen.size(); }) == kMessages; }));
  bool in_order = CallOn(t, [&] {
    for (uint64_t i = 0; i < kMessages; ++i) {
      if (log.seen[i] != i) return false;
    }
    return true;
  });
  EXPECT_TRUE(in_order);
  EXPECT_GE(t->Stats().moves, 2u);
  ExitThread(t);
}

TEST_P(PlacementTest, PollersTimersAndFdHandlersGoWithTheThread) {
  if (runtime().reactors().size() < 2) GTEST_SKIP() << "needs two reactors";
  Thread* t = CreateMovable("mover", 0);
  int wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  int handler_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  ASSERT_GE(wake_fd, 0);
  ASSERT_GE(handler_fd, 0);
  std::atomic<uint64_t> woken_polls{0};
  std::atomic<uint64_t> timer_runs{0};
  std::atomic<Reactor*> handler_ran_on{nullptr};
  PollerHandle active, timed;
  RunOn(t, [&] {
    PollerOptions options;
    options.wake_fd = wake_fd;
    active = PollerHandle(Thread::Current()->RegisterPoller(
        "woken",
        [&] {
          uint64_t value;
          if (read(wake_fd, &value, sizeof(value)) != sizeof(value)) return PollResult::kIdle;
          ++woken_polls;
          return PollResult::kBusy;
        },
        std::move(options)));
    PollerOptions every_500us;
    every_500us.period = microseconds(500);
    timed = PollerHandle(Thread::Current()->RegisterPoller(
        "timer",
        [&] {
          ++timer_runs;
          return PollResult::kIdle;
        },
        std::move(every_500us)));
    ASSERT_TRUE(Thread::Current()
                    ->AddFdHandler(handler_fd,
                                   [&] {
                                     uint64_t value;
                                     (void)!read(handler_fd, &value, sizeof(value));
                                     handler_ran_on = Reactor::Current();
                                   })
                    .ok());
  });
  for (size_t round = 1; round <= 4; ++round) {
    size_t index = round % 2;
    MoveAndWait(t, index);
    // Let an interrupt-mode reactor fall asleep: the thread's fds must now wake this one.
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    uint64_t before = woken_polls.load();
    uint64_t one = 1;
    ASSERT_EQ(write(wake_fd, &one, sizeof(one)), static_cast<ssize_t>(sizeof(one)));
    EXPECT_TRUE(WaitUntil([&] { return woken_polls.load() > before; }));
    ASSERT_EQ(write(handler_fd, &one, sizeof(one)), static_cast<ssize_t>(sizeof(one)));
    EXPECT_TRUE(WaitUntil([&] { return handler_ran_on.load() == &reactor(index); }));
    uint64_t timers = timer_runs.load();
    EXPECT_TRUE(WaitUntil([&] { return timer_runs.load() > timers + 2; }));
    handler_ran_on = nullptr;
  }
  RunOn(t, [&] {
    active.reset();
    timed.reset();
    Thread::Current()->RemoveFdHandler(handler_fd);
  });
  ExitThread(t);
  close(wake_fd);
  close(handler_fd);
}

TEST_P(PlacementTest, CpumaskBoundsMovesAndSetCpumaskMovesHome) {
  if (runtime().reactors().size() < 2) GTEST_SKIP() << "needs two reactors";
  // Created on a core without a cpumask: pinned there.
  Thread* pinned = CreateThread("pinned", 0);
  EXPECT_THAT(pinned->cpumask(), ElementsAre(reactor(0).cpu()));
  EXPECT_EQ(pinned->home_cpu(), reactor(0).cpu());
  absl::Status refused = Thread::Move(pinned->id(), reactor(1).cpu());
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.message(), HasSubstr("may not run on core"));

  // A new mask without its core moves it to the mask's first core, which becomes its home.
  ASSERT_TRUE(Thread::SetCpumask(pinned->id(), {reactor(1).cpu()}).ok());
  EXPECT_TRUE(WaitUntil([&] { return pinned->Stats().moves == 1; }));
  EXPECT_EQ(pinned->reactor(), &reactor(1));
  EXPECT_EQ(pinned->home_cpu(), reactor(1).cpu());
  // A wider mask that holds its core keeps it there.
  ASSERT_TRUE(Thread::SetCpumask(pinned->id(), runtime().cpus()).ok());
  EXPECT_EQ(pinned->home_cpu(), reactor(1).cpu());
  MoveAndWait(pinned, 0);
  // A move to the core it is on succeeds and starts nothing.
  bool started = true;
  EXPECT_TRUE(Thread::Move(pinned->id(), reactor(0).cpu(), &started).ok());
  EXPECT_FALSE(started);

  // Bad requests fail clearly and change nothing.
  EXPECT_EQ(Thread::SetCpumask(pinned->id(), {}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Thread::SetCpumask(pinned->id(), {999}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Thread::Move(pinned->id(), 999).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Thread::Move(987654321, reactor(0).cpu()).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Thread::SetCpumask(987654321, {reactor(0).cpu()}).code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(pinned->cpumask(), ElementsAre(reactor(0).cpu(), reactor(1).cpu()));

  // A thread created without a core may run anywhere.
  auto anywhere = Thread::Create("anywhere");
  ASSERT_TRUE(anywhere.ok());
  EXPECT_EQ((*anywhere)->cpumask(), runtime().cpus());
  ExitThread(*anywhere);
  ExitThread(pinned);
}

TEST_P(PlacementTest, AThreadHoldingAReactorBoundResourceStays) {
  if (runtime().reactors().size() < 2) GTEST_SKIP() << "needs two reactors";
  Thread* t = CreateMovable("bound", 0);
  RunOn(t, [] { Thread::Current()->AddReactorBoundResource(); });
  absl::Status refused = Thread::Move(t->id(), reactor(1).cpu());
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.message(), HasSubstr("bound to its reactor's OS thread"));
  // Schedulers see it as pinned where it is.
  std::vector<ReactorRuntime::ThreadSnapshot> snapshot;
  ASSERT_TRUE(WaitUntil([&] {
    snapshot = runtime().SnapshotThreads();
    return !snapshot.empty();
  }));
  for (const auto& s : snapshot) {
    if (s.id == t->id()) {
      EXPECT_EQ(s.cpumask, std::vector<int>{reactor(0).cpu()});
    }
  }
  RunOn(t, [] { Thread::Current()->RemoveReactorBoundResource(); });
  MoveAndWait(t, 1);
  ExitThread(t);
}

TEST_P(PlacementTest, AThreadExitingWhileItMovesIsDestroyedOnce) {
  if (runtime().reactors().size() < 2) GTEST_SKIP() << "needs two reactors";
  for (int i = 0; i < 200; ++i) {
    Thread* t = CreateMovable("short-lived", 0);
    uint64_t id = t->id();
    ASSERT_TRUE(t->SendMessage([] { Thread::Current()->Exit(); }));
    absl::Status moved = Thread::Move(id, reactor(1).cpu());
    // Gone already, or moved (and destroyed there).
    EXPECT_TRUE(moved.ok() || moved.code() == absl::StatusCode::kNotFound) << moved;
    ASSERT_TRUE(WaitUntil([id] { return Thread::Find(id) == nullptr; }));
  }
  for (auto& r : runtime().reactors()) {
    EXPECT_TRUE(WaitUntil([&] { return r->thread_count() == 0; }));
  }
}

TEST_P(PlacementTest, ModesArePerReactor) {
  ASSERT_TRUE(runtime().SetReactorMode(reactor(0).cpu(), ReactorMode::kPoll).ok());
  EXPECT_EQ(reactor(0).mode(), ReactorMode::kPoll);
  EXPECT_EQ(Info(0).mode, ReactorMode::kPoll);
  if (runtime().reactors().size() > 1) {
    ASSERT_TRUE(runtime().SetReactorMode(reactor(1).cpu(), ReactorMode::kInterrupt).ok());
    EXPECT_EQ(Info(1).mode, ReactorMode::kInterrupt);
    // An idle reactor in interrupt mode sleeps while its neighbour polls.
    EXPECT_TRUE(WaitUntil([&] { return reactor(1).sleeping(); }));
    // Reactor 0 may have been asleep when its mode changed: the change wakes it for good.
    EXPECT_TRUE(WaitUntil([&] { return !reactor(0).sleeping(); }));
    for (int i = 0; i < 20; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      EXPECT_FALSE(reactor(0).sleeping());
    }
  }
  absl::Status missing = runtime().SetReactorMode(999, ReactorMode::kPoll);
  EXPECT_EQ(missing.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(missing.message(), HasSubstr("no reactor on core 999"));
  // Setting every reactor's mode overrides the one set for a reactor.
  runtime().SetMode(GetParam());
  for (const ReactorInfo& info : runtime().Info()) EXPECT_EQ(info.mode, GetParam());
}

TEST_P(PlacementTest, SnapshotListsEveryThreadWithItsPlacement) {
  Thread* a = CreateMovable("a", 0);
  Thread* b = CreateThread("b", static_cast<int>(runtime().reactors().size() - 1));
  // Create returns before the reactor adopts the thread.
  std::vector<ReactorRuntime::ThreadSnapshot> snapshot;
  ASSERT_TRUE(WaitUntil([&] {
    snapshot = runtime().SnapshotThreads();
    return snapshot.size() >= 2;
  }));
  int found = 0;
  for (const auto& s : snapshot) {
    if (s.id == a->id()) {
      ++found;
      EXPECT_EQ(s.name, "a");
      EXPECT_EQ(s.cpu, reactor(0).cpu());
      EXPECT_EQ(s.cpumask, runtime().cpus());
    } else if (s.id == b->id()) {
      ++found;
      EXPECT_EQ(s.cpumask, std::vector<int>{b->reactor()->cpu()});
      EXPECT_EQ(s.home_cpu, b->reactor()->cpu());
    }
  }
  EXPECT_EQ(found, 2);
  ExitThread(a);
  ExitThread(b);
}

INSTANTIATE_TEST_SUITE_P(Modes, PlacementTest,
                         ::testing::Values(ReactorMode::kPoll, ReactorMode::kInterrupt),
                         [](const auto& info) { return std::string(ReactorModeName(info.param)); });

}  // namespace
}  // namespace pollux::testing
