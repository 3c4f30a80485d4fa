// The passthru bdev module: create over an existing or a missing base (examine attaches it
// later), geometry copied from the base, data integrity with random iovec splits, every I/O type
// forwarded, claims (a second passthru, writers and deletes of the base refused), hot remove of
// the base with I/O in flight, delete, stacking, and save_config.
#include <gmock/gmock.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "bdev_test_env.h"
#include "pollux/bdev_passthru/bdev_passthru.h"
#include "test_bdev.h"

namespace pollux::testing {
namespace {

using rpc::Json;
using ::testing::HasSubstr;

// Cuts `len` bytes at `base` into 1 to max_iovs non-empty pieces at random byte positions.
std::vector<iovec> RandomIovecs(uint8_t* base, size_t len, int max_iovs, std::mt19937_64& rng) {
  int count = std::uniform_int_distribution<int>(1, std::min<int>(max_iovs, len))(rng);
  std::vector<size_t> cuts;
  while (static_cast<int>(cuts.size()) < count - 1) {
    size_t cut = std::uniform_int_distribution<size_t>(1, len - 1)(rng);
    if (std::find(cuts.begin(), cuts.end(), cut) == cuts.end()) cuts.push_back(cut);
  }
  std::sort(cuts.begin(), cuts.end());
  return IovecsAtCuts(base, len, std::move(cuts));
}

// An I/O submitted without waiting for it.
struct PendingIo {
  std::atomic<bool> done{false};
  std::atomic<BdevIoStatus> status{BdevIoStatus::kFailed};
  static void Callback(void* arg, BdevIoStatus status, int /*error_number*/) {
    auto* io = static_cast<PendingIo*>(arg);
    io->status = status;
    io->done.store(true, std::memory_order_release);
  }
};

class PassthruTest : public BdevTest {
 protected:
  absl::StatusOr<Json> Create(const std::string& base, const std::string& name,
                              const std::string& uuid = "") {
    Json params = {{"base_bdev_name", base}, {"name", name}};
    if (!uuid.empty()) params["uuid"] = uuid;
    return CallRpc("bdev_passthru_create", params);
  }
  absl::StatusOr<Json> DeletePassthru(const std::string& name) {
    return CallRpc("bdev_passthru_delete", {{"name", name}});
  }
  void CreateMalloc(const std::string& name, uint64_t blocks = 256, uint32_t block_size = 512,
                    uint32_t optimal_io_boundary = 0) {
    auto created = CallRpc("bdev_malloc_create", {{"name", name},
                                                  {"num_blocks", blocks},
                                                  {"block_size", block_size},
                                                  {"optimal_io_boundary", optimal_io_boundary}});
    ASSERT_TRUE(created.ok()) << created.status();
  }
  TestBdev* CreateTestBase(const std::string& name, uint64_t blocks = 64) {
    return CallOn(app_thread(), [&] {
      BdevProperties properties;
      properties.name = name;
      properties.block_count = blocks;
      return RegisterTestBdev(properties);
    });
  }
  Json ModuleConfig() {
    return CallOn(app_thread(), [] {
      Json config = Json::array();
      PassthruModule::Get().WriteConfig(config);
      return config;
    });
  }
  absl::Status OpenOnApp(const std::string& name, bool writable) {
    return CallOn(app_thread(), [&] { return BdevDesc::Open(name, writable, nullptr).status(); });
  }
};

TEST_F(PassthruTest, CreateOverAnExistingBaseCopiesItsGeometryAndClaimsIt) {
  CreateMalloc("Malloc0", 512, 4096, 16);
  auto created = Create("Malloc0", "PT0");
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(*created, "PT0");
  auto [base, pt] = CallOn(app_thread(), [] {
    return std::pair(FindBdev("Malloc0")->properties(), FindBdev("PT0")->properties());
  });
  EXPECT_EQ(pt.block_size, base.block_size);
  EXPECT_EQ(pt.block_count, base.block_count);
  EXPECT_EQ(pt.required_alignment, base.required_alignment);
  EXPECT_EQ(pt.optimal_io_boundary, base.optimal_io_boundary);
  EXPECT_EQ(pt.split_on_optimal_io_boundary, base.split_on_optimal_io_boundary);
  EXPECT_EQ(pt.max_transfer_blocks, base.max_transfer_blocks);
  EXPECT_EQ(pt.max_segments, base.max_segments);
  EXPECT_EQ(pt.write_cache, base.write_cache);
  EXPECT_EQ(pt.product_name, "passthru");
  EXPECT_NE(pt.uuid, base.uuid);
  EXPECT_EQ(ClaimedBy("Malloc0"), "passthru");
  EXPECT_EQ(ClaimedBy("PT0"), "");
  Json info = CallOn(app_thread(), [] {
    Json driver_specific = Json::object();
    FindBdev("PT0")->DumpInfo(driver_specific);
    return driver_specific;
  });
  EXPECT_EQ(info, Json({{"passthru", {{"name", "PT0"}, {"base_bdev_name", "Malloc0"}}}}));
}

TEST_F(PassthruTest, DataThroughPassthruWithRandomIovecSplitsMatchesTheBase) {
  constexpr uint64_t kBlocks = 256;
  constexpr uint32_t kBlockSize = 512;
  CreateMalloc("Malloc0", kBlocks, kBlockSize);
  ASSERT_TRUE(Create("Malloc0", "PT0").ok());
  std::vector<uint8_t> shadow(kBlocks * kBlockSize, 0);
  std::mt19937_64 rng(0x9a55);
  Thread* io_thread = CreateThread("io", 1);
  {
    IoClient client(io_thread, "PT0");
    ASSERT_TRUE(client.ok());
    for (int i = 0; i < 200; ++i) {
      uint64_t len = std::uniform_int_distribution<uint64_t>(1, 32)(rng);
      uint64_t offset = std::uniform_int_distribution<uint64_t>(0, kBlocks - len)(rng);
      std::vector<uint8_t> data(len * kBlockSize);
      if (i % 2 == 0) {
        for (uint8_t& b : data) b = static_cast<uint8_t>(rng());
        std::vector<iovec> iovs = RandomIovecs(data.data(), data.size(), 12, rng);
        ASSERT_EQ(client.Writev(iovs.data(), static_cast<int>(iovs.size()), offset, len),
                  BdevIoStatus::kSuccess);
        std::memcpy(shadow.data() + offset * kBlockSize, data.data(), data.size());
      } else {
        std::vector<iovec> iovs = RandomIovecs(data.data(), data.size(), 12, rng);
        ASSERT_EQ(client.Readv(iovs.data(), static_cast<int>(iovs.size()), offset, len),
                  BdevIoStatus::kSuccess);
        ASSERT_EQ(0, std::memcmp(data.data(), shadow.data() + offset * kBlockSize, data.size()))
            << "read of " << len << " blocks at " << offset << " in " << iovs.size() << " iovecs";
      }
    }
    // The base itself holds what passthru wrote (read-only opens are allowed on a claimed bdev).
    IoClient base_reader(io_thread, "Malloc0", /*writable=*/false);
    ASSERT_TRUE(base_reader.ok());
    std::vector<uint8_t> whole(shadow.size());
    ASSERT_EQ(base_reader.Read(whole.data(), 0, kBlocks), BdevIoStatus::kSuccess);
    EXPECT_TRUE(whole == shadow);
    // Past the end never reaches passthru's Submit, and nothing breaks.
    EXPECT_EQ(client.Read(whole.data(), kBlocks - 1, 2), BdevIoStatus::kOutOfRange);
  }
  ExitThread(io_thread);
}

TEST_F(PassthruTest, EveryIoTypeIsForwardedWithItsRange) {
  // Every type natively (supported_types is read once, at registration).
  TestBdev* base = CallOn(app_thread(), [] {
    BdevProperties properties;
    properties.name = "Base0";
    properties.block_count = 64;
    auto bdev = std::make_unique<TestBdev>(properties);
    bdev->supported_types = 0x3f;
    auto registered = RegisterBdev(std::move(bdev));
    return registered.ok() ? static_cast<TestBdev*>(*registered) : nullptr;
  });
  ASSERT_NE(base, nullptr);
  ASSERT_TRUE(Create("Base0", "PT0").ok());
  {
    IoClient client(app_thread(), "PT0");
    ASSERT_TRUE(client.ok());
    std::vector<uint8_t> buf(4 * 512, 0x5a);
    EXPECT_EQ(client.Write(buf.data(), 1, 4), BdevIoStatus::kSuccess);
    EXPECT_EQ(client.Read(buf.data(), 2, 3), BdevIoStatus::kSuccess);
    EXPECT_EQ(client.Flush(0, 64), BdevIoStatus::kSuccess);
    EXPECT_EQ(client.Unmap(5, 6), BdevIoStatus::kSuccess);
    EXPECT_EQ(client.WriteZeroes(7, 8), BdevIoStatus::kSuccess);
    EXPECT_EQ(client.Reset(), BdevIoStatus::kSuccess);
  }
  std::vector<SeenIo> seen = base->seen();
  ASSERT_EQ(seen.size(), 6u);
  EXPECT_EQ(seen[0].type, IoType::kWrite);
  EXPECT_EQ(seen[0].offset_blocks, 1u);
  EXPECT_EQ(seen[0].num_blocks, 4u);
  EXPECT_EQ(seen[1].type, IoType::kRead);
  EXPECT_EQ(seen[1].offset_blocks, 2u);
  EXPECT_EQ(seen[2].type, IoType::kFlush);
  EXPECT_EQ(seen[3].type, IoType::kUnmap);
  EXPECT_EQ(seen[3].offset_blocks, 5u);
  EXPECT_EQ(seen[3].num_blocks, 6u);
  EXPECT_EQ(seen[4].type, IoType::kWriteZeroes);
  EXPECT_EQ(seen[4].num_blocks, 8u);
  EXPECT_EQ(seen[5].type, IoType::kReset);
}

TEST_F(PassthruTest, TheBaseFailureReachesTheCallerAndUnsupportedTypesStayUnsupported) {
  TestBdev* base = CreateTestBase("Base0");  // read, write, flush, reset: no unmap
  ASSERT_NE(base, nullptr);
  ASSERT_TRUE(Create("Base0", "PT0").ok());
  EXPECT_FALSE(CallOn(app_thread(), [] { return FindBdev("PT0")->Supports(IoType::kUnmap); }));
  IoClient client(app_thread(), "PT0");
  ASSERT_TRUE(client.ok());
  std::vector<uint8_t> buf(512);
  base->fail_next = 1;
  EXPECT_EQ(client.Read(buf.data(), 0, 1), BdevIoStatus::kFailed);
  EXPECT_EQ(client.Read(buf.data(), 0, 1), BdevIoStatus::kSuccess);
  EXPECT_EQ(client.Unmap(0, 1), BdevIoStatus::kNotSupported);
}

TEST_F(PassthruTest, ASecondPassthruOnTheSameBaseFailsAndLeavesNothingBehind) {
  CreateMalloc("Malloc0");
  ASSERT_TRUE(Create("Malloc0", "PT0").ok());
  auto second = Create("Malloc0", "PT1");
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.status().message(),
              HasSubstr("bdev_passthru_create: cannot attach PT1 to Malloc0"));
  EXPECT_THAT(second.status().message(), HasSubstr("claimed by module passthru"));
  EXPECT_FALSE(Exists("PT1"));
  Json config = ModuleConfig();
  ASSERT_EQ(config.size(), 1u);
  EXPECT_EQ(config[0]["params"]["name"], "PT0");
  // The name is free again: the failed create kept nothing.
  CreateMalloc("Malloc1");
  EXPECT_TRUE(Create("Malloc1", "PT1").ok());
}

TEST_F(PassthruTest, AClaimedBaseCannotBeOpenedForWritingNorDeleted) {
  CreateMalloc("Malloc0");
  ASSERT_TRUE(Create("Malloc0", "PT0").ok());
  absl::Status writer = OpenOnApp("Malloc0", /*writable=*/true);
  EXPECT_EQ(writer.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(writer.message(), HasSubstr("claimed by module passthru"));
  EXPECT_TRUE(OpenOnApp("Malloc0", /*writable=*/false).ok());
  auto deleted = CallRpc("bdev_malloc_delete", {{"name", "Malloc0"}});
  ASSERT_FALSE(deleted.ok());
  EXPECT_THAT(deleted.status().message(), HasSubstr("claimed by module passthru"));
  EXPECT_TRUE(Exists("Malloc0"));
  EXPECT_TRUE(Exists("PT0"));
  // Once passthru is gone the base is free again.
  ASSERT_TRUE(DeletePassthru("PT0").ok());
  EXPECT_EQ(ClaimedBy("Malloc0"), "");
  EXPECT_TRUE(OpenOnApp("Malloc0", /*writable=*/true).ok());
  EXPECT_TRUE(CallRpc("bdev_malloc_delete", {{"name", "Malloc0"}}).ok());
}

TEST_F(PassthruTest, BadParametersAreRefusedClearly) {
  CreateMalloc("Malloc0");
  ASSERT_TRUE(Create("Malloc0", "PT0").ok());
  auto duplicate = Create("Malloc9", "PT0");
  ASSERT_FALSE(duplicate.ok());
  EXPECT_EQ(duplicate.status().message(), "bdev_passthru_create: bdev PT0 already exists");
  auto taken = Create("Malloc9", "Malloc0");
  ASSERT_FALSE(taken.ok());
  EXPECT_EQ(taken.status().message(), "bdev_passthru_create: bdev Malloc0 already exists");
  auto self = Create("X", "X");
  ASSERT_FALSE(self.ok());
  EXPECT_THAT(self.status().message(), HasSubstr("cannot be its own base"));
  auto uuid = Create("Malloc9", "PT1", "not-a-uuid");
  ASSERT_FALSE(uuid.ok());
  EXPECT_THAT(uuid.status().message(), HasSubstr("uuid \"not-a-uuid\" is not a UUID"));
  auto missing = CallRpc("bdev_passthru_create", {{"name", "PT1"}});
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("base_bdev_name"));
  auto unknown = CallRpc("bdev_passthru_create",
                         {{"base_bdev_name", "Malloc0"}, {"name", "PT1"}, {"colour", "red"}});
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(unknown.status().message(), HasSubstr("colour"));
  auto not_ours = DeletePassthru("Malloc0");
  ASSERT_FALSE(not_ours.ok());
  EXPECT_THAT(not_ours.status().message(),
              HasSubstr("bdev_passthru_delete: bdev Malloc0 is not a passthru bdev"));
  auto nothing = DeletePassthru("PT7");
  ASSERT_FALSE(nothing.ok());
  EXPECT_THAT(nothing.status().message(), HasSubstr("PT7 not found"));
  // Nothing of the refused calls stayed.
  EXPECT_EQ(ModuleConfig().size(), 1u);
}

TEST_F(PassthruTest, AMissingBaseIsAttachedWhenItAppears) {
  auto created = Create("Malloc3", "PT0");
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(*created, "PT0");
  EXPECT_FALSE(Exists("PT0"));
  ASSERT_EQ(ModuleConfig().size(), 1u);
  CreateMalloc("Malloc3", 128);
  EXPECT_TRUE(Exists("PT0"));
  EXPECT_EQ(ClaimedBy("Malloc3"), "passthru");
  EXPECT_EQ(CallOn(app_thread(), [] { return FindBdev("PT0")->block_count(); }), 128u);
  IoClient client(app_thread(), "PT0");
  std::vector<uint8_t> buf(512, 1);
  EXPECT_EQ(client.Write(buf.data(), 127, 1), BdevIoStatus::kSuccess);
}

TEST_F(PassthruTest, PassthruStacksOnPassthruInAnyOrder) {
  ASSERT_TRUE(Create("PT0", "PT1").ok());  // its base is itself still waiting for a base
  ASSERT_TRUE(Create("Malloc0", "PT0").ok());
  EXPECT_FALSE(Exists("PT1"));
  CreateMalloc("Malloc0");
  EXPECT_TRUE(Exists("PT0"));
  EXPECT_TRUE(Exists("PT1"));
  EXPECT_EQ(ClaimedBy("PT0"), "passthru");
  {
    IoClient top(app_thread(), "PT1");
    std::vector<uint8_t> out(1024, 0xab), in(1024, 0);
    EXPECT_EQ(top.Write(out.data(), 10, 2), BdevIoStatus::kSuccess);
    IoClient bottom(app_thread(), "Malloc0", /*writable=*/false);
    EXPECT_EQ(bottom.Read(in.data(), 10, 2), BdevIoStatus::kSuccess);
    EXPECT_EQ(in, out);
  }
  // Deleting the middle one is refused while the top one claims it.
  auto middle = DeletePassthru("PT0");
  ASSERT_FALSE(middle.ok());
  EXPECT_THAT(middle.status().message(), HasSubstr("claimed by module passthru"));
  ASSERT_TRUE(DeletePassthru("PT1").ok());
  ASSERT_TRUE(DeletePassthru("PT0").ok());
  EXPECT_EQ(ModuleConfig().size(), 0u);
}

TEST_F(PassthruTest, DeleteRemovesTheBdevAndItsConfiguration) {
  CreateMalloc("Malloc0");
  ASSERT_TRUE(Create("Malloc0", "PT0").ok());
  ASSERT_TRUE(Create("Malloc5", "PT5").ok());  // waiting for its base
  auto deleted = DeletePassthru("PT0");
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, true);
  EXPECT_FALSE(Exists("PT0"));
  EXPECT_EQ(ClaimedBy("Malloc0"), "");
  // A waiting one has no bdev: deleting it forgets it.
  EXPECT_TRUE(DeletePassthru("PT5").ok());
  EXPECT_EQ(ModuleConfig().size(), 0u);
  // Neither comes back when a base of that name registers again.
  ASSERT_TRUE(CallRpc("bdev_malloc_delete", {{"name", "Malloc0"}}).ok());
  CreateMalloc("Malloc0");
  CreateMalloc("Malloc5");
  EXPECT_FALSE(Exists("PT0"));
  EXPECT_FALSE(Exists("PT5"));
}

