// The null bdev module: bdev_null_create / bdev_null_delete (every bad input), every I/O type
// succeeding without touching data, I/O past the end, and the save_config round trip.
#include <gmock/gmock.h>

#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bdev_test_env.h"
#include "pollux/bdev_null/bdev_null.h"

namespace pollux::testing {
namespace {

using rpc::Json;

class NullBdevTest : public BdevTest {
 protected:
  // The registered bdev's properties, read on the app thread; nullopt when absent.
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
      NullModule::Get().WriteConfig(config);
      return config;
    });
  }
};

TEST_F(NullBdevTest, CreateRegistersANullBdevAndDeleteRemovesIt) {
  auto created = CallRpc("bdev_null_create",
                         {{"name", "Null0"}, {"num_blocks", 262144}, {"block_size", 4096}});
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(*created, "Null0");
  auto props = Properties("Null0");
  ASSERT_TRUE(props.has_value());
  EXPECT_EQ(props->block_size, 4096u);
  EXPECT_EQ(props->block_count, 262144u);
  EXPECT_EQ(props->product_name, "Null disk");
  EXPECT_FALSE(props->uuid.empty());
  EXPECT_FALSE(props->write_cache);
  EXPECT_TRUE(CallOn(app_thread(), [] {
    Bdev* bdev = FindBdev("Null0");
    return &bdev->module() == &NullModule::Get() && FindBdevModule("null") == &NullModule::Get();
  }));

  auto deleted = CallRpc("bdev_null_delete", {{"name", "Null0"}});
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, true);
  EXPECT_FALSE(Properties("Null0").has_value());
}

TEST_F(NullBdevTest, CreateKeepsTheGivenUuid) {
  const std::string uuid = "6f2c1a4e-8d3b-4c5e-9a7f-0b1c2d3e4f50";
  auto created =
      CallRpc("bdev_null_create",
              {{"name", "Null0"}, {"num_blocks", 1024}, {"block_size", 512}, {"uuid", uuid}});
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(Properties("Null0")->uuid, uuid);
  EXPECT_TRUE(Delete("Null0").ok());
}

TEST_F(NullBdevTest, SpdkMetadataParametersAreAcceptedWhenOff) {
  auto created = CallRpc("bdev_null_create", {{"name", "Null0"},
                                              {"num_blocks", 1024},
                                              {"block_size", 512},
                                              {"md_size", 0},
                                              {"dif_type", 0},
                                              {"dif_is_head_of_md", false},
                                              {"dif_pi_format", 0},
                                              {"physical_block_size", 512}});
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(Delete("Null0").ok());
}

struct BadCreate {
  const char* what;
  Json params;
  const char* error;  // a substring of the error message
};

TEST_F(NullBdevTest, CreateRefusesBadInputWithAClearError) {
  const Json good = {{"name", "Null0"}, {"num_blocks", 1024}, {"block_size", 512}};
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
      {"no params", nullptr, "missing parameter \"name\""},
      {"params not an object", Json::array({1, 2}), "params must be an object"},
      {"no name", without("name"), "missing parameter \"name\""},
      {"no num_blocks", without("num_blocks"), "missing parameter \"num_blocks\""},
      {"no block_size", without("block_size"), "missing parameter \"block_size\""},
      {"name not a string", with("name", 7), "parameter \"name\" must be a string"},
      {"empty name", with("name", ""), "name must not be empty"},
      {"negative num_blocks", with("num_blocks", -1), "\"num_blocks\" must be an unsigned"},
      {"zero num_blocks", with("num_blocks", 0), "num_blocks must be greater than 0"},
      {"block_size 1000", with("block_size", 1000), "block_size 1000 is not a power of two"},
      {"block_size 256", with("block_size", 256), "block_size 256 is not a power of two"},
      {"block_size 128 KiB", with("block_size", 131072), "block_size 131072"},
      {"block_size 2^40", with("block_size", uint64_t{1} << 40), "block_size 1099511627776"},
      {"byte size overflow", with("num_blocks", uint64_t{1} << 60), "overflows"},
      {"unknown parameter", with("size", 5), "unknown parameter \"size\""},
      {"md_size", with("md_size", 8), "parameter \"md_size\" is 8, which pollux does not"},
      {"dif_type", with("dif_type", 1), "dif"},
      {"physical_block_size", with("physical_block_size", 4096), "physical_block_size 4096"},
      {"uuid not a uuid", with("uuid", "not-a-uuid"), "not-a-uuid"},
  };
  for (const BadCreate& c : cases) {
    SCOPED_TRACE(c.what);
    auto result = CallRpc("bdev_null_create", c.params);
    ASSERT_FALSE(result.ok()) << "created " << *result;
    EXPECT_THAT(std::string(result.status().message()),
                ::testing::StartsWith("bdev_null_create: "));
    EXPECT_THAT(std::string(result.status().message()), ::testing::HasSubstr(c.error));
    EXPECT_EQ(BdevCount(), 0u);
  }
}

