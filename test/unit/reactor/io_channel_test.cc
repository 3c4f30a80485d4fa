// I/O devices and channels: one channel per thread created on first use, contexts created and
// destroyed on their own thread, deferred destruction, UnregisterIoDevice, ForEachChannel.
#include "pollux/reactor/io_channel.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <vector>

#include "pollux/reactor/reactor.h"
#include "pollux/reactor/thread.h"
#include "reactor_test_env.h"

namespace pollux::testing {
namespace {

using ::testing::UnorderedElementsAre;

// Records on which Thread each context was created and destroyed.
struct ContextLog {
  std::mutex mutex;
  std::vector<Thread*> created;
  std::vector<Thread*> destroyed;
  size_t created_count() {
    std::lock_guard lock(mutex);
    return created.size();
  }
  size_t destroyed_count() {
    std::lock_guard lock(mutex);
    return destroyed.size();
  }
};

class TestContext : public ChannelContext {
 public:
  explicit TestContext(ContextLog* log) : log_(log), thread_(Thread::Current()) {
    std::lock_guard lock(log_->mutex);
    log_->created.push_back(thread_);
  }
  ~TestContext() override {
    std::lock_guard lock(log_->mutex);
    log_->destroyed.push_back(Thread::Current());
  }
  Thread* thread() const { return thread_; }
  int uses = 0;

 private:
  ContextLog* log_;
  Thread* thread_;
};

class TestDevice : public IoDevice {
 public:
  explicit TestDevice(ContextLog* log) : IoDevice("test-device"), log_(log) {}

  // Makes context creation take this long (widens races with UnregisterIoDevice).
  std::atomic<int> create_delay_us{0};

 protected:
  std::unique_ptr<ChannelContext> CreateChannelContext() override {
    if (int us = create_delay_us.load(); us > 0) {
      auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(us);
      while (std::chrono::steady_clock::now() < until) {
      }
    }
    return std::make_unique<TestContext>(log_);
  }

 private:
  ContextLog* log_;
};

class IoChannelTest : public ModeTest {
 protected:
  void SetUp() override {
    ReactorTest::SetUp();
    device_.RegisterIoDevice();
  }
  void TearDown() override {
    if (device_.registered()) {
      std::atomic<bool> done{false};
      device_.UnregisterIoDevice([&done] { done = true; });  // no channel left: runs inline
      EXPECT_TRUE(done.load());
    }
    ReactorTest::TearDown();
  }

  // Takes a reference to the device's channel on `thread`, kept in `ref`.
  IoChannel* Get(Thread* thread, std::shared_ptr<IoChannelRef> ref) {
    return CallOn(thread, [&] {
      *ref = GetIoChannel(device_);
      return ref->get();
    });
  }
  void Put(Thread* thread, std::shared_ptr<IoChannelRef> ref) {
    RunOn(thread, [ref] { ref->reset(); });
  }

