// Parking: active pollers with a wake fd and an arm hook that have found nothing for the park
// time leave the polled set (armed, watched by their wake fd only) and come back when the fd
// fires, when they are marked as waiting for work, or on Unpark; a thread with one busy and 99
// idle sources then polls only the busy one.
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "pollux/reactor/poller.h"
#include "pollux/reactor/reactor.h"
#include "pollux/reactor/thread.h"
#include "reactor_test_env.h"

namespace pollux::testing {
namespace {

using std::chrono::milliseconds;

class ParkingTest : public ModeTest {
 protected:
  ReactorRuntimeOptions RuntimeOptions() const override {
    ReactorRuntimeOptions options = ModeTest::RuntimeOptions();
    options.park_after = milliseconds(50);
    return options;
  }
};

// An idle source: an eventfd it reads when polled, and counts of its arms and disarms.
struct Source {
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  std::atomic<uint64_t> arms{0};
  std::atomic<uint64_t> disarms{0};
  std::atomic<uint64_t> events{0};
  PollerHandle poller;
  ~Source() { close(fd); }

  void Register(int index) {
    PollerOptions options;
    options.wake_fd = fd;
    options.arm = [this] {
      ++arms;
      return true;
    };
    options.disarm = [this] { ++disarms; };
    poller = PollerHandle(Thread::Current()->RegisterPoller(
        "idle" + std::to_string(index),
        [this] {
          uint64_t value;
          if (read(fd, &value, sizeof(value)) != sizeof(value)) return PollResult::kIdle;
          ++events;
          return PollResult::kBusy;
        },
        std::move(options)));
  }
  void Signal() {
    uint64_t one = 1;
    EXPECT_EQ(write(fd, &one, sizeof(one)), static_cast<ssize_t>(sizeof(one)));
  }
};

TEST_P(ParkingTest, IdleSourcesParkAndTheBusyOneKeepsThePolls) {
  Thread* t = CreateThread("sources", 0);
  std::vector<std::unique_ptr<Source>> sources;
  for (int i = 0; i < 99; ++i) sources.push_back(std::make_unique<Source>());
  std::atomic<uint64_t> busy_runs{0};
  PollerHandle busy;
  RunOn(t, [&] {
    for (int i = 0; i < 99; ++i) sources[i]->Register(i);
    // The busy source: work on every poll (no wake fd: it keeps the reactor awake, as a
    // source with work would).
    busy = PollerHandle(Thread::Current()->RegisterPoller("busy", [&] {
      ++busy_runs;
      return PollResult::kBusy;
    }));
  });
  auto parked = [&] {
    return CallOn(t, [&] {
      int n = 0;
      for (auto& s : sources) n += s->poller->parked();
      return n;
    });
  };
  ASSERT_TRUE(WaitUntil([&] { return parked() == 99; })) << parked() << " of 99 parked";
  EXPECT_FALSE(CallOn(t, [&] { return busy->parked(); }));
  for (auto& s : sources) EXPECT_EQ(s->arms.load(), 1u);
  EXPECT_GE(Info(0).poller_parks, 99u);

  // Parked sources are not polled; the busy one is.
  auto idle_runs = [&] {
    return CallOn(t, [&] {
      uint64_t runs = 0;
      for (auto& s : sources) runs += s->poller->run_count();
      return runs;
    });
  };
  uint64_t idle_before = idle_runs();
  uint64_t busy_before = busy_runs.load();
  std::this_thread::sleep_for(milliseconds(20));
  EXPECT_EQ(idle_runs(), idle_before);
  EXPECT_GT(busy_runs.load(), busy_before);

  // A parked source's event brings it back: disarmed, polled, its event handled.
  sources[5]->Signal();
  EXPECT_TRUE(WaitUntil([&] { return sources[5]->events.load() == 1; }));
  EXPECT_EQ(sources[5]->disarms.load(), 1u);
  EXPECT_GE(Info(0).poller_unparks, 1u);
  // And once idle for the park time again, it parks again.
  EXPECT_TRUE(WaitUntil([&] { return sources[5]->arms.load() == 2; }));

  RunOn(t, [&] {
    busy.reset();
    for (auto& s : sources) s->poller.reset();
  });
  ExitThread(t);
}

TEST_P(ParkingTest, WaitingForWorkOrUnparkBringsAParkedPollerBack) {
  Thread* t = CreateThread("source", 0);
  Source source;
  RunOn(t, [&] { source.Register(0); });
  ASSERT_TRUE(WaitUntil([&] { return CallOn(t, [&] { return source.poller->parked(); }); }));
  // (In interrupt mode the reactor's sleeps arm and disarm it too: only growth is checked.)
  uint64_t disarms = source.disarms.load();
  // The owner queued work the poller must hand on: it says what it waits for.
  RunOn(t, [&] { source.poller->SetAwaiting(AwaitedWork::kDevice); });
  EXPECT_FALSE(CallOn(t, [&] { return source.poller->parked(); }));
  EXPECT_GT(source.disarms.load(), disarms);
  // Nothing parks while it waits for something.
  std::this_thread::sleep_for(milliseconds(120));
  EXPECT_FALSE(CallOn(t, [&] { return source.poller->parked(); }));
  RunOn(t, [&] { source.poller->SetAwaiting(AwaitedWork::kNothing); });
  ASSERT_TRUE(WaitUntil([&] { return CallOn(t, [&] { return source.poller->parked(); }); }));
  disarms = source.disarms.load();
  RunOn(t, [&] { source.poller->Unpark(); });
  EXPECT_FALSE(CallOn(t, [&] { return source.poller->parked(); }));
  EXPECT_GT(source.disarms.load(), disarms);
  // Pausing a parked poller disarms it; resuming polls it.
  ASSERT_TRUE(WaitUntil([&] { return CallOn(t, [&] { return source.poller->parked(); }); }));
  disarms = source.disarms.load();
  RunOn(t, [&] { source.poller->Pause(); });
  EXPECT_TRUE(CallOn(t, [&] { return source.poller->paused(); }));
  EXPECT_GT(source.disarms.load(), disarms);
  RunOn(t, [&] { source.poller.reset(); });
  ExitThread(t);
}

TEST_P(ParkingTest, AParkedPollerMovesWithItsThreadAndWakesOnTheNewReactor) {
  if (runtime().reactors().size() < 2) GTEST_SKIP() << "needs two reactors";
  ThreadOptions options;
  options.cpu = reactor(0).cpu();
  options.cpumask = runtime().cpus();
  auto created = Thread::Create("mover", options);
  ASSERT_TRUE(created.ok());
  Thread* t = *created;
  Source source;
  RunOn(t, [&] { source.Register(0); });
  ASSERT_TRUE(WaitUntil([&] { return CallOn(t, [&] { return source.poller->parked(); }); }));
  ASSERT_TRUE(Thread::Move(t->id(), reactor(1).cpu()).ok());
  ASSERT_TRUE(WaitUntil([&] { return t->Stats().moves == 1; }));
  source.Signal();
  EXPECT_TRUE(WaitUntil([&] { return source.events.load() == 1; }));
  RunOn(t, [&] { source.poller.reset(); });
  ExitThread(t);
}

INSTANTIATE_TEST_SUITE_P(Modes, ParkingTest,
                         ::testing::Values(ReactorMode::kPoll, ReactorMode::kInterrupt),
                         [](const auto& info) { return std::string(ReactorModeName(info.param)); });

}  // namespace
}  // namespace pollux::testing
