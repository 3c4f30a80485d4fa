// The RAID0 example module (examples/raid0) in a running bdev layer, over malloc bases created
// through RPC: where data lands on the bases, a RAID waiting for its bases, claims, hot removal
// of a base with I/O in flight (the error module holds it there), reassembly when the base
// comes back, delete, refused parameters, and the layer's shutdown with RAIDs configured.
#include <gmock/gmock.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "bdev_test_env.h"
#include "pollux/rpc/method_registry.h"
#include "raid0.h"
#include "raid0_layout.h"

namespace pollux::testing {
namespace {

using rpc::Json;
using ::testing::HasSubstr;

constexpr uint32_t kBlockSize = 512;

// The bytes RAID block `block` holds after being written in generation `generation`: every
// 8-byte word differs, so a block in the wrong place, or shifted, does not compare equal.
void FillBlock(uint8_t* out, uint64_t block, uint64_t generation) {
  for (uint64_t word = 0; word < kBlockSize / 8; ++word) {
    uint64_t value = (generation << 48) ^ (block << 16) ^ word ^ 0x5a5a000000000000;
    std::memcpy(out + word * 8, &value, 8);
  }
}

std::vector<uint8_t> Blocks(uint64_t offset, uint64_t count, uint64_t generation) {
  std::vector<uint8_t> data(count * kBlockSize);
  for (uint64_t i = 0; i < count; ++i) {
    FillBlock(data.data() + i * kBlockSize, offset + i, generation);
  }
  return data;
}

// bdev_raid_get_bdevs' base_bdevs_list for these names and is_configured values.
Json BaseList(const std::vector<std::pair<std::string, bool>>& bases) {
  Json list = Json::array();
  for (const auto& [name, configured] : bases) {
    list.push_back({{"name", name}, {"is_configured", configured}});
  }
  return list;
}

// Where RAID block `block` lies, as raid0_layout.h says: the one base whose range of that
// single block is not empty.
struct Place {
  uint32_t base;
  uint64_t block;
};
Place PlaceOf(uint64_t block, uint32_t base_count, uint32_t strip_shift) {
  for (uint32_t base = 0; base < base_count; ++base) {
    raid0::BaseRange range = raid0::RangeOnBase(block, 1, base, base_count, strip_shift);
    if (range.count != 0) return {base, range.offset};
  }
  ADD_FAILURE() << "RAID block " << block << " lies on no base";
  return {0, 0};
}

// Whether RAID blocks [offset, offset + count) touch base `base`.
bool Touches(uint64_t offset, uint64_t count, uint32_t base, uint32_t base_count,
             uint32_t strip_shift) {
  return raid0::RangeOnBase(offset, count, base, base_count, strip_shift).count != 0;
}

// An I/O submitted without waiting: counts its completions, so that one completed twice shows.
struct TrackedIo {
  uint64_t offset = 0;
  uint64_t count = 0;
  bool write = false;
  std::vector<uint8_t> buf;
  std::atomic<int> completions{0};
  std::atomic<BdevIoStatus> status{BdevIoStatus::kSuccess};
  static void Callback(void* arg, BdevIoStatus status, int /*error_number*/) {
    auto* io = static_cast<TrackedIo*>(arg);
    io->status.store(status, std::memory_order_relaxed);
    io->completions.fetch_add(1, std::memory_order_release);
  }
};

// Hears every bdev removal (on the app thread) and notes a base removed while the RAID module
// claims it with no RAID bdev registered: during a shutdown, that is a base claimed again after
// its RAID bdev went, which FiniStart must prevent.
class ShutdownWatcher final : public BdevModule {
 public:
  ShutdownWatcher() : BdevModule("raid0_test_shutdown_watcher") {}
  static ShutdownWatcher& Get();
  void OnBdevRemoved(Bdev& bdev) override {
    if (bdev.claimed_by() != &raid0::Raid0Module::Get()) return;
    for (const auto& raid : raid0::Raid0Module::Get().raids()) {
      if (raid->bdev != nullptr) return;
    }
    claimed_without_raid_bdev.push_back(bdev.name());
  }
  std::vector<std::string> claimed_without_raid_bdev;  // on the app thread
};
POLLUX_BDEV_MODULE(ShutdownWatcher);

class Raid0ModuleTest : public BdevTest {
 protected:
  void CreateMalloc(const std::string& name, uint64_t blocks, uint32_t block_size = kBlockSize) {
    auto created = CallRpc("bdev_malloc_create",
                           {{"name", name}, {"num_blocks", blocks}, {"block_size", block_size}});
    ASSERT_TRUE(created.ok()) << created.status();
  }
  absl::StatusOr<Json> CreateRaid(const std::string& name, uint64_t strip_size_kb,
                                  const std::vector<std::string>& bases) {
    return CallRpc("bdev_raid_create", {{"name", name},
                                        {"raid_level", "raid0"},
                                        {"strip_size_kb", strip_size_kb},
                                        {"base_bdevs", bases}});
  }
  // Malloc0 and Malloc1 (64 blocks each) and Raid0 over them with 4 KiB strips: 128 blocks.
  void CreateRaidOverTwoMallocs() {
    CreateMalloc("Malloc0", 64);
    CreateMalloc("Malloc1", 64);
    auto created = CreateRaid("Raid0", 4, {"Malloc0", "Malloc1"});
    ASSERT_TRUE(created.ok()) << created.status();
  }
  // Writes generation 1 over the 128 blocks of Raid0 and returns what it wrote.
  std::vector<uint8_t> FillRaid() {
    std::vector<uint8_t> data = Blocks(0, 128, 1);
    IoClient raid(app_thread(), "Raid0");
    EXPECT_TRUE(raid.ok());
    if (raid.ok()) {
      EXPECT_EQ(raid.Write(data.data(), 0, 128), BdevIoStatus::kSuccess);
    }
    return data;
  }
  absl::StatusOr<Json> DeleteRaid(const std::string& name) {
    return CallRpc("bdev_raid_delete", {{"name", name}});
  }
  // bdev_raid_get_bdevs of `category`; an RPC error fails the test.
  Json Raids(const std::string& category = "all") {
    auto raids = CallRpc("bdev_raid_get_bdevs", {{"category", category}});
    EXPECT_TRUE(raids.ok()) << raids.status();
    return raids.ok() ? *raids : Json();
  }
  // The RAID `name` as bdev_raid_get_bdevs lists it, or null when it is not listed.
  Json RaidEntry(const std::string& name) {
    for (const Json& raid : Raids()) {
      if (raid["name"] == name) return raid;
    }
    return Json();
  }
  std::string Uuid(const std::string& name) {
    return CallOn(app_thread(), [&]() -> std::string {
      Bdev* bdev = FindBdev(name);
      return bdev != nullptr ? bdev->uuid() : "";
    });
  }
  // A module's bdev going away as a device does: UnregisterBdev, which ignores claims. Waits
  // until it is gone.
  void HotRemove(const std::string& name) {
    std::atomic<bool> removed{false};
    absl::Status status;
    RunOn(app_thread(), [&] {
      UnregisterBdev(*FindBdev(name), [&](absl::Status s) {
        status = s;
        removed = true;
      });
    });
    ASSERT_TRUE(WaitUntil([&] { return removed.load(); })) << name << " was not removed";
    EXPECT_TRUE(status.ok()) << status;
  }
  // Whether a passthru bdev can be built on `base`: proof that nobody claims it.
  bool ClaimableByPassthru(const std::string& base) {
    auto created =
        CallRpc("bdev_passthru_create", {{"base_bdev_name", base}, {"name", "PT_" + base}});
    if (!created.ok()) return false;
    EXPECT_TRUE(CallRpc("bdev_passthru_delete", {{"name", "PT_" + base}}).ok());
    return true;
  }
  // What TearDown does, in the test body, so that the test can look at what is left after.
  void ShutDownLayer() {
    std::atomic<bool> done{false};
    RunOn(app_thread(), [&done] { FiniBdevLayer([&done] { done = true; }); });
    ASSERT_TRUE(WaitUntil([&] { return done.load(); })) << "FiniBdevLayer did not finish";
    ExpectLayerEmpty();
  }
  // After FiniBdevLayer: no bdev is left (none came back during the shutdown) and the module
  // forgot its RAIDs.
  void ExpectLayerEmpty() {
    EXPECT_FALSE(CallOn(app_thread(), [] { return BdevLayerInitialized(); }));
    EXPECT_EQ(CallOn(app_thread(), [] { return ListBdevs().size(); }), 0u);
    EXPECT_EQ(CallOn(app_thread(), [] { return raid0::Raid0Module::Get().raids().size(); }), 0u);
  }
};

// ---- 1. Data lands where RAID0 says ----

struct Geometry {
  uint64_t strip_size_kb;
  std::vector<uint64_t> base_blocks;  // one malloc base each
};
void PrintTo(const Geometry& geometry, std::ostream* out) {
  *out << "strip " << geometry.strip_size_kb << " KiB, bases of";
  for (uint64_t blocks : geometry.base_blocks) *out << " " << blocks;
  *out << " blocks";
}

class Raid0ModuleLayoutTest : public Raid0ModuleTest,
                              public ::testing::WithParamInterface<Geometry> {};

TEST_P(Raid0ModuleLayoutTest, DataLandsOnTheBasesWhereTheLayoutSays) {
  const Geometry& geometry = GetParam();
  const uint32_t base_count = static_cast<uint32_t>(geometry.base_blocks.size());
  const uint64_t strip_blocks = geometry.strip_size_kb * 1024 / kBlockSize;
  const uint32_t strip_shift = static_cast<uint32_t>(__builtin_ctzll(strip_blocks));
  std::vector<std::string> names;
  for (uint32_t i = 0; i < base_count; ++i) {
    names.push_back("Malloc" + std::to_string(i));
    CreateMalloc(names.back(), geometry.base_blocks[i]);
  }
  auto created = CreateRaid("Raid0", geometry.strip_size_kb, names);
  ASSERT_TRUE(created.ok()) << created.status();

  // Every base gives as many whole strips as the smallest one has.
  uint64_t smallest = *std::min_element(geometry.base_blocks.begin(), geometry.base_blocks.end());
  const uint64_t per_base = smallest / strip_blocks * strip_blocks;
  const uint64_t raid_blocks = per_base * base_count;
  BdevProperties properties = CallOn(app_thread(), [] { return FindBdev("Raid0")->properties(); });
  EXPECT_EQ(properties.block_count, raid_blocks);
  EXPECT_EQ(properties.block_size, kBlockSize);
  EXPECT_EQ(properties.optimal_io_boundary, strip_blocks);
  EXPECT_TRUE(properties.split_on_optimal_io_boundary);
  for (const std::string& name : names) EXPECT_EQ(ClaimedBy(name), "raid0");

  Thread* io_thread = CreateThread("io", 1);
  std::vector<uint8_t> shadow(raid_blocks * kBlockSize, 0);
  {
    IoClient raid(io_thread, "Raid0");
    ASSERT_TRUE(raid.ok());
    auto write = [&](uint64_t offset, uint64_t count, uint64_t generation) {
      std::vector<uint8_t> data = Blocks(offset, count, generation);
      ASSERT_EQ(raid.Write(data.data(), offset, count), BdevIoStatus::kSuccess)
          << "write of " << count << " blocks at " << offset;
      std::memcpy(shadow.data() + offset * kBlockSize, data.data(), data.size());
    };
    // The whole RAID in one request (the layer cuts it into one piece per strip), then pieces
    // on top: one strip exactly, one block inside a strip, ranges that start and end inside
    // strips and span several, the last block.
    write(0, raid_blocks, 1);
    write(strip_blocks, strip_blocks, 2);
    write(strip_blocks * 2 + 1, 1, 3);
    write(strip_blocks - 1, strip_blocks * 3 + 2, 4);
    write(raid_blocks - strip_blocks * base_count - 1, strip_blocks * base_count, 5);
    write(raid_blocks - 1, 1, 6);
    // Iovecs cut off the block boundaries: the layer bounces, then splits.
    {
      const uint64_t offset = strip_blocks / 2, count = strip_blocks * 2 + 1;
      std::vector<uint8_t> data = Blocks(offset, count, 7);
      std::vector<iovec> iovs = IovecsAtCuts(data.data(), data.size(), {100, 700, 1500});
      ASSERT_EQ(raid.Writev(iovs.data(), static_cast<int>(iovs.size()), offset, count),
                BdevIoStatus::kSuccess);
      std::memcpy(shadow.data() + offset * kBlockSize, data.data(), data.size());
    }
    // WRITE_ZEROES is not split by the layer: the RAID cuts it into one request per base.
    {
      const uint64_t offset = strip_blocks - 1, count = strip_blocks * (base_count + 1) + 2;
      ASSERT_EQ(raid.WriteZeroes(offset, count), BdevIoStatus::kSuccess);
      std::memset(shadow.data() + offset * kBlockSize, 0, count * kBlockSize);
    }

    // Each base read directly (a read-only open of a claimed bdev is allowed): every RAID
    // block is where the layout puts it, and the blocks past the RAID's share are untouched.
    for (uint32_t base = 0; base < base_count; ++base) {
      IoClient reader(io_thread, names[base], /*writable=*/false);
      ASSERT_TRUE(reader.ok());
      const uint64_t blocks = geometry.base_blocks[base];
      std::vector<uint8_t> disk(blocks * kBlockSize);
      ASSERT_EQ(reader.Read(disk.data(), 0, blocks), BdevIoStatus::kSuccess);
      std::vector<bool> used(blocks, false);
      for (uint64_t block = 0; block < raid_blocks; ++block) {
        Place place = PlaceOf(block, base_count, strip_shift);
        if (place.base != base) continue;
        ASSERT_LT(place.block, per_base);
        used[place.block] = true;
        ASSERT_EQ(std::memcmp(disk.data() + place.block * kBlockSize,
                              shadow.data() + block * kBlockSize, kBlockSize),
                  0)
            << "RAID block " << block << " is not at block " << place.block << " of "
            << names[base];
      }
      const std::vector<uint8_t> zero(kBlockSize, 0);
      for (uint64_t block = 0; block < blocks; ++block) {
        EXPECT_EQ(used[block], block < per_base) << names[base] << " block " << block;
        if (block >= per_base) {
          EXPECT_EQ(std::memcmp(disk.data() + block * kBlockSize, zero.data(), kBlockSize), 0)
              << names[base] << " block " << block << " is past the RAID but was written";
        }
      }
    }

    // Read back through the RAID: whole, and ranges across strips.
    std::vector<uint8_t> back(raid_blocks * kBlockSize);
    ASSERT_EQ(raid.Read(back.data(), 0, raid_blocks), BdevIoStatus::kSuccess);
    EXPECT_TRUE(back == shadow);
    for (uint64_t offset : {uint64_t{0}, strip_blocks - 1, strip_blocks * 2 + 1}) {
      const uint64_t count = std::min(strip_blocks * base_count + 3, raid_blocks - offset);
      std::vector<uint8_t> part(count * kBlockSize);
      ASSERT_EQ(raid.Read(part.data(), offset, count), BdevIoStatus::kSuccess);
      EXPECT_EQ(std::memcmp(part.data(), shadow.data() + offset * kBlockSize, part.size()), 0)
          << count << " blocks at " << offset;
    }
  }
  ExitThread(io_thread);
}

// Two bases (a power of two: the RAID shifts), three (it divides), four with a small strip,
// with bases of unequal sizes (the smallest sets the RAID's size, in whole strips).
INSTANTIATE_TEST_SUITE_P(Geometries, Raid0ModuleLayoutTest,
                         ::testing::Values(Geometry{4, {64, 80}}, Geometry{1, {41, 37, 48}},
                                           Geometry{2, {32, 35, 32, 40}}),
                         [](const ::testing::TestParamInfo<Geometry>& info) {
                           return std::to_string(info.param.base_blocks.size()) + "BasesStrip" +
                                  std::to_string(info.param.strip_size_kb) + "KiB";
                         });

// ---- 2. A RAID waits for its bases ----

TEST_F(Raid0ModuleTest, ARaidConfiguresUntilEveryBaseExistsThenComesOnline) {
  CreateMalloc("Malloc0", 64);
  auto created = CreateRaid("Raid0", 4, {"Malloc0", "Malloc1"});
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(*created, true);
  EXPECT_FALSE(Exists("Raid0"));
  EXPECT_EQ(ClaimedBy("Malloc0"), "raid0");  // present bases are claimed at once
  Json configuring = Raids("configuring");
  ASSERT_EQ(configuring.size(), 1u) << configuring.dump();
  EXPECT_EQ(configuring[0]["name"], "Raid0");
  EXPECT_EQ(configuring[0]["state"], "configuring");
  EXPECT_EQ(configuring[0]["raid_level"], "raid0");
  EXPECT_EQ(configuring[0]["strip_size_kb"], 4);
  EXPECT_EQ(configuring[0]["num_base_bdevs"], 2);
  EXPECT_EQ(configuring[0]["num_base_bdevs_discovered"], 1);
  EXPECT_EQ(configuring[0]["base_bdevs_list"], BaseList({{"Malloc0", true}, {"Malloc1", false}}));
  EXPECT_EQ(Raids("online").size(), 0u);
  EXPECT_EQ(Raids("offline").size(), 0u);

  // The missing base appears: examine claims it and the RAID registers its bdev.
  CreateMalloc("Malloc1", 64);
  EXPECT_TRUE(Exists("Raid0"));
  EXPECT_EQ(ClaimedBy("Malloc1"), "raid0");
  EXPECT_EQ(Raids("configuring").size(), 0u);
  Json online = Raids("online");
  ASSERT_EQ(online.size(), 1u) << online.dump();
  EXPECT_EQ(online[0]["state"], "online");
  EXPECT_EQ(online[0]["num_base_bdevs_discovered"], 2);
  EXPECT_EQ(CallOn(app_thread(), [] { return FindBdev("Raid0")->block_count(); }), 128u);

  IoClient raid(app_thread(), "Raid0");
  ASSERT_TRUE(raid.ok());
  std::vector<uint8_t> data = Blocks(3, 30, 1), back(data.size());
  ASSERT_EQ(raid.Write(data.data(), 3, 30), BdevIoStatus::kSuccess);
  ASSERT_EQ(raid.Read(back.data(), 3, 30), BdevIoStatus::kSuccess);
  EXPECT_TRUE(back == data);
}

TEST_F(Raid0ModuleTest, ARaidWithNoBasePresentAssemblesInWhateverOrderTheyAppear) {
  ASSERT_TRUE(CreateRaid("Raid0", 1, {"Malloc0", "Malloc1", "Malloc2"}).ok());
  EXPECT_EQ(RaidEntry("Raid0")["num_base_bdevs_discovered"], 0);
  CreateMalloc("Malloc2", 16);
  CreateMalloc("Malloc0", 16);
  EXPECT_EQ(RaidEntry("Raid0")["num_base_bdevs_discovered"], 2);
  EXPECT_FALSE(Exists("Raid0"));
  CreateMalloc("Malloc1", 16);
  EXPECT_EQ(RaidEntry("Raid0")["state"], "online");
  EXPECT_EQ(CallOn(app_thread(), [] { return FindBdev("Raid0")->block_count(); }), 48u);
}

// ---- 3. Claims ----

TEST_F(Raid0ModuleTest, AClaimedBaseCannotBeDeletedOpenedForWritingOrReused) {
  CreateRaidOverTwoMallocs();
  CreateMalloc("Malloc2", 64);
  std::vector<uint8_t> data = FillRaid();

  auto deleted = CallRpc("bdev_malloc_delete", {{"name", "Malloc0"}});
  ASSERT_FALSE(deleted.ok());
  EXPECT_EQ(deleted.status().message(),
            "bdev_malloc_delete: bdev Malloc0 is claimed by module raid0: delete the bdev built "
            "on it first");
  auto writer =
      CallOn(app_thread(), [] { return BdevDesc::Open("Malloc1", true, nullptr).status(); });
  EXPECT_EQ(writer.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(writer.message(), HasSubstr("claimed by module raid0"));
  auto passthru = CallRpc("bdev_passthru_create", {{"base_bdev_name", "Malloc1"}, {"name", "PT1"}});
  ASSERT_FALSE(passthru.ok());
  EXPECT_THAT(passthru.status().message(), HasSubstr("claimed by module raid0"));
  auto second = CreateRaid("Raid1", 4, {"Malloc2", "Malloc0"});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().message(),
            "bdev_raid_create: base bdev Malloc0 is already a base of Raid0");
  EXPECT_EQ(ClaimedBy("Malloc2"), "");  // the refused RAID claimed nothing

  // Nothing changed: both bases, the RAID online, its data.
  EXPECT_TRUE(Exists("Malloc0"));
  EXPECT_FALSE(Exists("PT1"));
  EXPECT_FALSE(Exists("Raid1"));
  EXPECT_EQ(Raids().size(), 1u);
  EXPECT_EQ(RaidEntry("Raid0")["state"], "online");
  EXPECT_EQ(ClaimedBy("Malloc0"), "raid0");
  IoClient raid(app_thread(), "Raid0");
  ASSERT_TRUE(raid.ok());
  std::vector<uint8_t> back(data.size());
  ASSERT_EQ(raid.Read(back.data(), 0, 128), BdevIoStatus::kSuccess);
  EXPECT_TRUE(back == data);
}

TEST_F(Raid0ModuleTest, TheBasesOfAConfiguringRaidAreClaimedToo) {
  CreateMalloc("Malloc0", 64);
  ASSERT_TRUE(CreateRaid("Raid0", 4, {"Malloc0", "Malloc1"}).ok());
  auto deleted = CallRpc("bdev_malloc_delete", {{"name", "Malloc0"}});
  ASSERT_FALSE(deleted.ok());
  EXPECT_THAT(deleted.status().message(), HasSubstr("claimed by module raid0"));
  EXPECT_TRUE(Exists("Malloc0"));
  EXPECT_EQ(RaidEntry("Raid0")["num_base_bdevs_discovered"], 1);
}

// ---- 4. and 5. Hot removal of a base with I/O in flight, and reassembly ----

// A RAID over EE_Malloc0 and EE_Malloc1 (error bdevs over mallocs), strips of 8 blocks, I/Os
// held at both error bdevs when EE_Malloc0 goes away.
class Raid0ModuleHotRemoveTest : public Raid0ModuleTest {
 protected:
  static constexpr uint32_t kStripShift = 3;  // strips of 8 blocks
  static constexpr uint64_t kRaidBlocks = 128;

