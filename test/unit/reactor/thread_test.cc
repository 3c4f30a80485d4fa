// Threads: placement over reactors, Thread::Current, Exit and destruction, Find, ForEachThread.
#include "pollux/reactor/thread.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "mailbox.h"
#include "pollux/reactor/io_channel.h"
#include "pollux/reactor/reactor.h"
#include "reactor_test_env.h"

namespace pollux::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAreArray;

using ThreadTest = ModeTest;

TEST_P(ThreadTest, CreateSpreadsThreadsOverReactors) {
  std::vector<Thread*> threads;
  for (int i = 0; i < 6; ++i) threads.push_back(CreateThread("t" + std::to_string(i)));
  std::map<Reactor*, int> per_reactor;
  for (Thread* t : threads) ++per_reactor[t->reactor()];
  ASSERT_EQ(per_reactor.size(), runtime().reactors().size());
  for (auto& [reactor, count] : per_reactor) {
    EXPECT_EQ(count, 6 / static_cast<int>(runtime().reactors().size()));
    EXPECT_EQ(reactor->thread_count(), static_cast<size_t>(count));
  }
  // Every thread runs on the reactor it was given, and ReactorInfo lists it there.
  for (Thread* t : threads) {
    EXPECT_EQ(CallOn(t, [] { return Reactor::Current(); }), t->reactor());
  }
  for (const ReactorInfo& info : runtime().Info()) {
    EXPECT_EQ(info.threads.size(), 6 / runtime().reactors().size());
  }
  for (Thread* t : threads) ExitThread(t);
  // A thread leaves the registry (Find) just before its reactor stops counting it.
  for (auto& reactor : runtime().reactors()) {
    EXPECT_TRUE(WaitUntil([&] { return reactor->thread_count() == 0; }));
  }
}

TEST_P(ThreadTest, CreateOnAChosenCore) {
  for (size_t i = 0; i < runtime().reactors().size(); ++i) {
    Thread* t = CreateThread("pinned", static_cast<int>(i));
    EXPECT_EQ(t->reactor(), &reactor(i));
    EXPECT_EQ(t->reactor()->cpu(), reactor(i).cpu());
    ExitThread(t);
  }
  ThreadOptions options;
  options.cpu = 999;
  auto missing = Thread::Create("nowhere", options);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(missing.status().message(), HasSubstr("no reactor on core 999"));
}

TEST_P(ThreadTest, CurrentInsideMessages) {
  EXPECT_EQ(Thread::Current(), nullptr);
  EXPECT_EQ(Reactor::Current(), nullptr);
  Thread* a = CreateThread("a", 0);
  Thread* b = CreateThread("b", 1);
  EXPECT_EQ(CallOn(a, [] { return Thread::Current(); }), a);
  EXPECT_EQ(CallOn(b, [] { return Thread::Current(); }), b);
  EXPECT_EQ(CallOn(a, [] { return Reactor::Current(); }), &reactor(0));
  EXPECT_EQ(CallOn(b, [] { return Reactor::Current(); }), &reactor(1));
  // Inside a poller too.
  std::atomic<Thread*> seen{nullptr};
  Poller* poller = CallOn(a, [&] {
    return a->RegisterPoller("who", [&seen] {
      seen = Thread::Current();
      return PollResult::kIdle;
    });
  });
  EXPECT_TRUE(WaitUntil([&] { return seen.load() != nullptr; }));
  EXPECT_EQ(seen.load(), a);
  RunOn(a, [poller] { poller->Unregister(); });
  EXPECT_EQ(Thread::Current(), nullptr);
  ExitThread(a);
  ExitThread(b);
}

TEST_P(ThreadTest, FindAndNames) {
  Thread* t = CreateThread("named");
  EXPECT_EQ(Thread::Find(t->id()), t);
  EXPECT_EQ(t->name(), "named");
  EXPECT_EQ(Thread::Find(0), nullptr);
  Thread* u = CreateThread("other");
  EXPECT_NE(t->id(), u->id());
  ExitThread(t);
  ExitThread(u);
}

