// The aio bdev module beyond the conformance suite that every engine runs: bdev_aio_create with
// SPDK's parameters, bdev_aio_delete, bdev_get_bdevs and save_config round trips; requests that
// overlap go through the AIO queue (its poller does the work) and come back intact; FLUSH,
// UNMAP and WRITE_ZEROES through the worker pool; a read past a truncated end fails with EIO on
// the asynchronous path too; in interrupt mode the I/O thread's reactor sleeps with aio I/O in
// flight and the kernel's eventfd wakes it.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gmock/gmock.h>

#include <algorithm>
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
#include "pollux/bdev_aio/bdev_aio.h"
#include "pollux/bdev_malloc/bdev_malloc.h"
#include "pollux/reactor/poller.h"

namespace pollux::testing {
namespace {

using rpc::Json;
using ::testing::HasSubstr;

// A file of random blocks in a temporary directory (file_test_util.h), removed with the fixture.
class AioBdevTest : public FileBdevTest {
 protected:
  AioBdevTest() : FileBdevTest("bdev_aio_create", 7) {}

  absl::StatusOr<Json> CreateAio(const std::string& name, Json extra = Json::object()) {
    return CreateFileBdev(name, std::move(extra));
  }

  // The count of busy runs of the aio poller of bdev `name` on `thread`.
  uint64_t PollerBusyCount(Thread* thread, const std::string& name) {
    return CallOn(thread, [&] {
      uint64_t busy = 0;
      thread->ForEachPoller([&](const Poller& poller) {
        if (poller.name() == "bdev_aio/" + name) busy += poller.busy_count();
      });
      return busy;
    });
  }
};

TEST_F(AioBdevTest, CreateTakesSpdkParametersAndSaveConfigRoundTrips) {
  const std::string uuid = "5b1e8a52-3c0f-4d2e-9a41-7c6b0e2f1d3a";
  auto created = CreateAio("AIO0", {{"readonly", false}, {"fallocate", false}, {"uuid", uuid}});
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(*created, "AIO0");

  auto bdevs = CallRpc("bdev_get_bdevs", {{"name", "AIO0"}});
  ASSERT_TRUE(bdevs.ok()) << bdevs.status();
  ASSERT_EQ(bdevs->size(), 1u);
  const Json& info = (*bdevs)[0];
  EXPECT_EQ(info["product_name"], "AIO disk");
  EXPECT_EQ(info["block_size"], kBlock);
  EXPECT_EQ(info["num_blocks"], kBlocks);
  EXPECT_EQ(info["uuid"], uuid);
  const Json& aio = info["driver_specific"]["aio"];
  EXPECT_EQ(aio["filename"], path_);
  EXPECT_EQ(aio["readonly"], false);
  EXPECT_EQ(aio["engine"], "aio");

  Json config = CallOn(app_thread(), [] {
    Json config = Json::array();
    AioModule::Get().WriteConfig(config);
    return config;
  });
  ASSERT_EQ(config.size(), 1u);
  EXPECT_EQ(config[0]["method"], "bdev_aio_create");
  EXPECT_EQ(config[0]["params"]["name"], "AIO0");
  EXPECT_EQ(config[0]["params"]["filename"], path_);
  EXPECT_EQ(config[0]["params"]["uuid"], uuid);

  auto deleted = CallRpc("bdev_aio_delete", {{"name", "AIO0"}});
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, true);
  EXPECT_FALSE(CallRpc("bdev_aio_delete", {{"name", "AIO0"}}).ok());