  void SetUp() override {
    Raid0ModuleTest::SetUp();
    if (HasFatalFailure()) return;
    for (const char* name : {"Malloc0", "Malloc1"}) {
      CreateMalloc(name, kRaidBlocks / 2);
      auto created = CallRpc("bdev_error_create", {{"base_name", name}});
      ASSERT_TRUE(created.ok()) << created.status();
    }
    ASSERT_TRUE(CreateRaid("Raid0", 4, {"EE_Malloc0", "EE_Malloc1"}).ok());
    raid_uuid_ = Uuid("Raid0");
    ASSERT_FALSE(raid_uuid_.empty());
  }

  // Writes generation 1 over the RAID, holds a set of reads and writes at both error bdevs,
  // removes EE_Malloc0 (UnregisterBdev, as a device that disappears), then lets EE_Malloc1's
  // held I/Os go. Checks every I/O completed exactly once: those with a piece on EE_Malloc0
  // aborted, the others successfully; that the RAID bdev went and its client was told.
  void HotRemoveWithIoInFlight() {
    Thread* io_thread = CreateThread("io", 1);
    auto client = std::make_unique<IoClient>(io_thread, "Raid0");
    ASSERT_TRUE(client->ok());
    std::vector<uint8_t> reference = Blocks(0, kRaidBlocks, 1);
    ASSERT_EQ(client->Write(reference.data(), 0, kRaidBlocks), BdevIoStatus::kSuccess);
    model_ = reference;

    for (const char* name : {"EE_Malloc0", "EE_Malloc1"}) {
      auto injected = CallRpc(
          "bdev_error_inject_error",
          {{"name", name}, {"io_type", "all"}, {"error_type", "pending"}, {"always", true}});
      ASSERT_TRUE(injected.ok()) << injected.status();
    }
    // Disjoint ranges: on base 0 only, base 1 only, or on both (split by the layer).
    struct Range {
      uint64_t offset, count;
      bool write;
    };
    const Range ranges[] = {{0, 8, true},   {8, 8, true},    {20, 24, true}, {48, 8, false},
                            {72, 8, false}, {80, 20, false}, {104, 8, true}, {121, 3, true}};
    std::vector<std::unique_ptr<TrackedIo>> ios;
    for (const Range& range : ranges) {
      auto io = std::make_unique<TrackedIo>();
      io->offset = range.offset;
      io->count = range.count;
      io->write = range.write;
      io->buf = range.write ? Blocks(range.offset, range.count, 2)
                            : std::vector<uint8_t>(range.count * kBlockSize);
      ios.push_back(std::move(io));
    }
    // Submitted in one go on the I/O thread: the layer cuts every piece and forwards it to its
    // error bdev within the submission call (fewer than its 32 children in flight).
    RunOn(io_thread, [&] {
      for (auto& io : ios) {
        if (io->write) {
          client->desc().Write(client->channel(), io->buf.data(), io->offset, io->count,
                               &TrackedIo::Callback, io.get());
        } else {
          client->desc().Read(client->channel(), io->buf.data(), io->offset, io->count,
                              &TrackedIo::Callback, io.get());
        }
      }
    });
    WaitForIterations(io_thread, 20);
    for (const auto& io : ios) {
      ASSERT_EQ(io->completions.load(), 0) << "I/O at " << io->offset << " was not held";
    }

    // EE_Malloc0 goes: its held pieces are aborted, the RAID unregisters, its client is told.
    std::atomic<bool> removed{false};
    RunOn(app_thread(), [&] {
      UnregisterBdev(*FindBdev("EE_Malloc0"), [&](absl::Status s) {
        EXPECT_TRUE(s.ok()) << s;
        removed = true;
      });
    });
    ASSERT_TRUE(WaitUntil([&] { return client->remove_events() == 1; }));
    for (const auto& io : ios) {
      if (!Touches(io->offset, io->count, 0, 2, kStripShift)) continue;
      // Its EE_Malloc0 pieces are back; those on EE_Malloc1 still held.
      const bool on_base1 = Touches(io->offset, io->count, 1, 2, kStripShift);
      if (!on_base1) {
        ASSERT_TRUE(WaitUntil([&] { return io->completions.load() == 1; }))
            << "I/O at " << io->offset << " was lost";
      }
    }
    for (const auto& io : ios) {
      if (Touches(io->offset, io->count, 1, 2, kStripShift)) {
        EXPECT_EQ(io->completions.load(), 0) << "I/O at " << io->offset;
      }
    }
    EXPECT_FALSE(removed.load());  // the RAID still has its client, so still its base

    // What is held on the surviving base goes on to Malloc1 and completes.
    auto resumed = CallRpc("bdev_error_resume_pending", {{"name", "EE_Malloc1"}});
    ASSERT_TRUE(resumed.ok()) << resumed.status();
    for (const auto& io : ios) {
      ASSERT_TRUE(WaitUntil([&] { return io->completions.load(std::memory_order_acquire) >= 1; }))
          << "I/O at " << io->offset << " was lost";
    }
    WaitForIterations(io_thread, 20);
    for (const auto& io : ios) {
      EXPECT_EQ(io->completions.load(), 1) << "I/O at " << io->offset;
      const bool on_base0 = Touches(io->offset, io->count, 0, 2, kStripShift);
      EXPECT_EQ(io->status.load(), on_base0 ? BdevIoStatus::kAborted : BdevIoStatus::kSuccess)
          << "I/O at " << io->offset;
      if (!on_base0 && !io->write) {
        EXPECT_EQ(
            std::memcmp(io->buf.data(), reference.data() + io->offset * kBlockSize, io->buf.size()),
            0)
            << "read at " << io->offset;
      }
      // What the bases now hold: a write's pieces on base 1 reached Malloc1; those on base 0
      // were aborted before reaching Malloc0.
      if (io->write) {
        for (uint64_t i = 0; i < io->count; ++i) {
          const uint64_t block = io->offset + i;
          if (PlaceOf(block, 2, kStripShift).base == 1) {
            std::memcpy(model_.data() + block * kBlockSize, io->buf.data() + i * kBlockSize,
                        kBlockSize);
          }
        }
      }
    }

    // The RAID bdev goes once its client closes, and then EE_Malloc0.
    client.reset();
    ASSERT_TRUE(WaitUntil([&] { return removed.load(); }));
    EXPECT_FALSE(Exists("Raid0"));
    EXPECT_FALSE(Exists("EE_Malloc0"));
    ExitThread(io_thread);
  }