TEST_F(NullBdevTest, DuplicateNameIsRefusedAndLeavesTheFirst) {
  ASSERT_TRUE(
      CallRpc("bdev_null_create", {{"name", "Null0"}, {"num_blocks", 8}, {"block_size", 512}})
          .ok());
  auto again =
      CallRpc("bdev_null_create", {{"name", "Null0"}, {"num_blocks", 16}, {"block_size", 4096}});
  ASSERT_FALSE(again.ok());
  EXPECT_THAT(std::string(again.status().message()), ::testing::StartsWith("bdev_null_create: "));
  EXPECT_THAT(std::string(again.status().message()), ::testing::HasSubstr("Null0"));
  EXPECT_EQ(Properties("Null0")->block_count, 8u);
  EXPECT_EQ(BdevCount(), 1u);
  EXPECT_TRUE(Delete("Null0").ok());
}

TEST_F(NullBdevTest, DeleteRefusesUnknownMissingAndClaimedBdevs) {
  auto unknown = CallRpc("bdev_null_delete", {{"name", "Nope"}});
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(std::string(unknown.status().message()), ::testing::StartsWith("bdev_null_delete: "));
  EXPECT_THAT(std::string(unknown.status().message()), ::testing::HasSubstr("Nope"));

  auto no_name = CallRpc("bdev_null_delete", Json::object());
  ASSERT_FALSE(no_name.ok());
  EXPECT_THAT(std::string(no_name.status().message()),
              ::testing::HasSubstr("missing parameter \"name\""));

  ASSERT_TRUE(
      CallRpc("bdev_null_create", {{"name", "Null0"}, {"num_blocks", 8}, {"block_size", 512}})
          .ok());
  // A virtual bdev's claim, taken the way one would take it.
  std::unique_ptr<BdevDesc> desc = CallOn(app_thread(), [] {
    auto opened = BdevDesc::Open("Null0", true, [](BdevEvent, Bdev&) {});
    EXPECT_TRUE(opened.ok()) << opened.status();
    if (!opened.ok()) return std::unique_ptr<BdevDesc>();
    EXPECT_TRUE((*opened)->Claim(NullModule::Get()).ok());
    return std::move(*opened);
  });
  ASSERT_NE(desc, nullptr);
  auto claimed = CallRpc("bdev_null_delete", {{"name", "Null0"}});
  ASSERT_FALSE(claimed.ok());
  EXPECT_THAT(std::string(claimed.status().message()), ::testing::StartsWith("bdev_null_delete: "));
  EXPECT_THAT(std::string(claimed.status().message()), ::testing::HasSubstr("claim"));
  EXPECT_TRUE(Properties("Null0").has_value());
  RunOn(app_thread(), [&] { desc.reset(); });

  EXPECT_TRUE(CallRpc("bdev_null_delete", {{"name", "Null0"}}).ok());
  EXPECT_EQ(BdevCount(), 0u);
}