TEST_P(ThreadTest, ExitWaitsForPollersThenDestroys) {
  Thread* t = CreateThread("exiting");
  uint64_t id = t->id();
  Poller* poller =
      CallOn(t, [t] { return t->RegisterPoller("keeps-alive", [] { return PollResult::kIdle; }); });
  RunOn(t, [t] {
    t->Exit();
    EXPECT_TRUE(t->exiting());
  });
  // Still alive while its poller is registered, and still runs messages.
  WaitForIterations(t, 20);
  EXPECT_EQ(Thread::Find(id), t);
  RunOn(t, [poller] { poller->Unregister(); });
  EXPECT_TRUE(WaitUntil([id] { return Thread::Find(id) == nullptr; }));
}

// A reaped thread's mailbox outlives any send still inside it, then goes (its eventfd with it)
// even while the other reactor sleeps the whole time.
TEST_P(ThreadTest, ExitedThreadsMailboxesAreFreedWhileAnotherReactorSleeps) {
  auto open_fds = [] {
    size_t n = 0;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
      (void)entry;
      ++n;
    }
    return n;
  };
  Thread* keeper = CreateThread("keeper", 0);
  const size_t mailboxes = Mailbox::LiveCount();
  const size_t fds = open_fds();
  for (int i = 0; i < 50; ++i) ExitThread(CreateThread("short-lived", 0));
  // Reactor 0 frees them on later passes; nudge it with messages until it has.
  EXPECT_TRUE(WaitUntil([&] {
    RunOn(keeper, [] {});
    return Mailbox::LiveCount() <= mailboxes;
  })) << Mailbox::LiveCount()
      << " mailboxes, " << mailboxes << " before";
#if !defined(POLLUX_TSAN_BUILD)
  // Their eventfds went with them. Not under TSan, whose runtime opens fds of its own while
  // the test runs (2 more seen once, with every mailbox freed).
  EXPECT_EQ(open_fds(), fds);
#else
  (void)fds;
#endif
  ExitThread(keeper);
}

TEST_P(ThreadTest, ExitWaitsForFdHandlersAndChannels) {
  struct Device : IoDevice {
    Device() : IoDevice("exit-device") {}
    std::unique_ptr<ChannelContext> CreateChannelContext() override {
      return std::make_unique<ChannelContext>();
    }
  } device;
  device.RegisterIoDevice();
  Thread* t = CreateThread("exiting");
  uint64_t id = t->id();
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  auto channel = std::make_shared<IoChannelRef>();
  RunOn(t, [&] {
    ASSERT_TRUE(t->AddFdHandler(fds[0], [] {}).ok());
    *channel = GetIoChannel(device);
    ASSERT_TRUE(static_cast<bool>(*channel));
    t->Exit();
  });
  WaitForIterations(t, 20);
  EXPECT_EQ(Thread::Find(id), t);
  RunOn(t, [&] { t->RemoveFdHandler(fds[0]); });
  WaitForIterations(t, 20);
  EXPECT_EQ(Thread::Find(id), t) << "destroyed while holding a channel";
  RunOn(t, [&] { channel->reset(); });
  EXPECT_TRUE(WaitUntil([id] { return Thread::Find(id) == nullptr; }));
  EXPECT_EQ(device.channel_count(), 0u);
  bool unregistered = false;
  device.UnregisterIoDevice([&] { unregistered = true; });  // no channel, no thread: inline
  EXPECT_TRUE(unregistered);
  close(fds[0]);
  close(fds[1]);
}

// Messages queued behind Exit() still run before the thread is destroyed.
TEST_P(ThreadTest, ExitRunsQueuedMessages) {
  Thread* t = CreateThread("exiting");
  uint64_t id = t->id();
  static std::atomic<int> ran;
  ran = 0;
  std::vector<Message> burst;
  burst.push_back(Message{[](void*) { Thread::Current()->Exit(); }, nullptr});
  for (int i = 0; i < 200; ++i) burst.push_back(Message{[](void*) { ran.fetch_add(1); }, nullptr});
  // One ring operation: the thread cannot be reaped between Exit and the rest.
  ASSERT_EQ(t->SendMessages(burst.data(), static_cast<unsigned>(burst.size())), burst.size());
  EXPECT_TRUE(WaitUntil([id] { return Thread::Find(id) == nullptr; }));
  EXPECT_EQ(ran.load(), 200);
}