  // Reads the whole RAID and compares it with model_.
  void ExpectRaidHoldsTheModel() {
    IoClient raid(app_thread(), "Raid0");
    ASSERT_TRUE(raid.ok());
    std::vector<uint8_t> back(kRaidBlocks * kBlockSize);
    ASSERT_EQ(raid.Read(back.data(), 0, kRaidBlocks), BdevIoStatus::kSuccess);
    for (uint64_t block = 0; block < kRaidBlocks; ++block) {
      EXPECT_EQ(std::memcmp(back.data() + block * kBlockSize, model_.data() + block * kBlockSize,
                            kBlockSize),
                0)
          << "RAID block " << block;
    }
  }

  std::string raid_uuid_;
  std::vector<uint8_t> model_;  // what the RAID's blocks hold on the bases
};

TEST_F(Raid0ModuleHotRemoveTest, EveryIoInFlightCompletesOnceAndTheRaidGoesBackToConfiguring) {
  HotRemoveWithIoInFlight();
  if (HasFatalFailure()) return;
  // As README.md says: the bases still there are claimed again and the RAID waits, configuring,
  // for the missing one (the claim comes back through a message once the RAID bdev is gone).
  ASSERT_TRUE(WaitUntil([&] { return ClaimedBy("EE_Malloc1") == "raid0"; }));
  Json raid = RaidEntry("Raid0");
  EXPECT_EQ(raid["state"], "configuring");
  EXPECT_EQ(raid["num_base_bdevs_discovered"], 1);
  EXPECT_EQ(raid["base_bdevs_list"], BaseList({{"EE_Malloc0", false}, {"EE_Malloc1", true}}));
  EXPECT_EQ(Raids("configuring").size(), 1u);
  EXPECT_EQ(Raids("online").size(), 0u);
  // The removed base's own base is free; the surviving base stays the RAID's until it is
  // deleted.
  EXPECT_EQ(ClaimedBy("Malloc0"), "");
  auto refused = CallRpc("bdev_error_delete", {{"name", "EE_Malloc1"}});
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("claimed by module raid0"));

