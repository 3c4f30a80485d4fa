// The delay bdev module: latencies validated (p99 at least the average, at most an hour), reads
// and writes take at least their latency (lower bounds only, measured with the same TSC the
// module uses, so they hold by construction), other types pass, bdev_delay_update_latency,
// reset aborts held completions, delete and examine, save_config, and in interrupt mode the
// held completions do not keep the reactor awake.
#include <gmock/gmock.h>
#include <rte_cycles.h>

#include <atomic>
#include <string>
#include <vector>

#include "bdev_test_env.h"
#include "pollux/bdev_delay/bdev_delay.h"
#include "pollux/rpc/method_registry.h"

namespace pollux::testing {
namespace {

using rpc::Json;
using ::testing::HasSubstr;

struct PendingIo {
  std::atomic<bool> done{false};
  std::atomic<BdevIoStatus> status{BdevIoStatus::kSuccess};
  static void Callback(void* arg, BdevIoStatus status, int /*error_number*/) {
    auto* io = static_cast<PendingIo*>(arg);
    io->status = status;
    io->done.store(true, std::memory_order_release);
  }
};

// TSC ticks in `us` microseconds, rounded down: the module rounds up, so a completion it
// releases is never earlier than this after its base completed.
uint64_t Ticks(uint64_t us) { return us * rte_get_tsc_hz() / 1'000'000; }

Json DelayParams(const std::string& base, const std::string& name, uint64_t avg_read,
                 uint64_t p99_read, uint64_t avg_write, uint64_t p99_write) {
  return {{"base_bdev_name", base},         {"name", name},
          {"avg_read_latency", avg_read},   {"p99_read_latency", p99_read},
          {"avg_write_latency", avg_write}, {"p99_write_latency", p99_write}};
}

class DelayTest : public BdevTest {
 protected:
  void CreateMalloc(const std::string& name) {
    auto created =
        CallRpc("bdev_malloc_create", {{"name", name}, {"num_blocks", 64}, {"block_size", 512}});
    ASSERT_TRUE(created.ok()) << created.status();
  }
  void CreateDelay(const Json& params) {
    auto created = CallRpc("bdev_delay_create", params);
    ASSERT_TRUE(created.ok()) << created.status();
    EXPECT_EQ(*created, params["name"]);
  }
  absl::StatusOr<Json> Update(const std::string& name, const std::string& type, uint64_t us) {
    return CallRpc("bdev_delay_update_latency",
                   {{"delay_bdev_name", name}, {"latency_type", type}, {"latency_us", us}});
  }
  Json ModuleConfig() {
    return CallOn(app_thread(), [] {
      Json config = Json::array();
      DelayModule::Get().WriteConfig(config);
      return config;
    });
  }
  Json Info(const std::string& name) {
    return CallOn(app_thread(), [&] {
      Json driver_specific = Json::object();
      FindBdev(name)->DumpInfo(driver_specific);
      return driver_specific;
    });
  }
  // Runs `io` (a blocking IoClient call) and returns the TSC ticks it took.
  template <typename Fn>
  uint64_t Timed(Fn io) {
    uint64_t start = rte_rdtsc();
    io();
    return rte_rdtsc() - start;
  }
  void StartRead(IoClient& client, void* buf, PendingIo& io) {
    RunOn(client.thread(), [&client, buf, &io] {
      client.desc().Read(client.channel(), buf, 0, 1, &PendingIo::Callback, &io);
    });
  }
};

TEST_F(DelayTest, LatenciesAreValidated) {
  CreateMalloc("Malloc0");
  auto read = CallRpc("bdev_delay_create", DelayParams("Malloc0", "D0", 100, 99, 0, 0));
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().message(),
            "bdev_delay_create: p99_read_latency 99 us is less than avg_read_latency 100 us: "
            "the p99 latency must be at least the average");
  auto write = CallRpc("bdev_delay_create", DelayParams("Malloc0", "D0", 0, 0, 10, 5));
  ASSERT_FALSE(write.ok());
  EXPECT_THAT(write.status().message(), HasSubstr("p99_write_latency 5 us is less than"));
  auto huge =
      CallRpc("bdev_delay_create", DelayParams("Malloc0", "D0", 0, kMaxDelayLatencyUs + 1, 0, 0));
  ASSERT_FALSE(huge.ok());
  EXPECT_THAT(huge.status().message(), HasSubstr("more than an hour"));
  Json partial = DelayParams("Malloc0", "D0", 1, 1, 1, 1);
  partial.erase("p99_write_latency");
  auto missing = CallRpc("bdev_delay_create", partial);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("p99_write_latency"));
  EXPECT_FALSE(Exists("D0"));
  EXPECT_EQ(ModuleConfig().size(), 0u);
  // Equal is fine; the base is claimed, the bdev copies its geometry.
  CreateDelay(DelayParams("Malloc0", "D0", 10, 10, 20, 20));
  EXPECT_EQ(CallOn(app_thread(), [] { return FindBdev("Malloc0")->claimed_by()->name(); }),
            "delay");
  EXPECT_EQ(CallOn(app_thread(), [] { return FindBdev("D0")->block_count(); }), 64u);
  auto twice = CallRpc("bdev_delay_create", DelayParams("Malloc1", "D0", 0, 0, 0, 0));
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.status().message(), "bdev_delay_create: bdev D0 already exists");
}