// The base goes away (its module removes it) while an I/O through passthru is at the base: the
// passthru bdev is removed, its user gets a remove event, the I/O completes, nothing hangs, and
// the passthru comes back when a base of that name returns (its configuration stays, as SPDK's).
TEST_F(PassthruTest, HotRemoveOfTheBaseWithIoInFlight) {
  TestBdev* base = CreateTestBase("Base0");
  ASSERT_NE(base, nullptr);
  ASSERT_TRUE(Create("Base0", "PT0").ok());
  Thread* io_thread = CreateThread("io", 1);
  auto client = std::make_unique<IoClient>(io_thread, "PT0");
  ASSERT_TRUE(client->ok());

  base->hold = true;
  std::vector<uint8_t> buf(512);
  PendingIo io;
  RunOn(io_thread, [&] {
    client->desc().Read(client->channel(), buf.data(), 3, 1, &PendingIo::Callback, &io);
  });
  ASSERT_TRUE(WaitUntil([&] { return base->held_count() == 1; }));

  std::atomic<bool> removed{false};
  RunOn(app_thread(), [&] {
    UnregisterBdev(*FindBdev("Base0"), [&](absl::Status s) {
      EXPECT_TRUE(s.ok()) << s;
      removed = true;
    });
  });
  // Passthru follows its base: our descriptor on it is told to go.
  ASSERT_TRUE(WaitUntil([&] { return client->remove_events() == 1; }));
  EXPECT_FALSE(io.done.load());
  EXPECT_FALSE(removed.load());
  // The base finishes the I/O; passthru completes it to us.
  EXPECT_EQ(CallOn(io_thread, [&] { return base->Release(); }), 1u);
  ASSERT_TRUE(WaitUntil([&] { return io.done.load(std::memory_order_acquire); }));
  EXPECT_EQ(io.status.load(), BdevIoStatus::kSuccess);
  // Closing the last descriptor lets passthru go, which closes the base, which lets it go.
  client.reset();
  ASSERT_TRUE(WaitUntil([&] { return removed.load(); }));
  EXPECT_FALSE(Exists("PT0"));
  EXPECT_FALSE(Exists("Base0"));
  ExitThread(io_thread);

  EXPECT_EQ(ModuleConfig().size(), 1u);
  ASSERT_NE(CreateTestBase("Base0"), nullptr);
  EXPECT_TRUE(Exists("PT0"));
}