  // Deleting the configuring RAID drops that claim: the base can be claimed by another module
  // and deleted.
  auto deleted = DeleteRaid("Raid0");
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(ClaimedBy("EE_Malloc1"), "");
  EXPECT_EQ(Raids().size(), 0u);
  EXPECT_TRUE(ClaimableByPassthru("EE_Malloc1"));
  EXPECT_TRUE(CallRpc("bdev_error_delete", {{"name", "EE_Malloc1"}}).ok());
  EXPECT_TRUE(CallRpc("bdev_malloc_delete", {{"name", "Malloc1"}}).ok());
  EXPECT_TRUE(CallRpc("bdev_malloc_delete", {{"name", "Malloc0"}}).ok());
}

TEST_F(Raid0ModuleHotRemoveTest, TheRaidComesBackOnlineWhenTheRemovedBaseReturns) {
  HotRemoveWithIoInFlight();
  if (HasFatalFailure()) return;
  ASSERT_TRUE(WaitUntil([&] { return ClaimedBy("EE_Malloc1") == "raid0"; }));
  // EE_Malloc0 again, with the same name: the error module still remembers its configuration
  // (only its bdev went), so it is forgotten and created again over the same Malloc0.
  ASSERT_TRUE(CallRpc("bdev_error_delete", {{"name", "EE_Malloc0"}}).ok());
  ASSERT_TRUE(CallRpc("bdev_error_create", {{"base_name", "Malloc0"}}).ok());
  EXPECT_TRUE(Exists("Raid0"));
  EXPECT_EQ(RaidEntry("Raid0")["state"], "online");
  EXPECT_EQ(RaidEntry("Raid0")["num_base_bdevs_discovered"], 2);
  EXPECT_EQ(ClaimedBy("EE_Malloc0"), "raid0");
  EXPECT_EQ(ClaimedBy("EE_Malloc1"), "raid0");
  EXPECT_EQ(Uuid("Raid0"), raid_uuid_);  // the RAID keeps its identity
  // Its data: the bases' blocks never went away (the mallocs stayed), with what the I/Os in
  // flight left on them.
  ExpectRaidHoldsTheModel();
}

TEST_F(Raid0ModuleTest, AnIdleBaseRemovedAndCreatedAgainReassemblesTheRaid) {
  CreateRaidOverTwoMallocs();
  const std::string uuid = Uuid("Raid0");
  std::vector<uint8_t> data = FillRaid();
  HotRemove("Malloc1");
  EXPECT_FALSE(Exists("Raid0"));
  ASSERT_TRUE(WaitUntil([&] { return ClaimedBy("Malloc0") == "raid0"; }));
  EXPECT_EQ(RaidEntry("Raid0")["state"], "configuring");

  CreateMalloc("Malloc1", 64);  // a new, zeroed disk of the same name
  ASSERT_TRUE(Exists("Raid0"));
  EXPECT_EQ(RaidEntry("Raid0")["state"], "online");
  EXPECT_EQ(Uuid("Raid0"), uuid);
  IoClient raid(app_thread(), "Raid0");
  ASSERT_TRUE(raid.ok());
  std::vector<uint8_t> back(data.size());
  ASSERT_EQ(raid.Read(back.data(), 0, 128), BdevIoStatus::kSuccess);
  const std::vector<uint8_t> zero(kBlockSize, 0);
  for (uint64_t block = 0; block < 128; ++block) {
    const uint8_t* expected =
        PlaceOf(block, 2, 3).base == 0 ? data.data() + block * kBlockSize : zero.data();
    EXPECT_EQ(std::memcmp(back.data() + block * kBlockSize, expected, kBlockSize), 0)
        << "RAID block " << block;
  }
}

// ---- 6. Delete, and refused parameters ----

TEST_F(Raid0ModuleTest, DeleteReleasesTheBasesAndForgetsTheRaid) {
  CreateRaidOverTwoMallocs();
  FillRaid();
  auto deleted = DeleteRaid("Raid0");
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, true);
  EXPECT_FALSE(Exists("Raid0"));
  EXPECT_EQ(Raids().size(), 0u);
  EXPECT_EQ(ClaimedBy("Malloc0"), "");
  EXPECT_EQ(ClaimedBy("Malloc1"), "");