  auto replayed = CallRpc(config[0]["method"].get<std::string>(), config[0]["params"]);
  ASSERT_TRUE(replayed.ok()) << replayed.status();
  Json again = CallOn(app_thread(), [] {
    Json config = Json::array();
    AioModule::Get().WriteConfig(config);
    return config;
  });
  EXPECT_EQ(again, config);
  EXPECT_TRUE(CallRpc("bdev_aio_delete", {{"name", "AIO0"}}).ok());
}

TEST_F(AioBdevTest, ErrorsNameTheMethodAndTheFile) {
  auto missing = CallRpc("bdev_aio_create",
                         {{"name", "AIO0"}, {"filename", path_ + ".missing"}});
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("bdev_aio_create"));
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr(path_ + ".missing"));
  auto no_file = CallRpc("bdev_aio_create", {{"name", "AIO0"}});
  EXPECT_FALSE(no_file.ok());
  // bdev_aio_delete deletes aio bdevs only.
  ASSERT_TRUE(
      CallRpc("bdev_malloc_create", {{"name", "M0"}, {"num_blocks", 16}, {"block_size", 512}})
          .ok());
  auto foreign = CallRpc("bdev_aio_delete", {{"name", "M0"}});
  ASSERT_FALSE(foreign.ok());
  EXPECT_THAT(std::string(foreign.status().message()), HasSubstr("bdev_aio_delete"));
  EXPECT_TRUE(Delete("M0").ok());
  // Nothing was left behind by the failed creates.
  EXPECT_EQ(CallOn(app_thread(), [] { return ListBdevs().size(); }), 0u);
}

// Overlapping requests take the asynchronous path (the aio poller submits and reaps them), with
// random offsets, lengths and iovec splits, and the data matches a shadow copy.
TEST_F(AioBdevTest, OverlappingRequestsGoThroughTheAioQueue) {
  ASSERT_TRUE(CreateAio("AIO0").ok());
  Thread* io_thread = CreateThread("io", 1);
  {
    IoClient client(io_thread, "AIO0");
    ASSERT_TRUE(client.ok());
    uint64_t busy_before = PollerBusyCount(io_thread, "AIO0");
    WriteAndReadBack(client, 11);
    // The asynchronous path did the work: the aio poller submitted and reaped.
    EXPECT_GT(PollerBusyCount(io_thread, "AIO0"), busy_before);
    // And the file holds it: read it with plain buffered reads.
    EXPECT_TRUE(ReadWholeFile(path_) == shadow_);
  }
  ExitThread(io_thread);
  EXPECT_TRUE(Delete("AIO0").ok());
}

// FLUSH, UNMAP and WRITE_ZEROES go to the worker pool when they overlap other requests.
TEST_F(AioBdevTest, FlushUnmapAndWriteZeroesThroughTheWorkerPool) {
  ASSERT_TRUE(CreateAio("AIO0").ok());
  Thread* io_thread = CreateThread("io", 1);
  {
    IoClient client(io_thread, "AIO0");
    ASSERT_TRUE(client.ok());
    bool unmap = CallOn(app_thread(), [] { return FindBdev("AIO0")->Supports(IoType::kUnmap); });
    Batch batch;
    RunBatch(client, 8, batch, [&](int i, BdevIoCallback cb, void* arg) {
      switch (i % 4) {
        case 0:
          client.desc().Flush(client.channel(), 0, kBlocks, cb, arg);
          break;
        case 1:
          client.desc().WriteZeroes(client.channel(), 100 + 10 * i, 4, cb, arg);
          break;
        case 2:
          if (unmap) {
            client.desc().Unmap(client.channel(), 100 + 10 * i, 4, cb, arg);
          } else {
            client.desc().Flush(client.channel(), 0, kBlocks, cb, arg);
          }
          break;
        default:
          client.desc().Flush(client.channel(), 0, kBlocks, cb, arg);
          break;
      }
    });
    EXPECT_EQ(batch.succeeded.load(), 8) << ::testing::PrintToString(batch.errors);
    // Zeroed (or unmapped: a hole reads as zeroes) ranges read back as zeroes.
    auto* buf = static_cast<uint8_t*>(std::aligned_alloc(kBlock, 4 * kBlock));
    for (int i : {1, 5}) {
      ASSERT_EQ(client.Read(buf, 100 + 10 * i, 4), BdevIoStatus::kSuccess);
      EXPECT_TRUE(std::all_of(buf, buf + 4 * kBlock, [](uint8_t b) { return b == 0; }));
    }
    if (unmap) {
      for (int i : {2, 6}) {
        ASSERT_EQ(client.Read(buf, 100 + 10 * i, 4), BdevIoStatus::kSuccess);
        EXPECT_TRUE(std::all_of(buf, buf + 4 * kBlock, [](uint8_t b) { return b == 0; }));
      }
    }
    std::free(buf);
  }
  ExitThread(io_thread);
  EXPECT_TRUE(Delete("AIO0").ok());
}