TEST_F(PassthruTest, HotRemoveOfAnIdleBaseRemovesPassthruAtOnce) {
  CreateMalloc("Malloc0");
  ASSERT_TRUE(Create("Malloc0", "PT0").ok());
  // What a module does when its device disappears: UnregisterBdev, which ignores claims.
  std::atomic<bool> removed{false};
  RunOn(app_thread(),
        [&] { UnregisterBdev(*FindBdev("Malloc0"), [&](absl::Status) { removed = true; }); });
  ASSERT_TRUE(WaitUntil([&] { return removed.load(); }));
  EXPECT_FALSE(Exists("PT0"));
  EXPECT_FALSE(Exists("Malloc0"));
}

// The base grew (its module called NotifyBdevBlockCountChange): the passthru grows with it and
// its own descriptors get the resize event.
TEST_F(PassthruTest, AResizeOfTheBaseReachesThePassthruAndItsUsers) {
  TestBdev* base = CreateTestBase("Base0", /*blocks=*/64);
  ASSERT_NE(base, nullptr);
  ASSERT_TRUE(CallOn(app_thread(), [&] { return NotifyBdevBlockCountChange(*base, 32); }).ok());
  ASSERT_TRUE(Create("Base0", "PT0").ok());
  std::atomic<int> resizes{0};
  std::atomic<uint64_t> size_seen{0};
  auto desc = CallOn(app_thread(), [&] {
    return BdevDesc::Open("PT0", /*writable=*/false, [&](BdevEvent event, Bdev& bdev) {
      if (event != BdevEvent::kResize) return;
      size_seen = bdev.block_count();
      resizes.fetch_add(1);
    });
  });
  ASSERT_TRUE(desc.ok()) << desc.status();
  ASSERT_TRUE(CallOn(app_thread(), [&] { return NotifyBdevBlockCountChange(*base, 64); }).ok());
  ASSERT_TRUE(WaitUntil([&] { return resizes.load() == 1; }));
  EXPECT_EQ(size_seen.load(), 64u);
  EXPECT_EQ(CallOn(app_thread(), [] { return FindBdev("PT0")->block_count(); }), 64u);
  // A shrink of the base is refused while the passthru holds it open; both keep their size.
  EXPECT_FALSE(CallOn(app_thread(), [&] { return NotifyBdevBlockCountChange(*base, 16); }).ok());
  EXPECT_EQ(CallOn(app_thread(), [] { return FindBdev("PT0")->block_count(); }), 64u);
  RunOn(app_thread(), [&] { desc->reset(); });
}