  auto again = DeleteRaid("Raid0");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().message(), "bdev_raid_delete: no RAID named Raid0");
  auto unknown = DeleteRaid("Nope");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().message(), "bdev_raid_delete: no RAID named Nope");
  auto no_name = CallRpc("bdev_raid_delete", Json::object());
  ASSERT_FALSE(no_name.ok());
  EXPECT_THAT(no_name.status().message(), HasSubstr("name"));

  // Forgotten: a base that goes and comes back does not bring it back.
  EXPECT_TRUE(ClaimableByPassthru("Malloc0"));
  ASSERT_TRUE(CallRpc("bdev_malloc_delete", {{"name", "Malloc1"}}).ok());
  CreateMalloc("Malloc1", 64);
  EXPECT_FALSE(Exists("Raid0"));
  EXPECT_TRUE(CallRpc("bdev_malloc_delete", {{"name", "Malloc0"}}).ok());
  EXPECT_TRUE(CallRpc("bdev_malloc_delete", {{"name", "Malloc1"}}).ok());
}

// bdev_raid_delete while the RAID bdev is already going because a base is (a client still has
// it open): the delete is answered once the bdev is gone, and the RAID is forgotten instead of
// claiming its bases again.
TEST_F(Raid0ModuleTest, DeleteWhileTheRaidBdevGoesWithItsBaseForgetsTheRaid) {
  CreateRaidOverTwoMallocs();
  auto client = std::make_unique<IoClient>(app_thread(), "Raid0");
  ASSERT_TRUE(client->ok());
  std::atomic<bool> removed{false};
  RunOn(app_thread(),
        [&] { UnregisterBdev(*FindBdev("Malloc1"), [&](absl::Status) { removed = true; }); });
  ASSERT_TRUE(WaitUntil([&] { return client->remove_events() == 1; }));
  std::atomic<bool> replied{false};
  rpc::RpcReply reply;
  RunOn(app_thread(), [&] {
    rpc::MethodRegistry::Global().Call("bdev_raid_delete", {{"name", "Raid0"}},
                                       [&](rpc::RpcReply r) {
                                         reply = std::move(r);
                                         replied = true;
                                       });
  });
  WaitForIterations(app_thread(), 20);
  EXPECT_FALSE(replied.load());  // the RAID bdev waits for its client
  client.reset();
  ASSERT_TRUE(WaitUntil([&] { return replied.load(); }));
  EXPECT_TRUE(reply.ok) << reply.message;
  ASSERT_TRUE(WaitUntil([&] { return removed.load(); }));
  WaitForIterations(app_thread(), 20);  // a claim sent by message would have come by now
  EXPECT_EQ(Raids().size(), 0u);
  EXPECT_EQ(ClaimedBy("Malloc0"), "");
  CreateMalloc("Malloc1", 64);
  EXPECT_FALSE(Exists("Raid0"));
  EXPECT_TRUE(CallRpc("bdev_malloc_delete", {{"name", "Malloc0"}}).ok());
}

