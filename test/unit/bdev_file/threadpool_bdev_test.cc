// The threadpool bdev module beyond the conformance suite that every engine runs:
// bdev_threadpool_create / _delete, bdev_get_bdevs and save_config round trips (with
// bdev_threadpool_set_options); the shared pool starts with the first bdev and stops with the
// last; num_workers changes under I/O, the queue sizes only while the pool is unused;
// overlapping requests (random offsets, lengths, iovec splits) go through the workers and come
// back intact; in interrupt mode the I/O thread's reactor sleeps with requests at the workers
// and their completions wake it.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gmock/gmock.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "bdev_test_env.h"
#include "file_test_util.h"
#include "pollux/bdev_file/worker_pool.h"
#include "pollux/bdev_threadpool/bdev_threadpool.h"
#include "pollux/reactor/poller.h"

namespace pollux::testing {
namespace {

using rpc::Json;
using ::testing::HasSubstr;

// A file of random blocks in a temporary directory (file_test_util.h), removed with the fixture.
class ThreadpoolBdevTest : public FileBdevTest {
 protected:
  ThreadpoolBdevTest() : FileBdevTest("bdev_threadpool_create", 5) {}

  void TearDown() override {
    FileBdevTest::TearDown();
    // The pool options are process-wide: leave the defaults for the next test.
    EXPECT_TRUE(SetSharedWorkerPoolOptions(WorkerPoolOptions{}).ok());
  }

  absl::StatusOr<Json> Create(const std::string& name, Json extra = Json::object()) {
    return CreateFileBdev(name, std::move(extra));
  }
  Json PoolInfo() {
    auto info = CallRpc("bdev_threadpool_get_options", Json::object());
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? *info : Json::object();
  }
};

TEST_F(ThreadpoolBdevTest, CreateDeleteAndSaveConfigRoundTrip) {
  ASSERT_TRUE(
      CallRpc("bdev_threadpool_set_options", {{"num_workers", 3}, {"queue_size", 512}}).ok());
  const std::string uuid = "0f6c2b1e-4a7d-4e3b-8c2a-9d1e5f7a3b60";
  auto created = Create("TP0", {{"readonly", false}, {"uuid", uuid}});
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(*created, "TP0");

  auto bdevs = CallRpc("bdev_get_bdevs", {{"name", "TP0"}});
  ASSERT_TRUE(bdevs.ok()) << bdevs.status();
  ASSERT_EQ(bdevs->size(), 1u);
  const Json& info = (*bdevs)[0];
  EXPECT_EQ(info["product_name"], "Thread pool disk");
  EXPECT_EQ(info["block_size"], kBlock);
  EXPECT_EQ(info["num_blocks"], kBlocks);
  EXPECT_EQ(info["uuid"], uuid);
  EXPECT_EQ(info["driver_specific"]["threadpool"]["filename"], path_);
  EXPECT_EQ(info["driver_specific"]["threadpool"]["engine"], "threadpool");

  auto save = [&] {
    return CallOn(app_thread(), [] {
      Json config = Json::array();
      ThreadpoolModule::Get().WriteConfig(config);
      return config;
    });
  };
  Json config = save();
  ASSERT_EQ(config.size(), 2u);
  EXPECT_EQ(config[0]["method"], "bdev_threadpool_set_options");
  EXPECT_EQ(config[0]["params"]["num_workers"], 3);
  EXPECT_EQ(config[0]["params"]["queue_size"], 512);
  EXPECT_EQ(config[1]["method"], "bdev_threadpool_create");
  EXPECT_EQ(config[1]["params"]["name"], "TP0");
  EXPECT_EQ(config[1]["params"]["filename"], path_);
  EXPECT_EQ(config[1]["params"]["uuid"], uuid);

  auto deleted = CallRpc("bdev_threadpool_delete", {{"name", "TP0"}});
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, true);
  EXPECT_FALSE(CallRpc("bdev_threadpool_delete", {{"name", "TP0"}}).ok());