TEST_F(PassthruTest, SaveConfigListsAttachedAndWaitingBdevsAndReplays) {
  const std::string uuid = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
  CreateMalloc("Malloc0");
  ASSERT_TRUE(Create("Malloc0", "PT0").ok());
  ASSERT_TRUE(Create("Malloc1", "PT1", uuid).ok());
  std::string pt0_uuid = CallOn(app_thread(), [] { return FindBdev("PT0")->uuid(); });
  Json config = ModuleConfig();
  Json expected = Json::array();
  expected.push_back(
      {{"method", "bdev_passthru_create"},
       {"params", {{"base_bdev_name", "Malloc0"}, {"name", "PT0"}, {"uuid", pt0_uuid}}}});
  expected.push_back(
      {{"method", "bdev_passthru_create"},
       {"params", {{"base_bdev_name", "Malloc1"}, {"name", "PT1"}, {"uuid", uuid}}}});
  EXPECT_EQ(config, expected);
  EXPECT_EQ(CallOn(app_thread(), [] { return PassthruModule::Get().config_order(); }), 1);

  // Replaying the entries after a delete gives the same bdevs back, UUID included.
  ASSERT_TRUE(DeletePassthru("PT0").ok());
  ASSERT_TRUE(DeletePassthru("PT1").ok());
  for (const Json& entry : config) {
    ASSERT_TRUE(CallRpc(entry["method"], entry["params"]).ok());
  }
  EXPECT_EQ(CallOn(app_thread(), [] { return FindBdev("PT0")->uuid(); }), pt0_uuid);
  CreateMalloc("Malloc1");
  EXPECT_EQ(CallOn(app_thread(), [] { return FindBdev("PT1")->uuid(); }), uuid);
  EXPECT_EQ(ModuleConfig(), expected);
}

}  // namespace
}  // namespace pollux::testing
