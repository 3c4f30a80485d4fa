// The error bdev module: EE_<base> over a base, each error_type (failure, pending, corrupt_data,
// nomem) with its count honoured across threads, "all", "always", "clear", queue_depth, pending
// I/Os released by clear and resume_pending and aborted by reset, delete and the base's hot
// remove, examine of a base that appears later, bad input, and save_config.
#include <gmock/gmock.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "bdev_test_env.h"
#include "pollux/bdev_error/bdev_error.h"
#include "pollux/rpc/method_registry.h"
#include "test_bdev.h"

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

class ErrorTest : public BdevTest {
 protected:
  void CreateMalloc(const std::string& name, uint64_t blocks = 64) {
    auto created = CallRpc("bdev_malloc_create",
                           {{"name", name}, {"num_blocks", blocks}, {"block_size", 512}});
    ASSERT_TRUE(created.ok()) << created.status();
  }
  TestBdev* CreateTestBase(const std::string& name) {
    return CallOn(app_thread(), [&] {
      BdevProperties properties;
      properties.name = name;
      properties.block_count = 64;
      return RegisterTestBdev(properties);
    });
  }
  absl::StatusOr<Json> Create(const std::string& base) {
    return CallRpc("bdev_error_create", {{"base_name", base}});
  }
  absl::StatusOr<Json> Inject(Json params) {
    if (!params.contains("name")) params["name"] = "EE_Malloc0";
    return CallRpc("bdev_error_inject_error", params);
  }
  void MustInject(Json params) {
    auto injected = Inject(std::move(params));
    ASSERT_TRUE(injected.ok()) << injected.status();
    EXPECT_EQ(*injected, true);
  }
  Json ModuleConfig() {
    return CallOn(app_thread(), [] {
      Json config = Json::array();
      ErrorModule::Get().WriteConfig(config);
      return config;
    });
  }
  // Submits a read on the client's thread without waiting for it.
  void StartRead(IoClient& client, void* buf, uint64_t offset, PendingIo& io) {
    RunOn(client.thread(), [&client, buf, offset, &io] {
      client.desc().Read(client.channel(), buf, offset, 1, &PendingIo::Callback, &io);
    });
  }
  // Calls an RPC method on the app thread without waiting for the reply.
  void StartRpc(const std::string& method, Json params, std::atomic<bool>& replied,
                rpc::RpcReply& reply) {
    RunOn(app_thread(), [&, method, params] {
      rpc::MethodRegistry::Global().Call(method, params, [&](rpc::RpcReply r) {
        reply = std::move(r);
        replied = true;
      });
    });
  }
};

TEST_F(ErrorTest, CreateNamesTheBdevAfterItsBaseClaimsItAndForwards) {
  CreateMalloc("Malloc0");
  auto created = Create("Malloc0");
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(*created, true);
  ASSERT_TRUE(Exists("EE_Malloc0"));
  auto [claimer, product, info] = CallOn(app_thread(), [] {
    Json driver_specific = Json::object();
    FindBdev("EE_Malloc0")->DumpInfo(driver_specific);
    return std::tuple(FindBdev("Malloc0")->claimed_by()->name(),
                      FindBdev("EE_Malloc0")->product_name(), driver_specific);
  });
  EXPECT_EQ(claimer, "error");
  EXPECT_EQ(product, "Error Injection Disk");
  EXPECT_EQ(info, Json({{"error_disk", {{"base_bdev", "Malloc0"}}}}));
  IoClient client(app_thread(), "EE_Malloc0");
  std::vector<uint8_t> out(1024, 0x3c), in(1024);
  EXPECT_EQ(client.Write(out.data(), 4, 2), BdevIoStatus::kSuccess);
  EXPECT_EQ(client.Read(in.data(), 4, 2), BdevIoStatus::kSuccess);
  EXPECT_EQ(in, out);
  EXPECT_EQ(client.Flush(0, 64), BdevIoStatus::kSuccess);
  EXPECT_EQ(client.Unmap(0, 1), BdevIoStatus::kSuccess);
  EXPECT_EQ(client.WriteZeroes(1, 1), BdevIoStatus::kSuccess);
  EXPECT_EQ(client.Reset(), BdevIoStatus::kSuccess);
}

