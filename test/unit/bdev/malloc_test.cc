// The malloc bdev module: bdev_malloc_create / bdev_malloc_delete (every bad input, generated
// names, memory exhaustion without leaks), data integrity with random offsets, lengths and
// iovec splits against a shadow copy, zeroing, I/O past the end, and save_config round trips.
#include <gmock/gmock.h>
#include <rte_eal.h>
#include <rte_malloc.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "bdev_test_env.h"
#include "pollux/bdev_malloc/bdev_malloc.h"
#include "pollux/bdev_null/bdev_null.h"
#include "pollux/env/io_memory.h"

namespace pollux::testing {
namespace {

using rpc::Json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr uint64_t kMiB = 1 << 20;

// Bytes held in every DPDK heap plus what IoMemory holds from the kernel (a malloc bdev's memory
// without hugepages). Nothing else allocates while a test waits on an RPC, so equal values
// before and after an operation mean it leaked nothing.
uint64_t HeldBytes() {
  uint64_t held = IoMemory::KernelBytesHeld();
  for (unsigned i = 0; i < rte_socket_count(); ++i) {
    rte_malloc_socket_stats stats{};
    if (rte_malloc_get_socket_stats(rte_socket_id_by_idx(i), &stats) == 0) {
      held += stats.heap_allocsz_bytes;
    }
  }
  return held;
}

class MallocBdevTest : public BdevTest {
 protected:
  absl::StatusOr<Json> Create(Json params) { return CallRpc("bdev_malloc_create", params); }

