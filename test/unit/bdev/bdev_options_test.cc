// bdev_set_options: SPDK's method and parameter names, the pool replaced while nothing uses it,
// refused once a bdev exists, and written first by save_config.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

#include "bdev_test_env.h"
#include "pollux/bdev/bdev.h"
#include "pollux/rpc/subsystem.h"

namespace pollux::testing {
namespace {

using ::testing::HasSubstr;

class BdevOptionsTest : public BdevTest {
 protected:
  BdevLayerOptions Options() {
    return CallOn(app_thread(), [] { return GetBdevLayerOptions(); });
  }
  std::string Error(const rpc::Json& params) {
    auto result = CallRpc("bdev_set_options", params);
    EXPECT_FALSE(result.ok()) << params.dump();
    return result.ok() ? "" : std::string(result.status().message());
  }
};

TEST_F(BdevOptionsTest, ReplacesThePoolBeforeAnyBdevAndIoStillWorks) {
  // An SPDK save_config entry, word for word.
  ASSERT_TRUE(CallRpc("bdev_set_options", {{"bdev_io_pool_size", 4096},
                                           {"bdev_io_cache_size", 64},
                                           {"bdev_auto_examine", true},
                                           {"iobuf_small_cache_size", 128},
                                           {"iobuf_large_cache_size", 16}})
                  .ok());
  EXPECT_EQ(Options().bdev_io_pool_size, 4096u);
  EXPECT_EQ(Options().bdev_io_cache_size, 64u);
  EXPECT_EQ(Options().iobuf_small_cache_size, 128u);
  EXPECT_EQ(Options().iobuf_large_cache_size, 16u);
  ASSERT_TRUE(CallRpc("bdev_malloc_create",
                      {{"name", "M0"}, {"num_blocks", 256}, {"block_size", 512}})
                  .ok());
  IoClient client(app_thread(), "M0");
  std::vector<char> data(4096, 0x5a), back(4096);
  EXPECT_EQ(client.Write(data.data(), 0, 8), BdevIoStatus::kSuccess);
  EXPECT_EQ(client.Read(back.data(), 0, 8), BdevIoStatus::kSuccess);
  EXPECT_EQ(back, data);
}

TEST_F(BdevOptionsTest, SizesTheDataBufferPools) {
  ASSERT_TRUE(CallRpc("bdev_set_options", {{"small_buf_pool_size", 64},
                                           {"large_buf_pool_size", 16},
                                           {"iobuf_small_cache_size", 8},
                                           {"iobuf_large_cache_size", 2}})
                  .ok());
  EXPECT_EQ(Options().small_buf_pool_size, 64u);
  EXPECT_EQ(Options().large_buf_pool_size, 16u);
  std::vector<BdevBufferPoolStats> pools =
      CallOn(app_thread(), [] { return GetBdevBufferPoolStats(); });
  ASSERT_EQ(pools.size(), 4u);
  EXPECT_EQ(pools[0].count, 64u);
  EXPECT_EQ(pools[0].buffer_size, 8192u);
  EXPECT_EQ(pools[1].count, 16u);
  EXPECT_EQ(pools[1].buffer_size, 135168u);  // 132 KiB, as SPDK's
  // A cache that could hold more than an eighth of its pool is refused.
  EXPECT_THAT(Error({{"iobuf_large_cache_size", 3}}), HasSubstr("an eighth of the pool"));
  EXPECT_THAT(Error({{"small_buf_pool_size", 0}}), HasSubstr("at least 1"));
  EXPECT_EQ(Options().iobuf_large_cache_size, 2u);
}

TEST_F(BdevOptionsTest, RefusedOnceABdevExistsExceptTheSameValues) {
  ASSERT_TRUE(CallRpc("bdev_null_create",
                      {{"name", "N0"}, {"num_blocks", 64}, {"block_size", 512}})
                  .ok());
  BdevLayerOptions before = Options();
  EXPECT_THAT(Error({{"bdev_io_pool_size", 8192}}),
              HasSubstr("must come before any bdev is created"));
  EXPECT_EQ(Options().bdev_io_pool_size, before.bdev_io_pool_size);
  // A saved config replayed into this target writes the current values: fine.
  EXPECT_TRUE(CallRpc("bdev_set_options", {{"bdev_io_pool_size", before.bdev_io_pool_size},
                                           {"bdev_io_cache_size", before.bdev_io_cache_size}})
                  .ok());
}

TEST_F(BdevOptionsTest, BadValuesAreClearErrorsAndChangeNothing) {
  BdevLayerOptions before = Options();
  EXPECT_THAT(Error({{"bdev_io_pool_size", 10}}), HasSubstr("too small"));
  EXPECT_THAT(Error({{"bdev_io_cache_size", 0}}), HasSubstr("bdev_io_cache_size 0"));
  EXPECT_THAT(Error({{"bdev_io_pool_size", 1ull << 33}}), HasSubstr("at most"));
  EXPECT_THAT(Error({{"bdev_io_pool_size", "big"}}), HasSubstr("bdev_io_pool_size"));
  EXPECT_THAT(Error({{"bdev_auto_examine", false}}), HasSubstr("does not support"));
  EXPECT_THAT(Error({{"bdev_io_pool", 4096}}), HasSubstr("bdev_io_pool"));
  EXPECT_EQ(Options().bdev_io_pool_size, before.bdev_io_pool_size);
  EXPECT_EQ(Options().bdev_io_cache_size, before.bdev_io_cache_size);
  // The layer still works.
  ASSERT_TRUE(CallRpc("bdev_null_create",
                      {{"name", "N0"}, {"num_blocks", 64}, {"block_size", 512}})
                  .ok());
  IoClient client(app_thread(), "N0");
  std::vector<char> buf(512);
  EXPECT_EQ(client.Read(buf.data(), 0, 1), BdevIoStatus::kSuccess);
}

TEST_F(BdevOptionsTest, SaveConfigWritesThemFirst) {
  ASSERT_TRUE(CallRpc("bdev_set_options", {{"bdev_io_pool_size", 2048}}).ok());
  ASSERT_TRUE(CallRpc("bdev_null_create",
                      {{"name", "N0"}, {"num_blocks", 64}, {"block_size", 512}})
                  .ok());
  rpc::Json config = CallOn(app_thread(), [] {
    rpc::Json entries = rpc::Json::array();
    rpc::SubsystemRegistry::Global().Find("bdev")->write_config(entries);
    return entries;
  });
  ASSERT_GE(config.size(), 2u);
  EXPECT_EQ(config[0]["method"], "bdev_set_options");
  EXPECT_EQ(config[0]["params"]["bdev_io_pool_size"], 2048);
  EXPECT_FALSE(config[0]["params"].contains("bdev_auto_examine"));  // its only value
  EXPECT_EQ(config[0]["params"]["small_buf_pool_size"], 1024);
  EXPECT_EQ(config[0]["params"]["iobuf_large_cache_size"], 16);
  EXPECT_EQ(config[1]["method"], "bdev_null_create");
}

}  // namespace
}  // namespace pollux::testing
