// ForEachBdevChannel: fn runs on each channel's own thread, one after the other (the next only
// once the previous continued, even from a later message), with the module's channel; done
// runs on the calling thread; a failure passed to continue stops the walk and reaches done.
#include <atomic>
#include <mutex>
#include <set>
#include <string>

#include "bdev_test_env.h"
#include "pollux/reactor/thread.h"
#include "test_bdev.h"

namespace pollux::testing {
namespace {

class ForEachBdevChannelTest : public BdevTest {
 protected:
  void SetUp() override {
    BdevTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_NE(CallOn(app_thread(),
                     [] {
                       return RegisterTestBdev({.name = "T0", .block_size = 512, .block_count = 8});
                     }),
              nullptr);
  }
};

struct Walk {
  std::mutex mutex;
  std::set<uint64_t> threads;
  int in_fn = 0;  // fn calls not yet continued: never more than one
  int max_in_fn = 0;
  bool on_own_thread = true;
  std::atomic<bool> done{false};
  absl::Status status;
  bool done_on_caller = false;
};

TEST_F(ForEachBdevChannelTest, VisitsEveryChannelOnItsThreadOneAfterTheOther) {
  IoClient first(CreateThread("io0", 0), "T0");
  IoClient second(CreateThread("io1", 1), "T0");
  ASSERT_TRUE(first.ok() && second.ok());
  Walk walk;
  Thread* caller = app_thread();
  RunOn(caller, [&] {
    ForEachBdevChannel(
        *FindBdev("T0"),
        [&walk](IoChannel& channel, ChannelContext*, absl::AnyInvocable<void(absl::Status)> next) {
          {
            std::lock_guard lock(walk.mutex);
            walk.threads.insert(Thread::Current()->id());
            if (&channel.thread() != Thread::Current()) walk.on_own_thread = false;
            walk.max_in_fn = std::max(walk.max_in_fn, ++walk.in_fn);
          }
          // Continue from a later message: the walk must wait for it.
          bool sent = Thread::Current()->SendMessage([&walk, next = std::move(next)]() mutable {
            {
              std::lock_guard lock(walk.mutex);
              --walk.in_fn;
            }
            next(absl::OkStatus());
          });
          ASSERT_TRUE(sent);
        },
        [&walk, caller](absl::Status status) {
          walk.status = status;
          walk.done_on_caller = Thread::Current() == caller;
          walk.done = true;
        });
  });
  ASSERT_TRUE(WaitUntil([&] { return walk.done.load(); }));
  EXPECT_TRUE(walk.status.ok()) << walk.status;
  EXPECT_TRUE(walk.done_on_caller);
  EXPECT_TRUE(walk.on_own_thread);
  EXPECT_EQ(walk.max_in_fn, 1);
  EXPECT_EQ(walk.threads, (std::set<uint64_t>{first.thread()->id(), second.thread()->id()}));
}

TEST_F(ForEachBdevChannelTest, AFailureStopsTheWalk) {
  IoClient first(CreateThread("io0", 0), "T0");
  IoClient second(CreateThread("io1", 1), "T0");
  ASSERT_TRUE(first.ok() && second.ok());
  Walk walk;
  std::atomic<int> visits{0};
  RunOn(app_thread(), [&] {
    ForEachBdevChannel(
        *FindBdev("T0"),
        [&visits](IoChannel&, ChannelContext*, absl::AnyInvocable<void(absl::Status)> next) {
          ++visits;
          next(absl::AbortedError("stop here"));
        },
        [&walk](absl::Status status) {
          walk.status = status;
          walk.done = true;
        });
  });
  ASSERT_TRUE(WaitUntil([&] { return walk.done.load(); }));
  EXPECT_EQ(walk.status.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(visits.load(), 1);
}

TEST_F(ForEachBdevChannelTest, NoChannelRunsDone) {
  Walk walk;
  RunOn(app_thread(), [&] {
    ForEachBdevChannel(
        *FindBdev("T0"),
        [](IoChannel&, ChannelContext*, absl::AnyInvocable<void(absl::Status)> next) {
          next(absl::OkStatus());
        },
        [&walk](absl::Status status) {
          walk.status = status;
          walk.done = true;
        });
  });
  ASSERT_TRUE(WaitUntil([&] { return walk.done.load(); }));
  EXPECT_TRUE(walk.status.ok());
}

}  // namespace
}  // namespace pollux::testing