TEST_P(ThreadTest, CreateFromInsideAThreadAndFromManyOsThreads) {
  Thread* parent = CreateThread("parent");
  Thread* child = CallOn(parent, [] {
    auto created = Thread::Create("child");
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? *created : nullptr;
  });
  ASSERT_NE(child, nullptr);
  EXPECT_EQ(CallOn(child, [] { return Thread::Current()->name(); }), "child");

  std::mutex mutex;
  std::vector<Thread*> created;
  std::vector<std::thread> creators;
  for (int i = 0; i < 4; ++i) {
    creators.emplace_back([&, i] {
      for (int j = 0; j < 10; ++j) {
        auto t = Thread::Create("os" + std::to_string(i) + "." + std::to_string(j));
        ASSERT_TRUE(t.ok()) << t.status();
        std::lock_guard lock(mutex);
        created.push_back(*t);
      }
    });
  }
  for (auto& c : creators) c.join();
  ASSERT_EQ(created.size(), 40u);
  std::set<uint64_t> ids;
  for (Thread* t : created) ids.insert(t->id());
  EXPECT_EQ(ids.size(), 40u);
  for (Thread* t : created) ExitThread(t);
  ExitThread(child);
  ExitThread(parent);
}

TEST_P(ThreadTest, ForEachThreadVisitsEveryThreadOnceThenDoneOnCaller) {
  std::vector<Thread*> threads;
  for (int i = 0; i < 7; ++i) threads.push_back(CreateThread("w" + std::to_string(i)));
  std::vector<uint64_t> expected;
  for (Thread* t : threads) expected.push_back(t->id());

  struct Walk {
    std::mutex mutex;
    std::vector<uint64_t> visited;
    std::vector<bool> on_own_thread;
    std::atomic<bool> done{false};
    Thread* done_on = nullptr;
    size_t visited_at_done = 0;
  };
  auto walk = std::make_shared<Walk>();
  Thread* caller = threads[3];
  RunOn(caller, [walk] {
    ForEachThread(
        [walk](Thread& t) {
          std::lock_guard lock(walk->mutex);
          walk->visited.push_back(t.id());
          walk->on_own_thread.push_back(Thread::Current() == &t);
        },
        [walk] {
          std::lock_guard lock(walk->mutex);
          walk->done_on = Thread::Current();
          walk->visited_at_done = walk->visited.size();
          walk->done = true;
        });
  });
  ASSERT_TRUE(WaitUntil([&] { return walk->done.load(); }));
  std::lock_guard lock(walk->mutex);
  EXPECT_THAT(walk->visited, UnorderedElementsAreArray(expected));
  EXPECT_EQ(walk->visited_at_done, expected.size());
  EXPECT_EQ(walk->done_on, caller);
  for (bool own : walk->on_own_thread) EXPECT_TRUE(own);
  for (Thread* t : threads) ExitThread(t);
}