TEST_F(ErrorTest, FailureHitsTheCountedIosOfItsTypeOnly) {
  CreateMalloc("Malloc0");
  ASSERT_TRUE(Create("Malloc0").ok());
  IoClient client(app_thread(), "EE_Malloc0");
  std::vector<uint8_t> buf(512);
  MustInject({{"io_type", "read"}, {"error_type", "failure"}, {"num", 2}});
  EXPECT_EQ(client.Write(buf.data(), 0, 1), BdevIoStatus::kSuccess);
  EXPECT_EQ(client.Read(buf.data(), 0, 1), BdevIoStatus::kFailed);
  EXPECT_EQ(client.Write(buf.data(), 0, 1), BdevIoStatus::kSuccess);
  EXPECT_EQ(client.Read(buf.data(), 0, 1), BdevIoStatus::kFailed);
  EXPECT_EQ(client.Read(buf.data(), 0, 1), BdevIoStatus::kSuccess);
  // "num" defaults to 1 (SPDK).
  MustInject({{"io_type", "write"}, {"error_type", "failure"}});
  EXPECT_EQ(client.Write(buf.data(), 0, 1), BdevIoStatus::kFailed);
  EXPECT_EQ(client.Write(buf.data(), 0, 1), BdevIoStatus::kSuccess);
  // num 0 disarms.
  MustInject({{"io_type", "write"}, {"error_type", "failure"}, {"num", 5}});
  MustInject({{"io_type", "write"}, {"error_type", "failure"}, {"num", 0}});
  EXPECT_EQ(client.Write(buf.data(), 0, 1), BdevIoStatus::kSuccess);
}

TEST_F(ErrorTest, AllHitsEveryTypeButResetAndClearDisarmsEverything) {
  CreateMalloc("Malloc0");
  ASSERT_TRUE(Create("Malloc0").ok());
  IoClient client(app_thread(), "EE_Malloc0");
  std::vector<uint8_t> buf(512);
  MustInject({{"io_type", "all"}, {"error_type", "failure"}});
  EXPECT_EQ(client.Reset(), BdevIoStatus::kSuccess);
  EXPECT_EQ(client.Read(buf.data(), 0, 1), BdevIoStatus::kFailed);
  EXPECT_EQ(client.Write(buf.data(), 0, 1), BdevIoStatus::kFailed);
  EXPECT_EQ(client.Flush(0, 1), BdevIoStatus::kFailed);
  EXPECT_EQ(client.Unmap(0, 1), BdevIoStatus::kFailed);
  EXPECT_EQ(client.WriteZeroes(0, 1), BdevIoStatus::kFailed);
  EXPECT_EQ(client.Read(buf.data(), 0, 1), BdevIoStatus::kSuccess);
  // A reset is hit only when named.
  MustInject({{"io_type", "reset"}, {"error_type", "failure"}});
  EXPECT_EQ(client.Reset(), BdevIoStatus::kFailed);
  EXPECT_EQ(client.Reset(), BdevIoStatus::kSuccess);

  MustInject({{"io_type", "all"}, {"error_type", "failure"}, {"num", 100}});
  MustInject({{"io_type", "reset"}, {"error_type", "failure"}, {"num", 100}});
  MustInject({{"io_type", "clear"}});  // clear needs no error_type
  EXPECT_EQ(client.Read(buf.data(), 0, 1), BdevIoStatus::kSuccess);
  EXPECT_EQ(client.Write(buf.data(), 0, 1), BdevIoStatus::kSuccess);
  EXPECT_EQ(client.Flush(0, 1), BdevIoStatus::kSuccess);
  EXPECT_EQ(client.Unmap(0, 1), BdevIoStatus::kSuccess);
  EXPECT_EQ(client.WriteZeroes(0, 1), BdevIoStatus::kSuccess);
  EXPECT_EQ(client.Reset(), BdevIoStatus::kSuccess);
}