  ContextLog log_;
  TestDevice device_{&log_};
};

TEST_P(IoChannelTest, CreatedOnFirstUseOnePerThread) {
  Thread* a = CreateThread("a", 0);
  Thread* b = CreateThread("b", 1);
  EXPECT_EQ(device_.channel_count(), 0u);
  EXPECT_EQ(log_.created_count(), 0u);

  auto a1 = std::make_shared<IoChannelRef>();
  auto a2 = std::make_shared<IoChannelRef>();
  auto b1 = std::make_shared<IoChannelRef>();
  IoChannel* ca1 = Get(a, a1);
  ASSERT_NE(ca1, nullptr);
  EXPECT_EQ(device_.channel_count(), 1u);
  IoChannel* ca2 = Get(a, a2);
  EXPECT_EQ(ca1, ca2) << "two GetIoChannel on one thread give the same channel";
  EXPECT_EQ(CallOn(a, [ca1] { return ca1->refs(); }), 2);
  IoChannel* cb1 = Get(b, b1);
  ASSERT_NE(cb1, nullptr);
  EXPECT_NE(cb1, ca1);
  EXPECT_EQ(device_.channel_count(), 2u);

  EXPECT_EQ(CallOn(a, [ca1] { return &ca1->thread(); }), a);
  EXPECT_EQ(CallOn(b, [cb1] { return &cb1->thread(); }), b);
  EXPECT_EQ(CallOn(a, [ca1, this] { return &ca1->device() == &device_; }), true);
  EXPECT_EQ(CallOn(a, [ca1] { return ca1->context<TestContext>().thread(); }), a);
  EXPECT_EQ(CallOn(a, [a] { return a->io_channel_count(); }), 1u);
  {
    std::lock_guard lock(log_.mutex);
    EXPECT_THAT(log_.created, UnorderedElementsAre(a, b));
  }

  Put(a, a1);
  Put(a, a2);
  Put(b, b1);
  EXPECT_TRUE(WaitUntil([&] { return device_.channel_count() == 0; }));
  {
    std::lock_guard lock(log_.mutex);
    EXPECT_THAT(log_.destroyed, UnorderedElementsAre(a, b)) << "destroyed on the owning thread";
  }
  ExitThread(a);
  ExitThread(b);
}

TEST_P(IoChannelTest, NoChannelOutsideAThreadOrForAnUnregisteredDevice) {
  EXPECT_FALSE(static_cast<bool>(GetIoChannel(device_)));
  ContextLog other_log;
  TestDevice unregistered(&other_log);
  Thread* a = CreateThread("a");
  EXPECT_TRUE(CallOn(a, [&] { return !GetIoChannel(unregistered); }));
  EXPECT_EQ(other_log.created_count(), 0u);
  ExitThread(a);
}

TEST_P(IoChannelTest, DestructionDeferredUntilTheLastReferenceDrops) {
  Thread* a = CreateThread("a");
  auto r1 = std::make_shared<IoChannelRef>();
  auto r2 = std::make_shared<IoChannelRef>();
  Get(a, r1);
  Get(a, r2);
  Put(a, r1);
  WaitForIterations(a, 20);
  EXPECT_EQ(device_.channel_count(), 1u);
  EXPECT_EQ(log_.destroyed_count(), 0u);
  EXPECT_EQ(CallOn(a, [r2] { return (*r2)->refs(); }), 1);
  Put(a, r2);
  EXPECT_TRUE(WaitUntil([&] { return device_.channel_count() == 0; }));
  EXPECT_EQ(log_.destroyed_count(), 1u);
  ExitThread(a);
}

// A get right after the last put (in the same message) reuses the channel: the context is not
// re-created, and the pending destruction is cancelled. Repeated put/get cycles before the
// destruction message runs must not destroy the channel twice.
TEST_P(IoChannelTest, GetAfterPutReusesTheChannel) {
  Thread* a = CreateThread("a");
  auto ref = std::make_shared<IoChannelRef>();
  IoChannel* channel = Get(a, ref);
  IoChannel* again = CallOn(a, [&] {
    for (int i = 0; i < 10; ++i) {
      ref->reset();
      *ref = GetIoChannel(device_);
    }
    ref->get()->context<TestContext>().uses++;
    return ref->get();
  });
  EXPECT_EQ(again, channel);
  WaitForIterations(a, 20);
  EXPECT_EQ(device_.channel_count(), 1u);
  EXPECT_EQ(log_.created_count(), 1u);
  EXPECT_EQ(log_.destroyed_count(), 0u);
  EXPECT_EQ(CallOn(a, [ref] { return (*ref)->context<TestContext>().uses; }), 1);
  // Now put, get and put again within one message: two destruction messages are queued and
  // the channel must be destroyed exactly once.
  RunOn(a, [&] {
    ref->reset();
    *ref = GetIoChannel(device_);
    ref->reset();
  });
  EXPECT_TRUE(WaitUntil([&] { return device_.channel_count() == 0; }));
  WaitForIterations(a, 20);
  EXPECT_EQ(log_.destroyed_count(), 1u);
  ExitThread(a);
}

TEST_P(IoChannelTest, UnregisterWaitsForEveryChannelThenRunsDoneOnTheCaller) {
  Thread* a = CreateThread("a", 0);
  Thread* b = CreateThread("b", 1);
  Thread* caller = CreateThread("caller", 1);
  auto ra = std::make_shared<IoChannelRef>();
  auto rb = std::make_shared<IoChannelRef>();
  Get(a, ra);
  Get(b, rb);

  std::atomic<bool> done{false};
  std::atomic<Thread*> done_on{nullptr};
  std::atomic<size_t> channels_at_done{99};
  RunOn(caller, [&] {
    device_.UnregisterIoDevice([&] {
      done_on = Thread::Current();
      channels_at_done = device_.channel_count();
      done = true;
    });
  });
  EXPECT_FALSE(device_.registered());
  // New channels are refused while unregistering.
  Thread* late = CreateThread("late");
  EXPECT_TRUE(CallOn(late, [&] { return !GetIoChannel(device_); }));
  ExitThread(late);

  Put(a, ra);
  EXPECT_TRUE(WaitUntil([&] { return device_.channel_count() == 1; }));
  WaitForIterations(caller, 20);
  EXPECT_FALSE(done.load()) << "done ran while a channel was alive";
  Put(b, rb);
  ASSERT_TRUE(WaitUntil([&] { return done.load(); }));
  EXPECT_EQ(done_on.load(), caller);
  EXPECT_EQ(channels_at_done.load(), 0u);
  EXPECT_EQ(log_.destroyed_count(), 2u);
  ExitThread(a);
  ExitThread(b);
  ExitThread(caller);
}

// Without channels, done still runs on the caller (by message, not inline).
TEST_P(IoChannelTest, UnregisterWithoutChannels) {
  Thread* caller = CreateThread("caller");
  std::atomic<Thread*> done_on{nullptr};
  std::atomic<bool> inline_call{false};
  std::atomic<bool> returned{false};
  RunOn(caller, [&] {
    device_.UnregisterIoDevice([&done_on, &inline_call, &returned] {
      inline_call = !returned;
      done_on = Thread::Current();
    });
    returned = true;
  });
  ASSERT_TRUE(WaitUntil([&] { return done_on.load() != nullptr; }));
  EXPECT_EQ(done_on.load(), caller);
  EXPECT_FALSE(inline_call.load());
  ExitThread(caller);
}

// Threads race to create channels while another thread unregisters the device: done runs
// exactly once, after the last channel (including any created during the race) is gone.
TEST_P(IoChannelTest, UnregisterRacingChannelCreation) {
  std::vector<Thread*> users;
  for (int i = 0; i < 4; ++i) users.push_back(CreateThread("u" + std::to_string(i), i % 2));
  Thread* caller = CreateThread("caller", 0);
  device_.create_delay_us = 50;
  std::atomic<int> late_channels{0};
  for (int round = 0; round < 50; ++round) {
    device_.RegisterIoDevice();
    std::atomic<int> done{0};
    std::atomic<size_t> channels_at_done{99};
    std::atomic<int> gets_finished{0};
    for (Thread* u : users) {
      ASSERT_TRUE(u->SendMessage([&] {
        IoChannelRef ref = GetIoChannel(device_);  // may fail once unregistering began
        // A channel handed out must keep the unregistration waiting until it is released.
        if (ref && done.load() != 0) late_channels.fetch_add(1);
        gets_finished.fetch_add(1);
      }));
    }
    RunOn(caller, [&] {
      device_.UnregisterIoDevice([&] {
        channels_at_done = device_.channel_count();
        done.fetch_add(1);
      });
    });
    ASSERT_TRUE(WaitUntil([&] { return done.load() == 1 && gets_finished.load() == 4; }));
    WaitForIterations(caller, 2);
    EXPECT_EQ(done.load(), 1);
    EXPECT_EQ(channels_at_done.load(), 0u);
    for (Thread* u : users) WaitForIterations(u, 2);
    EXPECT_EQ(device_.channel_count(), 0u);
  }
  EXPECT_EQ(late_channels.load(), 0) << "channels were alive after UnregisterIoDevice's done";
  EXPECT_EQ(log_.created_count(), log_.destroyed_count());
  for (Thread* u : users) ExitThread(u);
  ExitThread(caller);
}

TEST_P(IoChannelTest, ForEachChannelVisitsExactlyTheThreadsWithAChannel) {
  Thread* a = CreateThread("a", 0);
  Thread* b = CreateThread("b", 1);
  Thread* c = CreateThread("c", 0);  // no channel
  Thread* d = CreateThread("d", 1);  // no channel, the caller
  auto ra = std::make_shared<IoChannelRef>();
  auto rb = std::make_shared<IoChannelRef>();
  Get(a, ra);
  Get(b, rb);

  struct Walk {
    std::mutex mutex;
    std::vector<Thread*> visited;
    std::vector<bool> channel_matches;
    std::atomic<bool> done{false};
    Thread* done_on = nullptr;
    absl::Status status = absl::UnknownError("not set");
  };
  auto walk = std::make_shared<Walk>();
  RunOn(d, [&, walk] {
    ForEachChannel(
        device_,
        [walk](IoChannel& channel) {
          std::lock_guard lock(walk->mutex);
          walk->visited.push_back(Thread::Current());
          walk->channel_matches.push_back(&channel.thread() == Thread::Current());
          channel.context<TestContext>().uses++;
        },
        [walk](absl::Status status) {
          std::lock_guard lock(walk->mutex);
          walk->done_on = Thread::Current();
          walk->status = status;
          walk->done = true;
        });
  });
  ASSERT_TRUE(WaitUntil([&] { return walk->done.load(); }));
  {
    std::lock_guard lock(walk->mutex);
    EXPECT_THAT(walk->visited, UnorderedElementsAre(a, b));
    for (bool m : walk->channel_matches) EXPECT_TRUE(m);
    EXPECT_EQ(walk->done_on, d);
    EXPECT_TRUE(walk->status.ok()) << walk->status;
  }
  EXPECT_EQ(CallOn(a, [ra] { return (*ra)->context<TestContext>().uses; }), 1);
  EXPECT_EQ(CallOn(b, [rb] { return (*rb)->context<TestContext>().uses; }), 1);
  EXPECT_EQ(log_.created_count(), 2u) << "the walk must not create channels";

  Put(a, ra);
  Put(b, rb);
  EXPECT_TRUE(WaitUntil([&] { return device_.channel_count() == 0; }));
  for (Thread* t : {a, b, c, d}) ExitThread(t);
}

TEST_P(IoChannelTest, ForEachChannelWithoutChannelsRunsDone) {
  Thread* d = CreateThread("d");
  auto done_on = std::make_shared<std::atomic<Thread*>>(nullptr);
  RunOn(d, [this, done_on] {
    ForEachChannel(
        device_, [](IoChannel&) { ADD_FAILURE() << "no channel to visit"; },
        [done_on](absl::Status status) {
          EXPECT_TRUE(status.ok());
          done_on->store(Thread::Current());
        });
  });
  ASSERT_TRUE(WaitUntil([&] { return done_on->load() != nullptr; }));
  EXPECT_EQ(done_on->load(), d);
  ExitThread(d);
}

// A device whose per-thread context holds a channel of the next device and a poller: what a
// virtual bdev's channel holding its base's channel looks like.
class ChainedDevice : public IoDevice {
 public:
  explicit ChainedDevice(IoDevice* next) : IoDevice("chained"), next_(next) {}