// A thread that is destroyed after the walk listed it but before the walk reaches it is
// skipped, and the walk still finishes on the caller.
TEST_P(ThreadTest, ForEachThreadSkipsThreadsThatExited) {
  // Ids ascend in creation order, and the walk goes in id order: w1 is visited before w3.
  std::vector<Thread*> threads;
  for (int i = 0; i < 5; ++i) {
    threads.push_back(CreateThread("w" + std::to_string(i), i == 3 ? 1 : 0));
  }
  Thread* leaving = threads[3];
  uint64_t leaving_id = leaving->id();
  auto visited = std::make_shared<std::vector<uint64_t>>();
  auto done = std::make_shared<std::atomic<bool>>(false);
  auto gone = std::make_shared<std::atomic<bool>>(false);
  RunOn(threads[0], [=] {
    ForEachThread(
        [=](Thread& t) {
          visited->push_back(t.id());  // one thread at a time: the walk hands it on
          if (&t != threads[1]) return;
          // On w1 (reactor 0): make w3 (reactor 1) exit, and wait until it is destroyed.
          while (!leaving->SendMessage([] { Thread::Current()->Exit(); })) {
          }
          auto deadline = std::chrono::steady_clock::now() + kTimeout;
          while (Thread::Find(leaving_id) != nullptr &&
                 std::chrono::steady_clock::now() < deadline) {
          }
          gone->store(Thread::Find(leaving_id) == nullptr);
        },
        [=] { done->store(true); });
  });
  ASSERT_TRUE(WaitUntil([&] { return done->load(); }));
  EXPECT_TRUE(gone->load());
  std::vector<uint64_t> expected;
  for (Thread* t : threads) {
    if (t != leaving) expected.push_back(t->id());
  }
  EXPECT_EQ(*visited, expected);
  for (Thread* t : threads) {
    if (t != leaving) ExitThread(t);
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, ThreadTest,
                         ::testing::Values(ReactorMode::kPoll, ReactorMode::kInterrupt),
                         [](const auto& info) { return std::string(ReactorModeName(info.param)); });

// Without a runtime, Thread::Create fails clearly.
TEST(ThreadWithoutRuntimeTest, CreateFails) {
  ASSERT_EQ(ReactorRuntime::Get(), nullptr);
  auto t = Thread::Create("orphan");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(t.status().message(), HasSubstr("cannot create thread \"orphan\": no reactor"));
}

// Threads left alive when the runtime stops are destroyed with it, their pollers, fd handlers
// and queued messages included (ASan checks nothing leaks).
class RuntimeShutdownTest : public ReactorTest {};

TEST_F(RuntimeShutdownTest, DestroysLeftoverThreads) {
  auto token = std::make_shared<int>(0);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::vector<uint64_t> ids;
  for (int i = 0; i < 4; ++i) {
    Thread* t = CreateThread("leftover" + std::to_string(i));
    ids.push_back(t->id());
    RunOn(t, [t, token, i, &fds] {
      t->RegisterPoller("p", [token] { return PollResult::kIdle; });
      PollerOptions timed;
      timed.period = std::chrono::milliseconds(5);
      t->RegisterPoller(
          "timed", [token] { return PollResult::kIdle; }, std::move(timed));
      if (i == 0) {
        ASSERT_TRUE(t->AddFdHandler(fds[0], [token] {}).ok());
      }
    });
  }
  EXPECT_GT(token.use_count(), 1);
  runtime_.reset();
  EXPECT_EQ(token.use_count(), 1) << "pollers or handlers of leftover threads were not freed";
  for (uint64_t id : ids) EXPECT_EQ(Thread::Find(id), nullptr);
  close(fds[0]);
  close(fds[1]);
}

// Start and stop runtimes repeatedly in one process.
TEST(RuntimeRestartTest, StartsAndStopsRepeatedly) {
  ASSERT_NE(Eal(), nullptr);
  for (int round = 0; round < 5; ++round) {
    ReactorRuntimeOptions options;
    options.mode = round % 2 == 0 ? ReactorMode::kInterrupt : ReactorMode::kPoll;
    auto runtime = ReactorRuntime::Start(*Eal(), options);
    ASSERT_TRUE(runtime.ok()) << runtime.status();
    EXPECT_EQ(ReactorRuntime::Get(), runtime->get());
    auto second = ReactorRuntime::Start(*Eal(), options);
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
    auto t = Thread::Create("round" + std::to_string(round));
    ASSERT_TRUE(t.ok());
    EXPECT_EQ(CallOn(*t, [] { return Thread::Current()->name(); }),
              "round" + std::to_string(round));
    runtime->reset();
    EXPECT_EQ(ReactorRuntime::Get(), nullptr);
  }
}

}  // namespace
}  // namespace pollux::testing