TEST_F(ErrorTest, AlwaysHitsEveryIoUntilCleared) {
  CreateMalloc("Malloc0");
  ASSERT_TRUE(Create("Malloc0").ok());
  IoClient client(app_thread(), "EE_Malloc0");
  std::vector<uint8_t> buf(512);
  MustInject({{"io_type", "write"}, {"error_type", "failure"}, {"always", true}});
  for (int i = 0; i < 20; ++i) EXPECT_EQ(client.Write(buf.data(), 0, 1), BdevIoStatus::kFailed);
  EXPECT_EQ(client.Read(buf.data(), 0, 1), BdevIoStatus::kSuccess);
  MustInject({{"io_type", "clear"}, {"error_type", "failure"}});
  EXPECT_EQ(client.Write(buf.data(), 0, 1), BdevIoStatus::kSuccess);
  auto both =
      Inject({{"io_type", "write"}, {"error_type", "failure"}, {"always", true}, {"num", 3}});
  ASSERT_FALSE(both.ok());
  EXPECT_THAT(both.status().message(), HasSubstr("num and always exclude each other"));
}

// Two threads race for one shared count: exactly `num` I/Os fail, whoever submits them.
TEST_F(ErrorTest, TheCountIsSharedByEveryThread) {
  CreateMalloc("Malloc0");
  ASSERT_TRUE(Create("Malloc0").ok());
  Thread* thread_a = CreateThread("io_a", 0);
  Thread* thread_b = CreateThread("io_b", 1);
  std::atomic<int> failures{0};
  {
    IoClient client_a(thread_a, "EE_Malloc0");
    IoClient client_b(thread_b, "EE_Malloc0");
    MustInject({{"io_type", "read"}, {"error_type", "failure"}, {"num", 25}});
    auto reads = [&failures](IoClient& client) {
      std::vector<uint8_t> buf(512);
      for (int i = 0; i < 40; ++i) {
        if (client.Read(buf.data(), 0, 1) == BdevIoStatus::kFailed) ++failures;
      }
    };
    std::thread a(reads, std::ref(client_a));
    std::thread b(reads, std::ref(client_b));
    a.join();
    b.join();
  }
  EXPECT_EQ(failures.load(), 25);
  ExitThread(thread_a);
  ExitThread(thread_b);
}

TEST_F(ErrorTest, NoMemoryIsRetriedByTheLayerUntilTheCountIsUsedUp) {
  TestBdev* base = CreateTestBase("Malloc0");
  ASSERT_NE(base, nullptr);
  ASSERT_TRUE(Create("Malloc0").ok());
  IoClient client(app_thread(), "EE_Malloc0");
  std::vector<uint8_t> buf(512);
  MustInject({{"io_type", "read"}, {"error_type", "nomem"}, {"num", 3}});
  // The caller never sees kNoMemory: the layer retries until the injection lets the I/O pass,
  // and the base sees it once.
  EXPECT_EQ(client.Read(buf.data(), 0, 1), BdevIoStatus::kSuccess);
  EXPECT_EQ(base->seen().size(), 1u);
  EXPECT_EQ(client.Read(buf.data(), 0, 1), BdevIoStatus::kSuccess);
  EXPECT_EQ(base->seen().size(), 2u);
}

