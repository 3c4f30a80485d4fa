// BdevDesc::Abort: an abort of nothing fails with ENOENT; the layer aborts what it still holds
// (a request waiting for a BdevIo, an I/O in the kNoMemory retry queue, a split parent's
// children not yet cut); the delay module aborts its held completions, also through a
// passthru above it; a module without Abort makes the abort fail with kNotSupported. Every
// wait is a condition polled, never a time.
#include <atomic>
#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "bdev_test_env.h"
#include "test_bdev.h"

namespace pollux::testing {
namespace {

using rpc::Json;

using Pending = AwaitedIo;

class BdevAbortTest : public BdevTest {
 protected:
  void Rpc(const std::string& method, const Json& params) {
    auto result = CallRpc(method, params);
    ASSERT_TRUE(result.ok()) << method << ": " << result.status();
  }
  void CreateDelayOverMalloc() {
    Rpc("bdev_malloc_create", {{"name", "Malloc0"}, {"num_blocks", 64}, {"block_size", 512}});
    // A minute: nothing completes by itself while a test waits.
    Rpc("bdev_delay_create", {{"base_bdev_name", "Malloc0"},
                              {"name", "Delay0"},
                              {"avg_read_latency", 60'000'000},
                              {"p99_read_latency", 60'000'000},
                              {"avg_write_latency", 60'000'000},
                              {"p99_write_latency", 60'000'000}});
  }
  void StartRead(IoClient& client, void* buf, uint64_t offset, uint64_t blocks, Pending& io) {
    RunOn(client.thread(), [&client, buf, offset, blocks, &io] {
      client.desc().Read(client.channel(), buf, offset, blocks, &Pending::Callback, &io);
    });
  }
  void StartAbort(IoClient& client, void* target, Pending& abort) {
    RunOn(client.thread(), [&client, target, &abort] {
      client.desc().Abort(client.channel(), target, &Pending::Callback, &abort);
    });
  }
  // Registers TestBdev "T0" with `properties` (name set here) and opens a client on a thread
  // of the second reactor.
  TestBdev* RegisterT0(BdevProperties properties) {
    properties.name = "T0";
    TestBdev* bdev = CallOn(app_thread(), [&] { return RegisterTestBdev(properties); });
    if (bdev != nullptr) client_ = std::make_unique<IoClient>(CreateThread("io", 1), "T0");
    return bdev != nullptr && client_->ok() ? bdev : nullptr;
  }
  uint64_t ReadOps(const std::string& name) {
    std::atomic<bool> done{false};
    uint64_t ops = 0;
    RunOn(app_thread(), [&] {
      FindBdev(name)->GetIoStats([&](const BdevIoStats& stats) {
        ops = stats.of(IoType::kRead).ops;
        done = true;
      });
    });
    EXPECT_TRUE(WaitUntil([&] { return done.load(); }));
    return ops;
  }

  void TearDown() override {
    client_.reset();  // closed before the layer finishes
    BdevTest::TearDown();
  }