 protected:
  struct Context : ChannelContext {
    IoChannelRef next;
    PollerHandle poller;
  };
  std::unique_ptr<ChannelContext> CreateChannelContext() override {
    auto context = std::make_unique<Context>();
    if (next_ != nullptr) context->next = GetIoChannel(*next_);
    // A paused timed poller, as a module that holds nothing right now has.
    PollerOptions options;
    options.period = std::chrono::milliseconds(10);
    context->poller = PollerHandle(Thread::Current()->RegisterPoller(
        "chained", [] { return PollResult::kIdle; }, std::move(options)));
    context->poller->Pause();
    return context;
  }

 private:
  IoDevice* next_;
};

// Releasing the outermost channel releases the next one when its context goes, and so on: each
// step happens after a poll. The thread must get through all of them and exit, also when the
// reactor would rather sleep between steps (a reap that frees more is work).
TEST_P(IoChannelTest, NestedChannelsAreAllReleasedBeforeTheThreadExits) {
  constexpr int kDepth = 8;
  std::vector<std::unique_ptr<ChainedDevice>> chain;
  IoDevice* next = &device_;
  for (int i = 0; i < kDepth; ++i) {
    chain.push_back(std::make_unique<ChainedDevice>(next));
    chain.back()->RegisterIoDevice();
    next = chain.back().get();
  }
  Thread* thread = CreateThread("nested");
  auto ref = std::make_shared<IoChannelRef>();
  RunOn(thread, [&] { *ref = GetIoChannel(*chain.back()); });
  EXPECT_EQ(CallOn(thread, [&] { return thread->io_channel_count(); }), kDepth + 1u);
  Put(thread, ref);
  ExitThread(thread);  // fails the test if the thread keeps any channel
  EXPECT_EQ(log_.destroyed_count(), 1u);
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    std::atomic<bool> done{false};
    (*it)->UnregisterIoDevice([&done] { done = true; });
    EXPECT_TRUE(done.load());
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, IoChannelTest,
                         ::testing::Values(ReactorMode::kPoll, ReactorMode::kInterrupt),
                         [](const auto& info) { return std::string(ReactorModeName(info.param)); });

}  // namespace
}  // namespace pollux::testing