  std::optional<BdevProperties> Properties(const std::string& name) {
    return CallOn(app_thread(), [&]() -> std::optional<BdevProperties> {
      Bdev* bdev = FindBdev(name);
      if (bdev == nullptr) return std::nullopt;
      return bdev->properties();
    });
  }
  size_t BdevCount() {
    return CallOn(app_thread(), [] { return ListBdevs().size(); });
  }
  Json ModuleConfig() {
    return CallOn(app_thread(), [] {
      Json config = Json::array();
      MallocModule::Get().WriteConfig(config);
      return config;
    });
  }
};

TEST_F(MallocBdevTest, CreateRegistersAZeroedDiskAndDeleteFreesIt) {
  uint64_t held_before = CallOn(app_thread(), HeldBytes);
  auto created = Create({{"name", "Malloc7"}, {"num_blocks", 2048}, {"block_size", 4096}});
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(*created, "Malloc7");
  auto props = Properties("Malloc7");
  ASSERT_TRUE(props.has_value());
  EXPECT_EQ(props->block_size, 4096u);
  EXPECT_EQ(props->block_count, 2048u);
  EXPECT_EQ(props->product_name, "Malloc disk");
  EXPECT_FALSE(props->write_cache);
  EXPECT_FALSE(props->split_on_optimal_io_boundary);
  EXPECT_TRUE(CallOn(app_thread(), [] {
    return &FindBdev("Malloc7")->module() == &MallocModule::Get() &&
           FindBdevModule("malloc") == &MallocModule::Get();
  }));
  EXPECT_GE(CallOn(app_thread(), HeldBytes), held_before + 8 * kMiB);
  auto deleted = CallRpc("bdev_malloc_delete", {{"name", "Malloc7"}});
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, true);
  EXPECT_FALSE(Properties("Malloc7").has_value());
  EXPECT_EQ(CallOn(app_thread(), HeldBytes), held_before);
}

TEST_F(MallocBdevTest, ANewDiskReadsZeroes) {
  ASSERT_TRUE(Create({{"name", "Malloc0"}, {"num_blocks", 2048}, {"block_size", 4096}}).ok());
  {
    IoClient client(app_thread(), "Malloc0");
    ASSERT_TRUE(client.ok());
    std::vector<uint8_t> buf(2048 * 4096, 0xee);
    EXPECT_EQ(client.Read(buf.data(), 0, 2048), BdevIoStatus::kSuccess);
    EXPECT_TRUE(std::all_of(buf.begin(), buf.end(), [](uint8_t b) { return b == 0; }));
  }
  EXPECT_TRUE(Delete("Malloc0").ok());
}

TEST_F(MallocBdevTest, WithoutANameTheFirstFreeMallocNameIsTaken) {
  const Json params = {{"num_blocks", 16}, {"block_size", 512}};
  EXPECT_EQ(*Create(params), "Malloc0");
  EXPECT_EQ(*Create(params), "Malloc1");
  ASSERT_TRUE(Delete("Malloc0").ok());
  EXPECT_EQ(*Create(params), "Malloc0");
  // Names taken by other modules count too.
  ASSERT_TRUE(
      CallRpc("bdev_null_create", {{"name", "Malloc2"}, {"num_blocks", 8}, {"block_size", 512}})
          .ok());
  EXPECT_EQ(*Create(params), "Malloc3");
  for (const char* name : {"Malloc0", "Malloc1", "Malloc2", "Malloc3"})
    EXPECT_TRUE(Delete(name).ok());
}

TEST_F(MallocBdevTest, OptionalParametersReachTheBdev) {
  const std::string uuid = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
  auto created = Create({{"name", "M"},
                         {"num_blocks", 64},
                         {"block_size", 512},
                         {"uuid", uuid},
                         {"optimal_io_boundary", 16},
                         {"md_size", 0},
                         {"md_interleave", false},
                         {"dif_type", 0},
                         {"physical_block_size", 512}});
  ASSERT_TRUE(created.ok()) << created.status();
  auto props = Properties("M");
  EXPECT_EQ(props->uuid, uuid);
  EXPECT_EQ(props->optimal_io_boundary, 16u);
  EXPECT_TRUE(props->split_on_optimal_io_boundary);
  EXPECT_TRUE(Delete("M").ok());
}

struct BadCreate {
  const char* what;
  Json params;
  const char* error;  // a substring of the error message
};

TEST_F(MallocBdevTest, CreateRefusesBadInputWithAClearError) {
  const Json good = {{"name", "Malloc0"}, {"num_blocks", 64}, {"block_size", 512}};
  auto with = [&](const char* key, Json value) {
    Json params = good;
    params[key] = std::move(value);
    return params;
  };
  auto without = [&](const char* key) {
    Json params = good;
    params.erase(key);
    return params;
  };
  const std::vector<BadCreate> cases = {
      {"no params", nullptr, "missing parameter \"num_blocks\""},
      {"params not an object", "x", "params must be an object"},
      {"no num_blocks", without("num_blocks"), "missing parameter \"num_blocks\""},
      {"no block_size", without("block_size"), "missing parameter \"block_size\""},
      {"name not a string", with("name", true), "parameter \"name\" must be a string"},
      {"empty name", with("name", ""), "\"name\" must not be empty"},
      {"num_blocks a string", with("num_blocks", "64"), "\"num_blocks\" must be an unsigned"},
      {"zero num_blocks", with("num_blocks", 0), "num_blocks must be greater than 0"},
      {"block_size 1000", with("block_size", 1000), "block_size 1000 is not a power of two"},
      {"block_size 0", with("block_size", 0), "block_size 0 is not a power of two"},
      {"block_size 128 KiB", with("block_size", 131072), "block_size 131072"},
      {"block_size 2^33", with("block_size", uint64_t{1} << 33), "block_size 8589934592"},
      {"address space overflow", with("num_blocks", uint64_t{1} << 60), "overflows"},
      {"optimal_io_boundary 2^33", with("optimal_io_boundary", uint64_t{1} << 33),
       "optimal_io_boundary 8589934592"},
      {"unknown parameter", with("numa_node", 0), "unknown parameter \"numa_node\""},
      {"md_size", with("md_size", 16), "parameter \"md_size\" is 16, which pollux does not"},
      {"md_interleave", with("md_interleave", true), "metadata"},
      {"dif_type", with("dif_type", 2), "dif"},
      {"physical_block_size", with("physical_block_size", 4096), "physical_block_size 4096"},
      {"uuid not a uuid", with("uuid", "xyz"), "xyz"},
  };
  for (const BadCreate& c : cases) {
    SCOPED_TRACE(c.what);
    auto result = Create(c.params);
    ASSERT_FALSE(result.ok()) << "created " << *result;
    EXPECT_THAT(std::string(result.status().message()), StartsWith("bdev_malloc_create: "));
    EXPECT_THAT(std::string(result.status().message()), HasSubstr(c.error));
    EXPECT_EQ(BdevCount(), 0u);
  }
}

TEST_F(MallocBdevTest, DuplicateNameIsRefusedAndLeavesTheFirst) {
  ASSERT_TRUE(Create({{"name", "Malloc0"}, {"num_blocks", 16}, {"block_size", 512}}).ok());
  uint64_t held_before = CallOn(app_thread(), HeldBytes);
  auto again = Create({{"name", "Malloc0"}, {"num_blocks", 32}, {"block_size", 512}});
  ASSERT_FALSE(again.ok());
  EXPECT_THAT(std::string(again.status().message()), StartsWith("bdev_malloc_create: "));
  EXPECT_THAT(std::string(again.status().message()), HasSubstr("Malloc0"));
  EXPECT_EQ(Properties("Malloc0")->block_count, 16u);
  EXPECT_EQ(CallOn(app_thread(), HeldBytes), held_before);
  EXPECT_TRUE(Delete("Malloc0").ok());
}

TEST_F(MallocBdevTest, TooLargeForMemoryIsAClearErrorAndLeaksNothing) {
  uint64_t held_before = CallOn(app_thread(), HeldBytes);
  // The test EAL runs without hugepages: malloc memory comes from the kernel, and neither a
  // size above the RAM available (1 TiB on these machines) nor 4 PiB fits. With hugepages
  // the message names DPDK memory and --mem-size instead.
  for (int round = 0; round < 3; ++round) {
    auto result =
        Create({{"name", "Big"}, {"num_blocks", uint64_t{1} << 28}, {"block_size", 4096}});
    ASSERT_FALSE(result.ok());
    EXPECT_THAT(std::string(result.status().message()),
                StartsWith("bdev_malloc_create: cannot allocate 1 TiB for \"Big\""));
    EXPECT_THAT(std::string(result.status().message()),
                HasSubstr(rte_eal_has_hugepages() ? "--mem-size" : "of RAM available"));
    auto huge = Create({{"num_blocks", uint64_t{1} << 40}, {"block_size", 4096}});
    ASSERT_FALSE(huge.ok());
    EXPECT_THAT(std::string(huge.status().message()), HasSubstr("cannot allocate 4 PiB"));
    EXPECT_EQ(BdevCount(), 0u);
    EXPECT_EQ(CallOn(app_thread(), HeldBytes), held_before);
  }
  // And what fits still works.
  auto small = Create({{"name", "Big"}, {"num_blocks", 4096}, {"block_size", 4096}});
  ASSERT_TRUE(small.ok()) << small.status();
  EXPECT_TRUE(Delete("Big").ok());
  EXPECT_EQ(CallOn(app_thread(), HeldBytes), held_before);
}

TEST_F(MallocBdevTest, DeleteRefusesUnknownForeignAndClaimedBdevs) {
  auto unknown = CallRpc("bdev_malloc_delete", {{"name", "Nope"}});
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(std::string(unknown.status().message()), StartsWith("bdev_malloc_delete: "));
  EXPECT_THAT(std::string(unknown.status().message()), HasSubstr("Nope"));

  auto bad = CallRpc("bdev_malloc_delete", {{"name", 3}});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("\"name\" must be a string"));