TEST_F(ErrorTest, CorruptDataFlipsAByteOfAWriteBeforeAndOfAReadAfterTheBase) {
  CreateMalloc("Malloc0");
  ASSERT_TRUE(Create("Malloc0").ok());
  Thread* io_thread = CreateThread("io", 1);
  {
    IoClient client(io_thread, "EE_Malloc0");
    IoClient base(io_thread, "Malloc0", /*writable=*/false);
    std::vector<uint8_t> pattern(1024);
    for (size_t i = 0; i < pattern.size(); ++i) pattern[i] = static_cast<uint8_t>(i * 7);
    std::vector<uint8_t> out = pattern, in(1024);

    MustInject({{"io_type", "write"},
                {"error_type", "corrupt_data"},
                {"corrupt_offset", 700},
                {"corrupt_value", 0xff}});
    // Split so that the corrupted byte sits in the second iovec.
    iovec iovs[2] = {{out.data(), 600}, {out.data() + 600, 424}};
    EXPECT_EQ(client.Writev(iovs, 2, 8, 2), BdevIoStatus::kSuccess);
    EXPECT_EQ(base.Read(in.data(), 8, 2), BdevIoStatus::kSuccess);
    std::vector<uint8_t> expected = pattern;
    expected[700] ^= 0xff;
    EXPECT_EQ(in, expected);
    // The count is used up: the next write lands intact.
    out = pattern;
    EXPECT_EQ(client.Write(out.data(), 8, 2), BdevIoStatus::kSuccess);
    EXPECT_EQ(base.Read(in.data(), 8, 2), BdevIoStatus::kSuccess);
    EXPECT_EQ(in, pattern);

    MustInject({{"io_type", "read"},
                {"error_type", "corrupt_data"},
                {"corrupt_offset", 3},
                {"corrupt_value", 0x0f}});
    EXPECT_EQ(client.Read(in.data(), 8, 2), BdevIoStatus::kSuccess);
    expected = pattern;
    expected[3] ^= 0x0f;
    EXPECT_EQ(in, expected);
    EXPECT_EQ(client.Read(in.data(), 8, 2), BdevIoStatus::kSuccess);
    EXPECT_EQ(in, pattern);
    // Past the end of the data: nothing to corrupt, nothing breaks.
    MustInject({{"io_type", "read"},
                {"error_type", "corrupt_data"},
                {"corrupt_offset", 5000},
                {"corrupt_value", 1}});
    EXPECT_EQ(client.Read(in.data(), 8, 2), BdevIoStatus::kSuccess);
    EXPECT_EQ(in, pattern);
  }
  ExitThread(io_thread);
  auto zero = Inject({{"io_type", "read"}, {"error_type", "corrupt_data"}, {"corrupt_value", 0}});
  ASSERT_FALSE(zero.ok());
  EXPECT_THAT(zero.status().message(), HasSubstr("corrupt_value must not be 0"));
  auto big = Inject({{"io_type", "read"}, {"error_type", "corrupt_data"}, {"corrupt_value", 256}});
  ASSERT_FALSE(big.ok());
  EXPECT_THAT(big.status().message(), HasSubstr("corrupt_value 256 is not a byte"));
}

TEST_F(ErrorTest, PendingHoldsTheIoUntilClearSubmitsIt) {
  TestBdev* base = CreateTestBase("Malloc0");
  ASSERT_NE(base, nullptr);
  ASSERT_TRUE(Create("Malloc0").ok());
  Thread* io_thread = CreateThread("io", 1);
  {
    IoClient client(io_thread, "EE_Malloc0");
    MustInject({{"io_type", "read"}, {"error_type", "pending"}});
    std::vector<uint8_t> buf(512);
    PendingIo held;
    StartRead(client, buf.data(), 0, held);
    WaitForIterations(io_thread, 50);
    EXPECT_FALSE(held.done.load());
    EXPECT_TRUE(base->seen().empty());
    // The count is used: the next read passes the held one.
    EXPECT_EQ(client.Read(buf.data(), 1, 1), BdevIoStatus::kSuccess);
    EXPECT_FALSE(held.done.load());
    MustInject({{"io_type", "clear"}});
    ASSERT_TRUE(WaitUntil([&] { return held.done.load(std::memory_order_acquire); }));
    EXPECT_EQ(held.status.load(), BdevIoStatus::kSuccess);
    ASSERT_EQ(base->seen().size(), 2u);
    EXPECT_EQ(base->seen()[1].offset_blocks, 0u);
  }
  ExitThread(io_thread);
}