// The file shrinks under the bdev: overlapping reads past the new end (the asynchronous path:
// the kernel returns a short read) fail with EIO; reads before it still work.
TEST_F(AioBdevTest, ReadsPastATruncatedEndFailWithEio) {
  ASSERT_TRUE(CreateAio("AIO0").ok());
  ASSERT_EQ(truncate(path_.c_str(), static_cast<off_t>(kBlocks / 2 * kBlock)), 0);
  Thread* io_thread = CreateThread("io", 1);
  {
    IoClient client(io_thread, "AIO0");
    ASSERT_TRUE(client.ok());
    auto* memory = static_cast<uint8_t*>(std::aligned_alloc(kBlock, 8 * kBlock));
    Batch past;
    RunBatch(client, 8, past, [&](int i, BdevIoCallback cb, void* arg) {
      client.desc().Read(client.channel(), memory + i * kBlock, kBlocks - 1 - i, 1, cb, arg);
    });
    EXPECT_EQ(past.succeeded.load(), 0);
    ASSERT_EQ(past.errors.size(), 8u);
    for (int error : past.errors) EXPECT_EQ(error, EIO);
    Batch before;
    RunBatch(client, 8, before, [&](int i, BdevIoCallback cb, void* arg) {
      client.desc().Read(client.channel(), memory + i * kBlock, i, 1, cb, arg);
    });
    EXPECT_EQ(before.succeeded.load(), 8);
    for (int i = 0; i < 8; ++i) {
      EXPECT_EQ(std::memcmp(memory + i * kBlock, shadow_.data() + i * kBlock, kBlock), 0);
    }
    std::free(memory);
  }
  ExitThread(io_thread);
  EXPECT_TRUE(Delete("AIO0").ok());
}

// Interrupt mode: the I/O thread's reactor may sleep with aio I/O in flight (the aio poller has
// a wake fd and an arm hook, so it never holds the reactor awake) and the kernel's completion
// wakes it through the eventfd: every request completes.
class AioInterruptTest : public AioBdevTest {
 protected:
  ReactorRuntimeOptions RuntimeOptions() const override { return InterruptModeOptions(); }
};

TEST_F(AioInterruptTest, CompletionsWakeASleepingReactor) {
  ASSERT_TRUE(CreateAio("AIO0").ok());
  Thread* io_thread = CreateThread("io", 1);
  {
    IoClient client(io_thread, "AIO0");
    ASSERT_TRUE(client.ok());
    auto* memory = static_cast<uint8_t*>(std::aligned_alloc(kBlock, 32 * kBlock));
    uint64_t sleeps_before = Info(1).sleeps;
    for (int round = 0; round < 20; ++round) {
      Batch batch;
      RunBatch(client, 32, batch, [&](int i, BdevIoCallback cb, void* arg) {
        client.desc().Read(client.channel(), memory + i * kBlock, (round * 97 + i * 61) % kBlocks,
                           1, cb, arg);
      });
      ASSERT_EQ(batch.succeeded.load(), 32);
      for (int i = 0; i < 32; ++i) {
        uint64_t block = (round * 97 + i * 61) % kBlocks;
        ASSERT_EQ(std::memcmp(memory + i * kBlock, shadow_.data() + block * kBlock, kBlock), 0);
      }
    }
    EXPECT_GT(Info(1).sleeps, sleeps_before);
    EXPECT_TRUE(CallOn(io_thread, [&] { return io_thread->PollersHoldingReactorAwake(); }).empty());
    std::free(memory);
  }
  ExitThread(io_thread);
  EXPECT_TRUE(Delete("AIO0").ok());
}

}  // namespace
}  // namespace pollux::testing