  std::unique_ptr<IoClient> client_;
};

TEST_F(BdevAbortTest, AbortOfNothingFailsWithEnoent) {
  TestBdev* bdev = RegisterT0({.block_size = 512, .block_count = 8});
  ASSERT_NE(bdev, nullptr);
  IoClient& client = *client_;
  int unknown = 0;
  EXPECT_EQ(client.Run([&](BdevDesc& d, IoChannel& c, BdevIoCallback cb, void* arg) {
    d.Abort(c, &unknown, cb, arg);
  }),
            BdevIoStatus::kFailed);
  EXPECT_EQ(client.last_error_number(), ENOENT);
}

TEST_F(BdevAbortTest, DelayAbortsItsHeldCompletionBeforeTheAbortCompletes) {
  CreateDelayOverMalloc();
  IoClient client(CreateThread("io", 1), "Delay0");
  ASSERT_TRUE(client.ok());
  std::vector<char> buf(512);
  std::atomic<int> order{0};
  Pending read, abort;
  read.order = abort.order = &order;
  StartRead(client, buf.data(), 0, 1, read);
  // Malloc0 counted the read: its completion is held by the delay bdev now.
  ASSERT_TRUE(WaitUntil([&] { return ReadOps("Malloc0") == 1; }));
  EXPECT_FALSE(read.done.load());
  StartAbort(client, &read, abort);
  ASSERT_TRUE(WaitUntil([&] { return read.done.load() && abort.done.load(); }));
  EXPECT_EQ(read.status.load(), BdevIoStatus::kAborted);
  EXPECT_EQ(abort.status.load(), BdevIoStatus::kSuccess);
  EXPECT_LT(read.position, abort.position);
  // Aborted once, it is gone: a second abort finds nothing.
  Pending again;
  StartAbort(client, &read, again);
  ASSERT_TRUE(WaitUntil([&] { return again.done.load(); }));
  EXPECT_EQ(again.status.load(), BdevIoStatus::kFailed);
  EXPECT_EQ(again.error_number.load(), ENOENT);
}

TEST_F(BdevAbortTest, AbortsEveryIoWithTheCbArgAndPassesThroughPassthru) {
  CreateDelayOverMalloc();
  Rpc("bdev_passthru_create", {{"base_bdev_name", "Delay0"}, {"name", "Pass0"}});
  IoClient client(CreateThread("io", 1), "Pass0");
  ASSERT_TRUE(client.ok());
  std::vector<char> buf(4 * 512);
  // Three reads under one cb_arg count (one Pending each would need distinct cb_args).
  struct Group {
    std::atomic<int> aborted{0};
    std::atomic<int> done{0};
    static void Callback(void* arg, BdevIoStatus status, int) {
      auto* g = static_cast<Group*>(arg);
      if (status == BdevIoStatus::kAborted) ++g->aborted;
      ++g->done;
    }
  } group;
  Pending other;
  RunOn(client.thread(), [&] {
    for (int i = 0; i < 3; ++i) {
      client.desc().Read(client.channel(), buf.data() + i * 512, i, 1, &Group::Callback, &group);
    }
  });
  StartRead(client, buf.data() + 3 * 512, 3, 1, other);
  ASSERT_TRUE(WaitUntil([&] { return ReadOps("Malloc0") == 4; }));
  Pending abort;
  StartAbort(client, &group, abort);
  ASSERT_TRUE(WaitUntil([&] { return abort.done.load(); }));
  EXPECT_EQ(abort.status.load(), BdevIoStatus::kSuccess);
  ASSERT_TRUE(WaitUntil([&] { return group.done.load() == 3; }));
  EXPECT_EQ(group.aborted.load(), 3);
  // The other cb_arg is untouched; abort it too so that the test ends.
  EXPECT_FALSE(other.done.load());
  Pending abort_other;
  StartAbort(client, &other, abort_other);
  ASSERT_TRUE(WaitUntil([&] { return other.done.load() && abort_other.done.load(); }));
  EXPECT_EQ(other.status.load(), BdevIoStatus::kAborted);
}

TEST_F(BdevAbortTest, ErrorModuleAbortsItsPendingIoAndPassesTheRestDown) {
  CreateDelayOverMalloc();
  Rpc("bdev_error_create", {{"base_name", "Delay0"}});
  Rpc("bdev_error_inject_error",
      {{"name", "EE_Delay0"}, {"io_type", "read"}, {"error_type", "pending"}, {"num", 1}});
  IoClient client(CreateThread("io", 1), "EE_Delay0");
  ASSERT_TRUE(client.ok());
  std::vector<char> buf(2 * 512);
  Pending held, at_base;
  StartRead(client, buf.data(), 0, 1, held);           // held by the error bdev
  StartRead(client, buf.data() + 512, 1, 1, at_base);  // held below, by the delay bdev
  ASSERT_TRUE(WaitUntil([&] { return ReadOps("Malloc0") == 1; }));
  for (Pending* io : {&held, &at_base}) {
    Pending abort;
    StartAbort(client, io, abort);
    ASSERT_TRUE(WaitUntil([&] { return io->done.load() && abort.done.load(); }));
    EXPECT_EQ(io->status.load(), BdevIoStatus::kAborted);
    EXPECT_EQ(abort.status.load(), BdevIoStatus::kSuccess);
  }
}

TEST_F(BdevAbortTest, ModuleWithoutAbortFailsItWithNotSupported) {
  TestBdev* bdev = RegisterT0({.block_size = 512, .block_count = 8});
  ASSERT_NE(bdev, nullptr);
  IoClient& client = *client_;
  bdev->hold = true;
  std::vector<char> buf(512);
  Pending read, abort;
  StartRead(client, buf.data(), 0, 1, read);
  ASSERT_TRUE(WaitUntil([&] { return bdev->held_count() == 1; }));
  StartAbort(client, &read, abort);
  ASSERT_TRUE(WaitUntil([&] { return abort.done.load(); }));
  EXPECT_EQ(abort.status.load(), BdevIoStatus::kNotSupported);
  EXPECT_FALSE(read.done.load());
  RunOn(client.thread(), [&] { bdev->Release(); });
  ASSERT_TRUE(WaitUntil([&] { return read.done.load(); }));
  EXPECT_EQ(read.status.load(), BdevIoStatus::kSuccess);
}

TEST_F(BdevAbortTest, LayerAbortsAnIoInTheNoMemoryRetryQueue) {
  TestBdev* bdev = RegisterT0({.block_size = 512, .block_count = 8});
  ASSERT_NE(bdev, nullptr);
  IoClient& client = *client_;
  // Refused on every try: between tries it sits in the channel's retry queue.
  bdev->fail_status = BdevIoStatus::kNoMemory;
  bdev->fail_next = 1 << 30;
  std::vector<char> buf(512);
  Pending read, abort;
  StartRead(client, buf.data(), 0, 1, read);
  ASSERT_TRUE(WaitUntil([&] { return bdev->seen().size() >= 2; }));
  StartAbort(client, &read, abort);
  ASSERT_TRUE(WaitUntil([&] { return read.done.load() && abort.done.load(); }));
  EXPECT_EQ(read.status.load(), BdevIoStatus::kAborted);
  EXPECT_EQ(abort.status.load(), BdevIoStatus::kSuccess);
  bdev->fail_next = 0;
}

TEST_F(BdevAbortTest, SplitParentStopsCuttingAndCompletesAborted) {
  TestBdev* bdev = RegisterT0({.block_size = 512, .block_count = 64, .max_transfer_blocks = 1});
  ASSERT_NE(bdev, nullptr);
  IoClient& client = *client_;
  bdev->hold = true;
  std::vector<char> buf(64 * 512);
  Pending read, abort;
  StartRead(client, buf.data(), 0, 64, read);
  // The layer keeps 32 children out at once.
  ASSERT_TRUE(WaitUntil([&] { return bdev->held_count() == 32; }));
  StartAbort(client, &read, abort);
  // The children are in a module that cannot abort: the abort says so...
  ASSERT_TRUE(WaitUntil([&] { return abort.done.load(); }));
  EXPECT_EQ(abort.status.load(), BdevIoStatus::kNotSupported);
  // ...but no child is cut any more, and the parent ends aborted once those out are back.
  RunOn(client.thread(), [&] { bdev->Release(); });
  ASSERT_TRUE(WaitUntil([&] { return read.done.load(); }));
  EXPECT_EQ(read.status.load(), BdevIoStatus::kAborted);
  EXPECT_EQ(bdev->seen().size(), 32u);
}

class BdevAbortSmallPoolTest : public BdevAbortTest {
 protected:
  static constexpr int kHeld = 64;  // the pool's size