  // Another module's bdev is not malloc's to delete.
  ASSERT_TRUE(
      CallRpc("bdev_null_create", {{"name", "Null0"}, {"num_blocks", 8}, {"block_size", 512}})
          .ok());
  auto foreign = CallRpc("bdev_malloc_delete", {{"name", "Null0"}});
  ASSERT_FALSE(foreign.ok());
  EXPECT_THAT(std::string(foreign.status().message()), StartsWith("bdev_malloc_delete: "));
  EXPECT_TRUE(Properties("Null0").has_value());
  EXPECT_TRUE(Delete("Null0").ok());

  ASSERT_TRUE(Create({{"name", "Malloc0"}, {"num_blocks", 8}, {"block_size", 512}}).ok());
  std::unique_ptr<BdevDesc> desc = CallOn(app_thread(), [] {
    auto opened = BdevDesc::Open("Malloc0", true, [](BdevEvent, Bdev&) {});
    EXPECT_TRUE(opened.ok()) << opened.status();
    if (!opened.ok()) return std::unique_ptr<BdevDesc>();
    EXPECT_TRUE((*opened)->Claim(MallocModule::Get()).ok());
    return std::move(*opened);
  });
  ASSERT_NE(desc, nullptr);
  auto claimed = CallRpc("bdev_malloc_delete", {{"name", "Malloc0"}});
  ASSERT_FALSE(claimed.ok());
  EXPECT_THAT(std::string(claimed.status().message()), StartsWith("bdev_malloc_delete: "));
  EXPECT_THAT(std::string(claimed.status().message()), HasSubstr("claim"));
  RunOn(app_thread(), [&] { desc.reset(); });
  EXPECT_TRUE(CallRpc("bdev_malloc_delete", {{"name", "Malloc0"}}).ok());
  EXPECT_EQ(BdevCount(), 0u);
}