TEST_F(DelayTest, ReadsAndWritesTakeAtLeastTheirLatency) {
  constexpr uint64_t kReadUs = 20'000, kWriteUs = 30'000;
  CreateMalloc("Malloc0");
  CreateDelay(DelayParams("Malloc0", "D0", kReadUs, kReadUs, kWriteUs, kWriteUs));
  Thread* io_thread = CreateThread("io", 1);
  {
    IoClient client(io_thread, "D0");
    std::vector<uint8_t> out(512, 0x77), in(512);
    for (int i = 0; i < 3; ++i) {
      EXPECT_GE(Timed([&] { EXPECT_EQ(client.Write(out.data(), i, 1), BdevIoStatus::kSuccess); }),
                Ticks(kWriteUs));
      EXPECT_GE(Timed([&] { EXPECT_EQ(client.Read(in.data(), i, 1), BdevIoStatus::kSuccess); }),
                Ticks(kReadUs));
      EXPECT_EQ(in, out);
    }
    // The other types complete as the base does.
    EXPECT_EQ(client.Flush(0, 64), BdevIoStatus::kSuccess);
    EXPECT_EQ(client.Unmap(0, 1), BdevIoStatus::kSuccess);
    EXPECT_EQ(client.WriteZeroes(1, 1), BdevIoStatus::kSuccess);
    EXPECT_EQ(client.Reset(), BdevIoStatus::kSuccess);
  }
  ExitThread(io_thread);
}