  BdevLayerOptions LayerOptions() const override {
    return {.bdev_io_pool_size = kHeld, .bdev_io_cache_size = 16};
  }
  // Has `bdev` hold every object of the pool (reads from `client`, in held_), then submits a
  // read from `waiter` on the same thread, which waits for a BdevIo.
  void ExhaustPoolThenRead(IoClient& client, TestBdev& bdev, IoClient& waiter, Pending& waiting) {
    bdev.hold = true;
    RunOn(client.thread(), [&] {
      for (Pending& p : held_)
        client.desc().Read(client.channel(), buf_.data(), 0, 1, &Pending::Callback, &p);
      waiter.desc().Read(waiter.channel(), buf_.data(), 0, 1, &Pending::Callback, &waiting);
    });
    ASSERT_TRUE(WaitUntil([&] { return bdev.held_count() == kHeld; }));
    EXPECT_FALSE(waiting.done.load());
  }

  std::vector<char> buf_ = std::vector<char>(512);
  std::vector<Pending> held_ = std::vector<Pending>(kHeld);
};

TEST_F(BdevAbortSmallPoolTest, LayerAbortsARequestWaitingForABdevIo) {
  TestBdev* bdev = RegisterT0({.block_size = 512, .block_count = 8});
  ASSERT_NE(bdev, nullptr);
  IoClient& client = *client_;
  // Every object of the pool held by the module, and one more request.
  Pending waiting;
  ASSERT_NO_FATAL_FAILURE(ExhaustPoolThenRead(client, *bdev, client, waiting));
  // The abort needs a BdevIo of its own: the module gives every object back and, in the same
  // message (before the thread's poller hands the waiting request one), the abort is made.
  Pending abort;
  std::atomic<int> order{0};
  waiting.order = abort.order = &order;
  RunOn(client.thread(), [&] {
    bdev->Release();
    client.desc().Abort(client.channel(), &waiting, &Pending::Callback, &abort);
  });
  ASSERT_TRUE(WaitUntil([&] { return waiting.done.load() && abort.done.load(); }));
  EXPECT_EQ(waiting.status.load(), BdevIoStatus::kAborted);
  EXPECT_EQ(abort.status.load(), BdevIoStatus::kSuccess);
  EXPECT_LT(waiting.position, abort.position);
  for (Pending& p : held_) EXPECT_EQ(p.status.load(), BdevIoStatus::kSuccess);
  // It never reached the module.
  EXPECT_EQ(bdev->seen().size(), static_cast<size_t>(kHeld));
}

TEST_F(BdevAbortSmallPoolTest, ChannelGoneWithARequestWaitingForABdevIoCompletesItAborted) {
  TestBdev* bdev = RegisterT0({.block_size = 512, .block_count = 8});
  ASSERT_NE(bdev, nullptr);
  IoClient& client = *client_;
  // A second bdev opened on the same thread: its own channel, the same thread's waiting queue.
  ASSERT_NE(CallOn(app_thread(),
                   [] {
                     return RegisterTestBdev({.name = "T1", .block_size = 512, .block_count = 8});
                   }),
            nullptr);
  auto other = std::make_unique<IoClient>(client.thread(), "T1");
  ASSERT_TRUE(other->ok());
  Pending waiting;
  ASSERT_NO_FATAL_FAILURE(ExhaustPoolThenRead(client, *bdev, *other, waiting));
  // The caller drops its channel with the request outstanding (a bug the layer logs): the
  // request ends with its callback instead of vanishing or being submitted on a freed channel.
  other.reset();
  ASSERT_TRUE(WaitUntil([&] { return waiting.done.load(); }));
  EXPECT_EQ(waiting.status.load(), BdevIoStatus::kAborted);
  RunOn(client.thread(), [&] { bdev->Release(); });
  for (Pending& p : held_) {
    ASSERT_TRUE(WaitUntil([&] { return p.done.load(); }));
    EXPECT_EQ(p.status.load(), BdevIoStatus::kSuccess);
  }
}

}  // namespace
}  // namespace pollux::testing