struct IntegrityCase {
  uint32_t block_size;
  uint32_t optimal_io_boundary;  // blocks; non-zero makes the layer split requests
};

void PrintTo(const IntegrityCase& c, std::ostream* os) {
  *os << "block_size " << c.block_size << ", optimal_io_boundary " << c.optimal_io_boundary;
}

class MallocIntegrityTest : public MallocBdevTest,
                            public ::testing::WithParamInterface<IntegrityCase> {};

// Random reads, writes, write_zeroes and unmaps, with the data in randomly cut iovecs, checked
// against a shadow copy of the disk after every read and in full at the end.
TEST_P(MallocIntegrityTest, RandomIoMatchesAShadowCopy) {
  const IntegrityCase param = GetParam();
  const uint64_t num_blocks = 4 * kMiB / param.block_size;
  const uint32_t bs = param.block_size;
  ASSERT_TRUE(Create({{"name", "Malloc0"},
                      {"num_blocks", num_blocks},
                      {"block_size", bs},
                      {"optimal_io_boundary", param.optimal_io_boundary}})
                  .ok());
  std::vector<uint8_t> shadow(num_blocks * bs, 0);
  std::mt19937_64 rng(0x5eed0000 + bs + param.optimal_io_boundary);
  {
    IoClient client(app_thread(), "Malloc0");
    ASSERT_TRUE(client.ok());
    const uint64_t max_blocks = std::min<uint64_t>(num_blocks, 256 * 1024 / bs);
    std::vector<uint8_t> data(max_blocks * bs);
    for (int i = 0; i < 400; ++i) {
      SCOPED_TRACE(i);
      uint64_t len = std::uniform_int_distribution<uint64_t>(1, max_blocks)(rng);
      uint64_t offset = std::uniform_int_distribution<uint64_t>(0, num_blocks - len)(rng);
      size_t bytes = len * bs;
      uint8_t* disk = shadow.data() + offset * bs;
      int op = std::uniform_int_distribution<int>(0, 9)(rng);
      if (op < 4) {  // write
        for (size_t b = 0; b < bytes; b += 8) {
          uint64_t word = rng();
          std::memcpy(&data[b], &word, std::min<size_t>(8, bytes - b));
        }
        std::vector<iovec> iovs = RandomIovecs(data.data(), bytes, 12, 1, rng);
        ASSERT_EQ(client.Writev(iovs.data(), static_cast<int>(iovs.size()), offset, len),
                  BdevIoStatus::kSuccess);
        std::memcpy(disk, data.data(), bytes);
      } else if (op < 8) {  // read
        std::fill(data.begin(), data.begin() + bytes, 0x5a);
        std::vector<iovec> iovs = RandomIovecs(data.data(), bytes, 12, 1, rng);
        ASSERT_EQ(client.Readv(iovs.data(), static_cast<int>(iovs.size()), offset, len),
                  BdevIoStatus::kSuccess);
        ASSERT_EQ(std::memcmp(data.data(), disk, bytes), 0)
            << "read of " << len << " blocks at " << offset << " in " << iovs.size() << " iovecs";
      } else if (op == 8) {
        ASSERT_EQ(client.WriteZeroes(offset, len), BdevIoStatus::kSuccess);
        std::memset(disk, 0, bytes);
      } else {
        ASSERT_EQ(client.Unmap(offset, len), BdevIoStatus::kSuccess);
        std::memset(disk, 0, bytes);
      }
    }
    std::vector<uint8_t> whole(shadow.size());
    ASSERT_EQ(client.Read(whole.data(), 0, num_blocks), BdevIoStatus::kSuccess);
    EXPECT_TRUE(whole == shadow);
  }
  EXPECT_TRUE(Delete("Malloc0").ok());
}

INSTANTIATE_TEST_SUITE_P(BlockSizes, MallocIntegrityTest,
                         ::testing::Values(IntegrityCase{512, 0}, IntegrityCase{4096, 0},
                                           IntegrityCase{4096, 8}, IntegrityCase{512, 64}),
                         [](const ::testing::TestParamInfo<IntegrityCase>& info) {
                           return "bs" + std::to_string(info.param.block_size) + "_boundary" +
                                  std::to_string(info.param.optimal_io_boundary);
                         });