  // Replay from the defaults.
  ASSERT_TRUE(SetSharedWorkerPoolOptions(WorkerPoolOptions{}).ok());
  for (const Json& call : config) {
    auto replayed = CallRpc(call["method"].get<std::string>(), call["params"]);
    ASSERT_TRUE(replayed.ok()) << replayed.status();
  }
  EXPECT_EQ(save(), config);
  EXPECT_TRUE(CallRpc("bdev_threadpool_delete", {{"name", "TP0"}}).ok());
}

TEST_F(ThreadpoolBdevTest, ErrorsNameTheMethodAndTheFile) {
  auto missing = CallRpc("bdev_threadpool_create",
                         {{"name", "TP0"}, {"filename", path_ + ".missing"}});
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("bdev_threadpool_create"));
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr(path_ + ".missing"));
  EXPECT_FALSE(CallRpc("bdev_threadpool_create", {{"name", "TP0"}}).ok());
  // A failed create leaves no pool running.
  EXPECT_EQ(PoolInfo()["users"], 0);
  EXPECT_FALSE(PoolInfo().contains("requests"));

  ASSERT_TRUE(
      CallRpc("bdev_malloc_create", {{"name", "M0"}, {"num_blocks", 16}, {"block_size", 512}})
          .ok());
  auto foreign = CallRpc("bdev_threadpool_delete", {{"name", "M0"}});
  ASSERT_FALSE(foreign.ok());
  EXPECT_THAT(std::string(foreign.status().message()), HasSubstr("bdev_threadpool_delete"));
  EXPECT_TRUE(Delete("M0").ok());

  auto zero = CallRpc("bdev_threadpool_set_options", {{"num_workers", 0}});
  ASSERT_FALSE(zero.ok());
  EXPECT_THAT(std::string(zero.status().message()), HasSubstr("num_workers 0"));
  EXPECT_FALSE(CallRpc("bdev_threadpool_set_options", {{"workers", 2}}).ok());
  EXPECT_EQ(CallOn(app_thread(), [] { return ListBdevs().size(); }), 0u);
}

// Two bdevs share one pool; it runs from the first create to the last delete. num_workers
// changes while bdevs use it; the queue sizes do not.
TEST_F(ThreadpoolBdevTest, OnePoolForEveryBdev) {
  EXPECT_EQ(PoolInfo()["users"], 0);
  ASSERT_TRUE(Create("TP0").ok());
  ASSERT_TRUE(Create("TP1").ok());
  Json info = PoolInfo();
  EXPECT_EQ(info["users"], 2);
  EXPECT_TRUE(info.contains("requests"));

  ASSERT_TRUE(CallRpc("bdev_threadpool_set_options", {{"num_workers", 6}}).ok());
  EXPECT_EQ(PoolInfo()["num_workers"], 6);
  auto resized = CallRpc("bdev_threadpool_set_options", {{"channel_queue_size", 8}});
  ASSERT_FALSE(resized.ok());
  EXPECT_THAT(std::string(resized.status().message()), HasSubstr("in use by 2 bdevs"));

  Thread* io_thread = CreateThread("io", 1);
  {
    IoClient client(io_thread, "TP1");
    ASSERT_TRUE(client.ok());
    WriteAndReadBack(client, 3);
  }
  ExitThread(io_thread);
  EXPECT_TRUE(CallRpc("bdev_threadpool_delete", {{"name", "TP0"}}).ok());
  EXPECT_EQ(PoolInfo()["users"], 1);
  EXPECT_TRUE(CallRpc("bdev_threadpool_delete", {{"name", "TP1"}}).ok());
  EXPECT_EQ(PoolInfo()["users"], 0);
  EXPECT_FALSE(PoolInfo().contains("requests"));
  // Unused: the queue sizes may change now.
  EXPECT_TRUE(CallRpc("bdev_threadpool_set_options", {{"channel_queue_size", 8}}).ok());
}