TEST_F(NullBdevTest, EveryIoTypeSucceedsWithoutTouchingData) {
  ASSERT_TRUE(
      CallRpc("bdev_null_create", {{"name", "Null0"}, {"num_blocks", 1024}, {"block_size", 512}})
          .ok());
  EXPECT_TRUE(CallOn(app_thread(), [] {
    Bdev* bdev = FindBdev("Null0");
    for (int t = 0; t < kIoTypeCount; ++t) {
      if (!bdev->Supports(static_cast<IoType>(t))) return false;
    }
    return true;
  }));
  {
    IoClient client(app_thread(), "Null0");
    ASSERT_TRUE(client.ok());
    std::vector<uint8_t> buf(8 * 512, 0xab);
    EXPECT_EQ(client.Read(buf.data(), 0, 8), BdevIoStatus::kSuccess);
    EXPECT_EQ(buf, std::vector<uint8_t>(8 * 512, 0xab));
    EXPECT_EQ(client.Write(buf.data(), 1016, 8), BdevIoStatus::kSuccess);
    iovec iov[2] = {{buf.data(), 1024}, {buf.data() + 1024, 3072}};
    EXPECT_EQ(client.Readv(iov, 2, 100, 8), BdevIoStatus::kSuccess);
    EXPECT_EQ(client.Writev(iov, 2, 100, 8), BdevIoStatus::kSuccess);
    EXPECT_EQ(client.WriteZeroes(0, 1024), BdevIoStatus::kSuccess);
    EXPECT_EQ(client.Unmap(0, 1024), BdevIoStatus::kSuccess);
    EXPECT_EQ(client.Flush(0, 1024), BdevIoStatus::kSuccess);
    EXPECT_EQ(client.Reset(), BdevIoStatus::kSuccess);
    EXPECT_EQ(buf, std::vector<uint8_t>(8 * 512, 0xab));

    // The layer stops I/O past the end before it reaches the module.
    EXPECT_EQ(client.Read(buf.data(), 1020, 8), BdevIoStatus::kOutOfRange);
    EXPECT_EQ(client.Write(buf.data(), 1024, 1), BdevIoStatus::kOutOfRange);
    EXPECT_EQ(client.WriteZeroes(1000, 100), BdevIoStatus::kOutOfRange);

    BdevIoStats stats = client.Stats();
    EXPECT_EQ(stats.of(IoType::kRead).ops, 2u);
    EXPECT_EQ(stats.of(IoType::kWrite).ops, 2u);
  }
  EXPECT_TRUE(Delete("Null0").ok());
}

TEST_F(NullBdevTest, SaveConfigRoundTrips) {
  ASSERT_TRUE(
      CallRpc("bdev_null_create", {{"name", "Null0"}, {"num_blocks", 4096}, {"block_size", 4096}})
          .ok());
  ASSERT_TRUE(
      CallRpc("bdev_null_create", {{"name", "Null1"}, {"num_blocks", 100}, {"block_size", 512}})
          .ok());
  Json config = ModuleConfig();
  ASSERT_TRUE(config.is_array());
  ASSERT_EQ(config.size(), 2u);
  const std::string uuid0 = Properties("Null0")->uuid;
  EXPECT_EQ(
      config[0],
      (Json{{"method", "bdev_null_create"},
            {"params",
             {{"name", "Null0"}, {"num_blocks", 4096}, {"block_size", 4096}, {"uuid", uuid0}}}}));
  EXPECT_EQ(config[1]["params"]["name"], "Null1");

  // Replaying the calls rebuilds the same bdevs, UUIDs included.
  EXPECT_TRUE(CallRpc("bdev_null_delete", {{"name", "Null0"}}).ok());
  EXPECT_TRUE(CallRpc("bdev_null_delete", {{"name", "Null1"}}).ok());
  ASSERT_EQ(BdevCount(), 0u);
  for (const Json& call : config) {
    auto replayed = CallRpc(call["method"].get<std::string>(), call["params"]);
    ASSERT_TRUE(replayed.ok()) << replayed.status();
  }
  EXPECT_EQ(ModuleConfig(), config);
  EXPECT_TRUE(Delete("Null0").ok());
  EXPECT_TRUE(Delete("Null1").ok());
}

}  // namespace
}  // namespace pollux::testing