TEST_F(DelayTest, UpdateLatencyAppliesToLaterIos) {
  constexpr uint64_t kUs = 25'000;
  CreateMalloc("Malloc0");
  CreateDelay(DelayParams("Malloc0", "D0", 0, 0, 0, 0));
  IoClient client(app_thread(), "D0");
  std::vector<uint8_t> buf(512);
  EXPECT_EQ(client.Read(buf.data(), 0, 1), BdevIoStatus::kSuccess);
  // Like SPDK, each value is set on its own: the average may pass the p99 for a moment.
  auto avg = Update("D0", "avg_read", kUs);
  ASSERT_TRUE(avg.ok()) << avg.status();
  EXPECT_EQ(*avg, true);
  ASSERT_TRUE(Update("D0", "p99_read", kUs).ok());
  for (int i = 0; i < 3; ++i) {
    EXPECT_GE(Timed([&] { EXPECT_EQ(client.Read(buf.data(), 0, 1), BdevIoStatus::kSuccess); }),
              Ticks(kUs));
  }
  ASSERT_TRUE(Update("D0", "avg_write", 7).ok());
  ASSERT_TRUE(Update("D0", "p99_write", 9).ok());
  EXPECT_EQ(Info("D0"), Json({{"delay",
                               {{"name", "D0"},
                                {"base_bdev_name", "Malloc0"},
                                {"avg_read_latency", kUs},
                                {"p99_read_latency", kUs},
                                {"avg_write_latency", 7},
                                {"p99_write_latency", 9}}}}));
  Json config = ModuleConfig();
  ASSERT_EQ(config.size(), 1u);
  EXPECT_EQ(config[0]["params"]["avg_read_latency"], kUs);
  EXPECT_EQ(config[0]["params"]["p99_write_latency"], 9);

  auto type = Update("D0", "max_read", 1);
  ASSERT_FALSE(type.ok());
  EXPECT_THAT(type.status().message(), HasSubstr("latency_type \"max_read\" is not one of"));
  auto unknown = Update("D9", "avg_read", 1);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().message(), "bdev_delay_update_latency: bdev D9 not found");
  auto not_delay = Update("Malloc0", "avg_read", 1);
  ASSERT_FALSE(not_delay.ok());
  EXPECT_THAT(not_delay.status().message(), HasSubstr("Malloc0 is not a delay bdev"));
  auto huge = Update("D0", "avg_read", kMaxDelayLatencyUs + 1);
  ASSERT_FALSE(huge.ok());
  EXPECT_THAT(huge.status().message(), HasSubstr("more than an hour"));
}

TEST_F(DelayTest, AResetAbortsHeldCompletions) {
  CreateMalloc("Malloc0");
  // Ten seconds: the read is still held when the reset comes, however slow the machine.
  CreateDelay(DelayParams("Malloc0", "D0", 10'000'000, 10'000'000, 0, 0));
  IoClient client(app_thread(), "D0");
  std::vector<uint8_t> buf(512);
  PendingIo held;
  StartRead(client, buf.data(), held);
  WaitForIterations(app_thread(), 20);  // the base (malloc) has completed it by now
  EXPECT_FALSE(held.done.load());
  EXPECT_EQ(client.Reset(), BdevIoStatus::kSuccess);
  ASSERT_TRUE(WaitUntil([&] { return held.done.load(std::memory_order_acquire); }));
  EXPECT_EQ(held.status.load(), BdevIoStatus::kAborted);
}

TEST_F(DelayTest, DeleteWaitsForHeldCompletionsAndForgetsTheBdev) {
  CreateMalloc("Malloc0");
  CreateDelay(DelayParams("Malloc0", "D0", 50'000, 50'000, 0, 0));
  auto client = std::make_unique<IoClient>(app_thread(), "D0");
  std::vector<uint8_t> buf(512);
  PendingIo held;
  StartRead(*client, buf.data(), held);
  std::atomic<bool> replied{false};
  rpc::RpcReply reply;
  RunOn(app_thread(), [&] {
    rpc::MethodRegistry::Global().Call("bdev_delay_delete", {{"name", "D0"}}, [&](rpc::RpcReply r) {
      reply = std::move(r);
      replied = true;
    });
  });
  ASSERT_TRUE(WaitUntil([&] { return client->remove_events() == 1; }));
  ASSERT_TRUE(WaitUntil([&] { return held.done.load(std::memory_order_acquire); }));
  EXPECT_EQ(held.status.load(), BdevIoStatus::kSuccess);
  client.reset();
  ASSERT_TRUE(WaitUntil([&] { return replied.load(); }));
  EXPECT_TRUE(reply.ok) << reply.message;
  EXPECT_FALSE(Exists("D0"));
  EXPECT_EQ(ModuleConfig().size(), 0u);
  EXPECT_EQ(CallOn(app_thread(), [] { return FindBdev("Malloc0")->claimed_by(); }), nullptr);
}