TEST_F(Raid0ModuleTest, DeleteOfAConfiguringRaidReleasesTheBasesPresent) {
  CreateMalloc("Malloc0", 64);
  ASSERT_TRUE(CreateRaid("Raid0", 4, {"Malloc0", "Malloc1"}).ok());
  ASSERT_TRUE(DeleteRaid("Raid0").ok());
  EXPECT_EQ(Raids().size(), 0u);
  EXPECT_EQ(ClaimedBy("Malloc0"), "");
  CreateMalloc("Malloc1", 64);  // no longer awaited
  EXPECT_FALSE(Exists("Raid0"));
  EXPECT_EQ(ClaimedBy("Malloc1"), "");
  EXPECT_TRUE(CallRpc("bdev_malloc_delete", {{"name", "Malloc0"}}).ok());
}

TEST_F(Raid0ModuleTest, DeleteIsRefusedWhileSomethingIsBuiltOnTheRaid) {
  CreateRaidOverTwoMallocs();
  ASSERT_TRUE(CallRpc("bdev_passthru_create", {{"base_bdev_name", "Raid0"}, {"name", "PT0"}}).ok());
  auto refused = DeleteRaid("Raid0");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().message(),
            "bdev_raid_delete: bdev Raid0 is claimed by module passthru: delete the bdev built on "
            "it first");
  EXPECT_TRUE(Exists("Raid0"));
  EXPECT_EQ(RaidEntry("Raid0")["state"], "online");
  EXPECT_EQ(ClaimedBy("Malloc0"), "raid0");
  // Nothing was left half-deleted: once passthru is gone the delete goes through.
  ASSERT_TRUE(CallRpc("bdev_passthru_delete", {{"name", "PT0"}}).ok());
  ASSERT_TRUE(DeleteRaid("Raid0").ok());
  EXPECT_EQ(ClaimedBy("Malloc0"), "");
}

