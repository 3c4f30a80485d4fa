// pollux-rpc's help against a running target: every method's help from the specs that check
// its parameters, the methods by component, and help without a target.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "process.h"

namespace pollux::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

TEST(RpcHelp, EveryMethodHasHelpWithADescription) {
  Target target({"--cpus", "0"});
  ASSERT_TRUE(target.running()) << target.Stderr();
  RunResult r = target.Rpc({"rpc_get_method_help"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json methods = json::parse(r.out);
  ASSERT_GT(methods.size(), 40u);
  for (const json& method : methods) {
    EXPECT_FALSE(method["description"].get<std::string>().empty()) << method["name"];
    EXPECT_FALSE(method["component"].get<std::string>().empty()) << method["name"];
    EXPECT_FALSE(method.contains("declared")) << method["name"];
    for (const json& param : method["params"]) {
      EXPECT_FALSE(param["description"].get<std::string>().empty())
          << method["name"] << " " << param["name"];
    }
  }
}

TEST(RpcHelp, MethodHelpListsEveryParameter) {
  Target target({"--cpus", "0"});
  ASSERT_TRUE(target.running()) << target.Stderr();
  RunResult r = target.Rpc({"bdev_null_create", "--help"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("bdev_null_create (bdev_null)\n"));
  EXPECT_THAT(r.out, HasSubstr("  num_blocks "));
  EXPECT_THAT(r.out, HasSubstr("required"));
  EXPECT_THAT(r.out, HasSubstr("SPDK's parameters"));
  EXPECT_THAT(r.out, HasSubstr("only 0"));
  EXPECT_THAT(r.out, HasSubstr("optimal_write_size"));
  r = target.Rpc({"no_such_method", "--help"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("unknown method \\\"no_such_method\\\""));
}

TEST(RpcHelp, GeneralHelpListsMethodsByComponentOrSaysHowTo) {
  Target target({"--cpus", "0"});
  ASSERT_TRUE(target.running()) << target.Stderr();
  RunResult r = target.Rpc({"--help"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Usage: pollux-rpc"));
  EXPECT_THAT(r.out, HasSubstr("by component"));
  EXPECT_THAT(r.out, HasSubstr("  bdev_malloc "));
  EXPECT_THAT(r.out, HasSubstr("bdev_malloc_create bdev_malloc_delete"));

  TempDir dir;
  r = RunProgram({RpcPath(), "-s", dir.File("nobody.sock"), "--help"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Start pollux-tgt"));
}

}  // namespace
}  // namespace pollux::testing