TEST_F(ErrorTest, ResumePendingSubmitsTheHeldIos) {
  CreateMalloc("Malloc0");
  ASSERT_TRUE(Create("Malloc0").ok());
  IoClient client(app_thread(), "EE_Malloc0");
  MustInject({{"io_type", "read"}, {"error_type", "pending"}, {"always", true}});
  std::vector<uint8_t> buf(1024);
  PendingIo first, second;
  StartRead(client, buf.data(), 0, first);
  StartRead(client, buf.data() + 512, 1, second);
  WaitForIterations(app_thread(), 20);
  EXPECT_FALSE(first.done.load());
  auto resumed = CallRpc("bdev_error_resume_pending", {{"name", "EE_Malloc0"}});
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  ASSERT_TRUE(WaitUntil([&] { return first.done.load() && second.done.load(); }));
  EXPECT_EQ(first.status.load(), BdevIoStatus::kSuccess);
  EXPECT_EQ(second.status.load(), BdevIoStatus::kSuccess);
  // The pending injection is disarmed, "always" or not.
  EXPECT_EQ(client.Read(buf.data(), 0, 1), BdevIoStatus::kSuccess);
}

TEST_F(ErrorTest, AResetAbortsThePendingIos) {
  CreateMalloc("Malloc0");
  ASSERT_TRUE(Create("Malloc0").ok());
  Thread* io_thread = CreateThread("io", 1);
  {
    IoClient client(io_thread, "EE_Malloc0");
    IoClient other(app_thread(), "EE_Malloc0");
    MustInject({{"io_type", "read"}, {"error_type", "pending"}, {"num", 2}});
    std::vector<uint8_t> buf(1024);
    PendingIo here, there;
    StartRead(client, buf.data(), 0, here);
    StartRead(other, buf.data() + 512, 0, there);
    WaitForIterations(io_thread, 20);
    EXPECT_FALSE(here.done.load());
    // A reset on one thread reaches the I/Os held on every thread.
    EXPECT_EQ(client.Reset(), BdevIoStatus::kSuccess);
    ASSERT_TRUE(WaitUntil([&] { return here.done.load() && there.done.load(); }));
    EXPECT_EQ(here.status.load(), BdevIoStatus::kAborted);
    EXPECT_EQ(there.status.load(), BdevIoStatus::kAborted);
  }
  ExitThread(io_thread);
}

TEST_F(ErrorTest, DeleteAbortsThePendingIosAndForgetsTheBdev) {
  CreateMalloc("Malloc0");
  ASSERT_TRUE(Create("Malloc0").ok());
  Thread* io_thread = CreateThread("io", 1);
  auto client = std::make_unique<IoClient>(io_thread, "EE_Malloc0");
  MustInject({{"io_type", "read"}, {"error_type", "pending"}, {"always", true}});
  std::vector<uint8_t> buf(512 * 3);
  PendingIo ios[3];
  for (int i = 0; i < 3; ++i) StartRead(*client, buf.data() + 512 * i, i, ios[i]);
  WaitForIterations(io_thread, 20);

  std::atomic<bool> replied{false};
  rpc::RpcReply reply;
  StartRpc("bdev_error_delete", {{"name", "EE_Malloc0"}}, replied, reply);
  for (PendingIo& io : ios) {
    ASSERT_TRUE(WaitUntil([&] { return io.done.load(std::memory_order_acquire); }));
    EXPECT_EQ(io.status.load(), BdevIoStatus::kAborted);
  }
  ASSERT_TRUE(WaitUntil([&] { return client->remove_events() == 1; }));
  client.reset();
  ASSERT_TRUE(WaitUntil([&] { return replied.load(); }));
  EXPECT_TRUE(reply.ok) << reply.message;
  EXPECT_FALSE(Exists("EE_Malloc0"));
  EXPECT_EQ(ModuleConfig().size(), 0u);
  EXPECT_EQ(CallOn(app_thread(), [] { return FindBdev("Malloc0")->claimed_by(); }), nullptr);
  ExitThread(io_thread);
}