TEST_F(DelayTest, AMissingBaseIsAttachedWhenItAppearsAndSaveConfigReplays) {
  const std::string uuid = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
  Json params = DelayParams("Malloc7", "D7", 1, 2, 3, 4);
  params["uuid"] = uuid;
  CreateDelay(params);
  EXPECT_FALSE(Exists("D7"));
  Json expected = Json::array({{{"method", "bdev_delay_create"}, {"params", params}}});
  EXPECT_EQ(ModuleConfig(), expected);
  CreateMalloc("Malloc7");
  ASSERT_TRUE(Exists("D7"));
  EXPECT_EQ(CallOn(app_thread(), [] { return FindBdev("D7")->uuid(); }), uuid);
  EXPECT_EQ(ModuleConfig(), expected);
  // Replaying the saved call after a delete rebuilds the same bdev.
  ASSERT_TRUE(CallRpc("bdev_delay_delete", {{"name", "D7"}}).ok());
  EXPECT_EQ(ModuleConfig().size(), 0u);
  ASSERT_TRUE(CallRpc(expected[0]["method"], expected[0]["params"]).ok());
  EXPECT_EQ(Info("D7")["delay"]["p99_write_latency"], 4);
  EXPECT_EQ(CallOn(app_thread(), [] { return DelayModule::Get().config_order(); }), 1);
}

// Interrupt mode: while a completion is held, the thread's only delay poller is a timed one
// (the reactor sleeps until its next run), and once nothing is held it is paused.
class DelayInterruptTest : public DelayTest {
 protected:
  ReactorRuntimeOptions RuntimeOptions() const override { return InterruptModeOptions(); }
};

TEST_F(DelayInterruptTest, HeldCompletionsLetTheReactorSleep) {
  CreateMalloc("Malloc0");
  CreateDelay(DelayParams("Malloc0", "D0", 200'000, 200'000, 0, 0));
  Thread* io_thread = CreateThread("io", 1);
  {
    IoClient client(io_thread, "D0");
    struct PollerState {
      int count = 0;
      bool timed = false;
      bool paused = false;
      std::vector<std::string> holding_awake;
    };
    auto state = [&] {
      return CallOn(io_thread, [&] {
        PollerState s;
        io_thread->ForEachPoller([&](const Poller& poller) {
          if (poller.name() != "delay D0") return;
          ++s.count;
          s.timed = poller.is_timed();
          s.paused = poller.paused();
        });
        s.holding_awake = io_thread->PollersHoldingReactorAwake();
        return s;
      });
    };
    std::vector<uint8_t> buf(512);
    EXPECT_EQ(client.Read(buf.data(), 0, 1), BdevIoStatus::kSuccess);  // creates the channel
    PollerState idle = state();
    EXPECT_EQ(idle.count, 1);
    EXPECT_TRUE(idle.timed);
    EXPECT_TRUE(idle.paused);

    PendingIo held;
    StartRead(client, buf.data(), held);
    WaitForIterations(io_thread, 20);
    ASSERT_FALSE(held.done.load()) << "200 ms have not passed in 20 iterations";
    PollerState holding = state();
    EXPECT_TRUE(holding.timed);
    EXPECT_FALSE(holding.paused);
    EXPECT_THAT(holding.holding_awake, ::testing::IsEmpty());
    ASSERT_TRUE(WaitUntil([&] { return held.done.load(std::memory_order_acquire); }));
    EXPECT_EQ(held.status.load(), BdevIoStatus::kSuccess);
    EXPECT_TRUE(state().paused);
    // A latency change re-times the pollers; still one per thread.
    ASSERT_TRUE(Update("D0", "avg_read", 1'000).ok());
    EXPECT_EQ(state().count, 1);
  }
  ExitThread(io_thread);
}

}  // namespace
}  // namespace pollux::testing