TEST_F(Raid0ModuleTest, BadCreateParametersAreRefusedAndLeaveNothingBehind) {
  CreateMalloc("Malloc0", 64);
  CreateMalloc("Malloc1", 64);
  CreateMalloc("Big0", 64, 4096);
  CreateMalloc("Tiny0", 4);
  CreateMalloc("Taken0", 64);
  ASSERT_TRUE(
      CallRpc("bdev_passthru_create", {{"base_bdev_name", "Taken0"}, {"name", "PT0"}}).ok());
  const Json two = {"Malloc0", "Malloc1"};
  struct Case {
    Json params;
    std::string message;
  };
  const Case cases[] = {
      {{{"raid_level", "raid0"}, {"strip_size_kb", 3}, {"base_bdevs", two}},
       "bdev_raid_create: strip_size_kb 3: expected a power of two from 1 to 1048576"},
      {{{"raid_level", "raid0"}, {"strip_size_kb", 0}, {"base_bdevs", two}},
       "bdev_raid_create: strip_size_kb 0: expected a power of two from 1 to 1048576"},
      {{{"raid_level", "raid0"}, {"strip_size_kb", 4}, {"base_bdevs", Json::array()}},
       "bdev_raid_create: base_bdevs is empty"},
      {{{"raid_level", "raid0"}, {"strip_size_kb", 4}, {"base_bdevs", "  "}},
       "bdev_raid_create: base_bdevs is empty"},
      {{{"raid_level", "raid0"}, {"strip_size_kb", 4}},
       "bdev_raid_create: missing parameter \"base_bdevs\""},
      {{{"raid_level", "raid0"},
        {"strip_size_kb", 4},
        {"base_bdevs", {"Malloc0", "Malloc1", "Malloc0"}}},
       "bdev_raid_create: base bdev Malloc0 is named twice"},
      {{{"raid_level", "raid0"}, {"strip_size_kb", 4}, {"base_bdevs", "Malloc1 Malloc1"}},
       "bdev_raid_create: base bdev Malloc1 is named twice"},
      {{{"raid_level", "mirror"}, {"strip_size_kb", 4}, {"base_bdevs", two}},
       "bdev_raid_create: raid_level \"mirror\": this module makes raid0 only"},
      {{{"raid_level", "raid5"}, {"strip_size_kb", 4}, {"base_bdevs", two}},
       "bdev_raid_create: raid_level \"raid5\": this module makes raid0 only"},
      {{{"raid_level", "raid0"}, {"strip_size_kb", 4}, {"base_bdevs", two}, {"superblock", true}},
       "bdev_raid_create: superblock: not supported by this module"},
      {{{"raid_level", "raid0"}, {"strip_size_kb", 4}, {"base_bdevs", two}, {"uuid", "xyz"}},
       "bdev_raid_create: uuid \"xyz\" is not a UUID"},
      {{{"raid_level", "raid0"}, {"strip_size_kb", 4}, {"base_bdevs", {"Malloc0", "Raid0"}}},
       "bdev_raid_create: Raid0 cannot be its own base"},
      {{{"raid_level", "raid0"}, {"strip_size_kb", 4}, {"base_bdevs", {"Malloc0", 7}}},
       "bdev_raid_create: parameter \"base_bdevs\": every entry must be a string"},
      // These fail after claiming the first bases: the claims must be dropped.
      {{{"raid_level", "raid0"}, {"strip_size_kb", 4}, {"base_bdevs", {"Malloc0", "Taken0"}}},
       "bdev_raid_create: Raid0: base bdev Taken0: bdev Taken0 is claimed by module passthru: it "
       "cannot be opened for writing"},
      {{{"raid_level", "raid0"}, {"strip_size_kb", 4}, {"base_bdevs", {"Malloc0", "Big0"}}},
       "bdev_raid_create: Raid0: base bdevs Malloc0 and Big0 have different block sizes (512, "
       "4096)"},
      {{{"raid_level", "raid0"}, {"strip_size_kb", 1}, {"base_bdevs", {"Big0"}}},
       "bdev_raid_create: Raid0: strip_size_kb 1 is smaller than a block (4096 bytes)"},
      {{{"raid_level", "raid0"}, {"strip_size_kb", 4}, {"base_bdevs", {"Malloc1", "Tiny0"}}},
       "bdev_raid_create: Raid0: the smallest base bdev is smaller than one strip (4 KiB)"},
  };
  for (const Case& c : cases) {
    Json params = c.params;
    params["name"] = "Raid0";
    auto created = CallRpc("bdev_raid_create", params);
    ASSERT_FALSE(created.ok()) << params.dump();
    EXPECT_EQ(created.status().message(), c.message) << params.dump();
    EXPECT_FALSE(Exists("Raid0")) << params.dump();
    EXPECT_EQ(Raids().size(), 0u) << params.dump();
    for (const char* base : {"Malloc0", "Malloc1", "Big0", "Tiny0"}) {
      EXPECT_EQ(ClaimedBy(base), "") << base << " after " << params.dump();
    }
  }
  // No claim and no configuration was left behind: the bases are deleted, and a RAID of that
  // name and those bases can still be made.
  for (const char* base : {"Big0", "Tiny0"}) {
    EXPECT_TRUE(CallRpc("bdev_malloc_delete", {{"name", base}}).ok()) << base;
  }
  ASSERT_TRUE(CreateRaid("Raid0", 4, {"Malloc0", "Malloc1"}).ok());
  ASSERT_TRUE(DeleteRaid("Raid0").ok());
  for (const char* base : {"Malloc0", "Malloc1"}) {
    EXPECT_TRUE(CallRpc("bdev_malloc_delete", {{"name", base}}).ok()) << base;
  }
}