TEST_F(ErrorTest, HotRemoveOfTheBaseAbortsThePendingIos) {
  TestBdev* base = CreateTestBase("Base0");
  ASSERT_NE(base, nullptr);
  ASSERT_TRUE(Create("Base0").ok());
  auto client = std::make_unique<IoClient>(app_thread(), "EE_Base0");
  MustInject({{"name", "EE_Base0"}, {"io_type", "write"}, {"error_type", "pending"}});
  std::vector<uint8_t> buf(512);
  PendingIo held;
  RunOn(app_thread(), [&] {
    client->desc().Write(client->channel(), buf.data(), 0, 1, &PendingIo::Callback, &held);
  });
  WaitForIterations(app_thread(), 20);
  EXPECT_FALSE(held.done.load());
  EXPECT_TRUE(base->seen().empty());  // held by the error bdev, not at the base
  // The base goes away (`base` is deleted with it: not used below).
  std::atomic<bool> removed{false};
  RunOn(app_thread(),
        [&] { UnregisterBdev(*FindBdev("Base0"), [&](absl::Status) { removed = true; }); });
  ASSERT_TRUE(WaitUntil([&] { return held.done.load(std::memory_order_acquire); }));
  EXPECT_EQ(held.status.load(), BdevIoStatus::kAborted);
  ASSERT_TRUE(WaitUntil([&] { return client->remove_events() == 1; }));
  client.reset();
  ASSERT_TRUE(WaitUntil([&] { return removed.load(); }));
  EXPECT_FALSE(Exists("EE_Base0"));
}

TEST_F(ErrorTest, QueueDepthHitsOnlyWhileThatManyIosAreAtTheBase) {
  TestBdev* base = CreateTestBase("Malloc0");
  ASSERT_NE(base, nullptr);
  ASSERT_TRUE(Create("Malloc0").ok());
  IoClient client(app_thread(), "EE_Malloc0");
  MustInject({{"io_type", "read"}, {"error_type", "failure"}, {"queue_depth", 1}});
  std::vector<uint8_t> buf(1024);
  base->hold = true;
  PendingIo first, second;
  StartRead(client, buf.data(), 0, first);  // nothing at the base yet: passes
  ASSERT_TRUE(WaitUntil([&] { return base->held_count() == 1; }));
  StartRead(client, buf.data() + 512, 1, second);  // one at the base: hit
  ASSERT_TRUE(WaitUntil([&] { return second.done.load(std::memory_order_acquire); }));
  EXPECT_EQ(second.status.load(), BdevIoStatus::kFailed);
  base->hold = false;
  EXPECT_EQ(CallOn(app_thread(), [&] { return base->Release(); }), 1u);
  ASSERT_TRUE(WaitUntil([&] { return first.done.load(std::memory_order_acquire); }));
  EXPECT_EQ(first.status.load(), BdevIoStatus::kSuccess);
}

TEST_F(ErrorTest, AMissingBaseIsAttachedWhenItAppears) {
  auto created = Create("Malloc4");
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_FALSE(Exists("EE_Malloc4"));
  CreateMalloc("Malloc4");
  EXPECT_TRUE(Exists("EE_Malloc4"));
  // Deleting one that waits forgets it.
  ASSERT_TRUE(Create("Malloc5").ok());
  EXPECT_TRUE(CallRpc("bdev_error_delete", {{"name", "EE_Malloc5"}}).ok());
  CreateMalloc("Malloc5");
  EXPECT_FALSE(Exists("EE_Malloc5"));
}