// Overlapping requests go to the workers (the pool's request count grows by about as many)
// and the data survives, also with a per-thread limit far below the depth (the rest waits in
// the channel) and while num_workers changes between batches.
TEST_F(ThreadpoolBdevTest, OverlappingRequestsGoThroughThePool) {
  ASSERT_TRUE(CallRpc("bdev_threadpool_set_options",
                      {{"num_workers", 2}, {"channel_queue_size", 4}, {"queue_size", 16}})
                  .ok());
  ASSERT_TRUE(Create("TP0").ok());
  Thread* io_thread = CreateThread("io", 1);
  {
    IoClient client(io_thread, "TP0");
    ASSERT_TRUE(client.ok());
    uint64_t before = PoolInfo()["requests"].get<uint64_t>();
    WriteAndReadBack(client, 17);
    // 128 requests; a few may have run inline (a lone first request of a batch).
    EXPECT_GE(PoolInfo()["requests"].get<uint64_t>(), before + 100);
    ASSERT_TRUE(CallRpc("bdev_threadpool_set_options", {{"num_workers", 5}}).ok());
    WriteAndReadBack(client, 18);
    ASSERT_TRUE(CallRpc("bdev_threadpool_set_options", {{"num_workers", 1}}).ok());
    WriteAndReadBack(client, 19);

    // FLUSH and WRITE_ZEROES (and UNMAP where the file system has it) through the workers.
    bool unmap = CallOn(app_thread(), [] { return FindBdev("TP0")->Supports(IoType::kUnmap); });
    bool zeroes =
        CallOn(app_thread(), [] { return FindBdev("TP0")->Supports(IoType::kWriteZeroes); });
    Batch batch;
    RunBatch(client, 6, batch, [&](int i, BdevIoCallback cb, void* arg) {
      uint64_t offset = 100 + 10 * i;
      if (i % 3 == 1 && zeroes) {
        client.desc().WriteZeroes(client.channel(), offset, 4, cb, arg);
      } else if (i % 3 == 2 && unmap) {
        client.desc().Unmap(client.channel(), offset, 4, cb, arg);
      } else {
        client.desc().Flush(client.channel(), 0, kBlocks, cb, arg);
      }
    });
    EXPECT_EQ(batch.succeeded.load(), 6) << ::testing::PrintToString(batch.errors);
    auto* buf = static_cast<uint8_t*>(std::aligned_alloc(kBlock, 4 * kBlock));
    for (int i = 0; i < 6; ++i) {
      if (!((i % 3 == 1 && zeroes) || (i % 3 == 2 && unmap))) continue;
      ASSERT_EQ(client.Read(buf, 100 + 10 * i, 4), BdevIoStatus::kSuccess);
      for (uint32_t b = 0; b < 4 * kBlock; ++b) ASSERT_EQ(buf[b], 0) << "request " << i;
    }
    std::free(buf);
  }
  ExitThread(io_thread);
  EXPECT_TRUE(CallRpc("bdev_threadpool_delete", {{"name", "TP0"}}).ok());
}

// bdev_file_create with engine "threadpool" makes one of ours, saved as bdev_threadpool_create.
TEST_F(ThreadpoolBdevTest, BdevFileCreateWithThisEngine) {
  auto created = CallRpc("bdev_file_create",
                         {{"name", "F0"}, {"filename", path_}, {"engine", "threadpool"}});
  ASSERT_TRUE(created.ok()) << created.status();
  auto bdevs = CallRpc("bdev_get_bdevs", {{"name", "F0"}});
  ASSERT_TRUE(bdevs.ok());
  EXPECT_EQ((*bdevs)[0]["driver_specific"]["threadpool"]["engine"], "threadpool");
  EXPECT_EQ(PoolInfo()["users"], 1);
  EXPECT_TRUE(CallRpc("bdev_threadpool_delete", {{"name", "F0"}}).ok());
}

// Interrupt mode: the I/O thread's reactor sleeps while requests are at the workers (the
// channel's poller arms and never holds the reactor awake) and the workers' eventfd writes
// wake it: every request completes, many times over.
class ThreadpoolInterruptTest : public ThreadpoolBdevTest {
 protected:
  ReactorRuntimeOptions RuntimeOptions() const override { return InterruptModeOptions(); }
};

TEST_F(ThreadpoolInterruptTest, CompletionsWakeASleepingReactor) {
  ASSERT_TRUE(Create("TP0").ok());
  Thread* io_thread = CreateThread("io", 1);
  {
    IoClient client(io_thread, "TP0");
    ASSERT_TRUE(client.ok());
    auto* memory = static_cast<uint8_t*>(std::aligned_alloc(kBlock, 32 * kBlock));
    uint64_t sleeps_before = Info(1).sleeps;
    for (int round = 0; round < 20; ++round) {
      Batch batch;
      RunBatch(client, 32, batch, [&](int i, BdevIoCallback cb, void* arg) {
        client.desc().Read(client.channel(), memory + i * kBlock,
                           (round * 89 + i * 67) % kBlocks, 1, cb, arg);
      });
      ASSERT_EQ(batch.succeeded.load(), 32);
      for (int i = 0; i < 32; ++i) {
        uint64_t block = (round * 89 + i * 67) % kBlocks;
        ASSERT_EQ(std::memcmp(memory + i * kBlock, shadow_.data() + block * kBlock, kBlock), 0);
      }
    }
    EXPECT_GT(Info(1).sleeps, sleeps_before);
    EXPECT_TRUE(CallOn(io_thread, [&] { return io_thread->PollersHoldingReactorAwake(); }).empty());
    std::free(memory);
  }
  ExitThread(io_thread);
  EXPECT_TRUE(CallRpc("bdev_threadpool_delete", {{"name", "TP0"}}).ok());
}

}  // namespace
}  // namespace pollux::testing