TEST_F(Raid0ModuleTest, ANameInUseIsRefused) {
  CreateMalloc("Malloc0", 64);
  CreateMalloc("Malloc1", 64);
  ASSERT_TRUE(CreateRaid("Raid0", 4, {"Malloc0", "Missing0"}).ok());
  auto twice = CreateRaid("Raid0", 4, {"Malloc1"});
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.status().message(), "bdev_raid_create: bdev Raid0 already exists");
  auto bdev_name = CreateRaid("Malloc1", 4, {"Missing1"});
  ASSERT_FALSE(bdev_name.ok());
  EXPECT_EQ(bdev_name.status().message(), "bdev_raid_create: bdev Malloc1 already exists");
  EXPECT_EQ(Raids().size(), 1u);
  EXPECT_EQ(ClaimedBy("Malloc1"), "");
}

// ---- 7. The layer's shutdown with RAIDs configured ----

TEST_F(Raid0ModuleTest, ShutdownWithAnOnlineRaidFinishes) {
  CreateRaidOverTwoMallocs();
  ASSERT_TRUE(Exists("Raid0"));
  ShutDownLayer();
}

TEST_F(Raid0ModuleTest, ShutdownWithConfiguringRaidsHoldingClaimsFinishes) {
  // One RAID never complete, one back to configuring after a base went: both hold claims
  // on bases with no RAID bdev above them.
  CreateMalloc("Malloc0", 64);
  CreateMalloc("Malloc1", 64);
  CreateMalloc("Malloc2", 64);
  ASSERT_TRUE(CreateRaid("Raid0", 4, {"Malloc0", "Malloc1"}).ok());
  ASSERT_TRUE(CreateRaid("Raid1", 4, {"Malloc2", "Missing0"}).ok());
  HotRemove("Malloc1");
  ASSERT_TRUE(WaitUntil([&] { return ClaimedBy("Malloc0") == "raid0"; }));
  EXPECT_EQ(ClaimedBy("Malloc2"), "raid0");
  EXPECT_EQ(Raids("configuring").size(), 2u);
  ShutDownLayer();
}

// The regression of 59d5149: the shutdown begins while a base is going away under an online
// RAID that a client still has open, so the RAID bdev goes for its base's sake during the
// shutdown. The module must not claim its bases again then (nor register its bdev again): the
// shutdown would have to take them back from it.
TEST_F(Raid0ModuleTest, ShutdownDuringTheHotRemovalOfABaseFinishesWithNothingLeft) {
  CreateMalloc("Malloc0", 64);
  CreateMalloc("Malloc1", 64);
  CreateMalloc("Malloc2", 64);
  ASSERT_TRUE(CreateRaid("Raid0", 4, {"Malloc0", "Malloc1", "Malloc2"}).ok());
  Thread* io_thread = CreateThread("io", 1);
  auto client = std::make_unique<IoClient>(io_thread, "Raid0");
  ASSERT_TRUE(client->ok());
  std::atomic<bool> removed{false};
  std::atomic<bool> finished{false};
  RunOn(app_thread(), [&] {
    ShutdownWatcher::Get().claimed_without_raid_bdev.clear();
    UnregisterBdev(*FindBdev("Malloc1"), [&](absl::Status) { removed = true; });
    FiniBdevLayer([&] { finished = true; });
  });
  ASSERT_TRUE(WaitUntil([&] { return client->remove_events() == 1; }));
  EXPECT_FALSE(finished.load());  // the RAID bdev waits for its client
  client.reset();
  ASSERT_TRUE(WaitUntil([&] { return finished.load(); })) << "FiniBdevLayer did not finish";
  EXPECT_TRUE(removed.load());
  ExpectLayerEmpty();
  EXPECT_THAT(CallOn(app_thread(), [] { return ShutdownWatcher::Get().claimed_without_raid_bdev; }),
              ::testing::IsEmpty())
      << "bases claimed again after the RAID bdev went, during the shutdown";
  ExitThread(io_thread);
}

}  // namespace
}  // namespace pollux::testing