TEST_F(ErrorTest, BadInputIsRefusedClearly) {
  CreateMalloc("Malloc0");
  ASSERT_TRUE(Create("Malloc0").ok());
  auto twice = Create("Malloc0");
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.status().message(), "bdev_error_create: bdev EE_Malloc0 already exists");
  CreateMalloc("Malloc1");
  ASSERT_TRUE(
      CallRpc("bdev_passthru_create", {{"base_bdev_name", "Malloc1"}, {"name", "PT1"}}).ok());
  auto claimed = Create("Malloc1");
  ASSERT_FALSE(claimed.ok());
  EXPECT_THAT(claimed.status().message(), HasSubstr("cannot attach EE_Malloc1 to Malloc1"));
  EXPECT_THAT(claimed.status().message(), HasSubstr("claimed by module passthru"));
  auto uuid = CallRpc("bdev_error_create", {{"base_name", "Malloc2"}, {"uuid", "xyz"}});
  ASSERT_FALSE(uuid.ok());
  EXPECT_THAT(uuid.status().message(), HasSubstr("is not a UUID"));

  auto unknown = Inject({{"name", "EE_Nope"}, {"io_type", "read"}, {"error_type", "failure"}});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().message(), "bdev_error_inject_error: bdev EE_Nope not found");
  auto not_error = Inject({{"name", "Malloc0"}, {"io_type", "read"}, {"error_type", "failure"}});
  ASSERT_FALSE(not_error.ok());
  EXPECT_THAT(not_error.status().message(), HasSubstr("bdev Malloc0 is not an error bdev"));
  auto io_type = Inject({{"io_type", "compare"}, {"error_type", "failure"}});
  ASSERT_FALSE(io_type.ok());
  EXPECT_THAT(io_type.status().message(), HasSubstr("io_type \"compare\" is not one of"));
  auto error_type = Inject({{"io_type", "read"}, {"error_type", "explode"}});
  ASSERT_FALSE(error_type.ok());
  EXPECT_THAT(error_type.status().message(), HasSubstr("error_type \"explode\" is not one of"));
  auto nvme = Inject({{"io_type", "read"}, {"error_type", "nvme"}, {"nvme_sct", 1}});
  ASSERT_FALSE(nvme.ok());
  EXPECT_THAT(nvme.status().message(), HasSubstr("nvme"));
  auto missing = Inject({{"io_type", "read"}});
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("error_type"));
  auto clear_unknown = Inject({{"name", "EE_Nope"}, {"io_type", "clear"}});
  ASSERT_FALSE(clear_unknown.ok());
  EXPECT_THAT(clear_unknown.status().message(), HasSubstr("EE_Nope not found"));
  auto delete_unknown = CallRpc("bdev_error_delete", {{"name", "EE_Nope"}});
  ASSERT_FALSE(delete_unknown.ok());
  EXPECT_THAT(delete_unknown.status().message(), HasSubstr("EE_Nope not found"));
  // Only the good one stayed.
  EXPECT_EQ(ModuleConfig().size(), 1u);
}

TEST_F(ErrorTest, SaveConfigListsEveryErrorBdevWithItsUuid) {
  const std::string uuid = "11111111-2222-4333-8444-555555555555";
  CreateMalloc("Malloc0");
  ASSERT_TRUE(Create("Malloc0").ok());
  ASSERT_TRUE(CallRpc("bdev_error_create", {{"base_name", "Malloc9"}, {"uuid", uuid}}).ok());
  MustInject({{"io_type", "read"}, {"error_type", "failure"}});  // not configuration
  std::string ee_uuid = CallOn(app_thread(), [] { return FindBdev("EE_Malloc0")->uuid(); });
  Json expected = Json::array();
  expected.push_back(
      {{"method", "bdev_error_create"}, {"params", {{"base_name", "Malloc0"}, {"uuid", ee_uuid}}}});
  expected.push_back(
      {{"method", "bdev_error_create"}, {"params", {{"base_name", "Malloc9"}, {"uuid", uuid}}}});
  EXPECT_EQ(ModuleConfig(), expected);
  CreateMalloc("Malloc9");
  EXPECT_EQ(CallOn(app_thread(), [] { return FindBdev("EE_Malloc9")->uuid(); }), uuid);
}

}  // namespace
}  // namespace pollux::testing