TEST_F(MallocBdevTest, WriteZeroesAndUnmapZeroOnlyTheirRange) {
  ASSERT_TRUE(Create({{"name", "Malloc0"}, {"num_blocks", 64}, {"block_size", 512}}).ok());
  {
    IoClient client(app_thread(), "Malloc0");
    ASSERT_TRUE(client.ok());
    std::vector<uint8_t> pattern(64 * 512, 0x77);
    ASSERT_EQ(client.Write(pattern.data(), 0, 64), BdevIoStatus::kSuccess);
    EXPECT_EQ(client.WriteZeroes(4, 4), BdevIoStatus::kSuccess);
    EXPECT_EQ(client.Unmap(40, 8), BdevIoStatus::kSuccess);
    EXPECT_EQ(client.Flush(0, 64), BdevIoStatus::kSuccess);
    EXPECT_EQ(client.Reset(), BdevIoStatus::kSuccess);
    std::vector<uint8_t> expected = pattern;
    std::fill(expected.begin() + 4 * 512, expected.begin() + 8 * 512, 0);
    std::fill(expected.begin() + 40 * 512, expected.begin() + 48 * 512, 0);
    std::vector<uint8_t> read(64 * 512);
    ASSERT_EQ(client.Read(read.data(), 0, 64), BdevIoStatus::kSuccess);
    EXPECT_TRUE(read == expected);
  }
  EXPECT_TRUE(Delete("Malloc0").ok());
}

TEST_F(MallocBdevTest, IoPastTheEndIsOutOfRangeAndChangesNothing) {
  ASSERT_TRUE(Create({{"name", "Malloc0"}, {"num_blocks", 16}, {"block_size", 512}}).ok());
  {
    IoClient client(app_thread(), "Malloc0");
    ASSERT_TRUE(client.ok());
    std::vector<uint8_t> buf(4 * 512, 0x33);
    EXPECT_EQ(client.Write(buf.data(), 14, 4), BdevIoStatus::kOutOfRange);
    EXPECT_EQ(client.Write(buf.data(), 16, 1), BdevIoStatus::kOutOfRange);
    EXPECT_EQ(client.Read(buf.data(), 13, 4), BdevIoStatus::kOutOfRange);
    EXPECT_EQ(client.WriteZeroes(15, 2), BdevIoStatus::kOutOfRange);
    EXPECT_EQ(client.Unmap(0, 17), BdevIoStatus::kOutOfRange);
    std::vector<uint8_t> read(16 * 512, 0xff);
    ASSERT_EQ(client.Read(read.data(), 0, 16), BdevIoStatus::kSuccess);
    EXPECT_TRUE(std::all_of(read.begin(), read.end(), [](uint8_t b) { return b == 0; }));
  }
  EXPECT_TRUE(Delete("Malloc0").ok());
}

TEST_F(MallocBdevTest, SaveConfigRoundTrips) {
  ASSERT_TRUE(Create({{"name", "Malloc0"}, {"num_blocks", 256}, {"block_size", 4096}}).ok());
  ASSERT_TRUE(Create({{"num_blocks", 64}, {"block_size", 512}, {"optimal_io_boundary", 8}}).ok());
  Json config = ModuleConfig();
  ASSERT_EQ(config.size(), 2u);
  EXPECT_EQ(config[0], (Json{{"method", "bdev_malloc_create"},
                             {"params",
                              {{"name", "Malloc0"},
                               {"num_blocks", 256},
                               {"block_size", 4096},
                               {"uuid", Properties("Malloc0")->uuid},
                               {"optimal_io_boundary", 0}}}}));
  EXPECT_EQ(config[1]["params"]["name"], "Malloc1");
  EXPECT_EQ(config[1]["params"]["optimal_io_boundary"], 8);

  ASSERT_TRUE(CallRpc("bdev_malloc_delete", {{"name", "Malloc0"}}).ok());
  ASSERT_TRUE(CallRpc("bdev_malloc_delete", {{"name", "Malloc1"}}).ok());
  for (const Json& call : config) {
    auto replayed = CallRpc(call["method"].get<std::string>(), call["params"]);
    ASSERT_TRUE(replayed.ok()) << replayed.status();
  }
  EXPECT_EQ(ModuleConfig(), config);
  EXPECT_TRUE(Delete("Malloc0").ok());
  EXPECT_TRUE(Delete("Malloc1").ok());
}

}  // namespace
}  // namespace pollux::testing
