// Config files: replay, save_config round trip, and every malformed config.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "process.h"

namespace pollux::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

constexpr char kPollConfig[] = R"({
  "subsystems": [
    {"subsystem": "framework",
     "config": [{"method": "framework_set_mode", "params": {"mode": "poll", "spin_window_us": 55}}]}
  ]
})";

TEST(TargetConfig, ReplaysConfigAndSavesItBack) {
  TempDir dir;
  Target target({"--cpus", "0-1", "-c", dir.Write("poll.json", kPollConfig)});
  ASSERT_TRUE(target.running()) << target.Stderr();
  RunResult saved = target.Rpc({"save_config"});
  ASSERT_EQ(saved.exit_code, 0) << saved.err;
  json config = json::parse(saved.out);
  ASSERT_TRUE(config["subsystems"].is_array());
  EXPECT_EQ(config["subsystems"][0]["subsystem"], "framework");
  json entry = config["subsystems"][0]["config"][0];
  EXPECT_EQ(entry["method"], "framework_set_mode");
  EXPECT_EQ(entry["params"]["mode"], "poll");
  EXPECT_EQ(entry["params"]["spin_window_us"], 55);

  // Replaying the saved config gives the same state.
  Target again({"--cpus", "0-1", "-c", dir.Write("saved.json", saved.out)});
  ASSERT_TRUE(again.running()) << again.Stderr();
  RunResult saved_again = again.Rpc({"save_config"});
  EXPECT_EQ(json::parse(saved_again.out), config);
}

TEST(TargetConfig, CommandLineModeWinsOverConfig) {
  TempDir dir;
  Target target({"--cpus", "0", "--mode", "interrupt", "-c", dir.Write("poll.json", kPollConfig)});
  RunResult r = target.Rpc({"framework_get_reactors"});
  EXPECT_EQ(json::parse(r.out)["mode"], "interrupt");
}

RunResult StartWithConfig(const std::string& text) {
  TempDir dir;
  return RunProgram({TgtPath(), "--cpus", "0", "-r", dir.File("rpc.sock"), "-c",
              dir.Write("bad.json", text)});
}

TEST(TargetConfig, SyntaxErrorNamesFileLineAndColumn) {
  RunResult r = StartWithConfig("{\n  \"subsystems\": [\n    {\"subsystem\": \"framework\",,}\n]}");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("bad.json:3:"));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(TargetConfig, MissingFile) {
  RunResult r = RunProgram({TgtPath(), "--cpus", "0", "-c", "/nonexistent/pollux.json"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("/nonexistent/pollux.json"));
  EXPECT_THAT(r.err, HasSubstr("No such file"));
}

TEST(TargetConfig, WrongShape) {
  RunResult r = StartWithConfig(R"({"subsystems": {"framework": 1}})");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("subsystems"));
  r = StartWithConfig(
      R"({"subsystems": [{"subsystem": "warp_drive", "config": [{"method": "warp_engage"}]}]})");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("warp_drive"));
  r = StartWithConfig(R"({"subsystems": [{"subsystem": "framework", "config": [{"params": {}}]}]})");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("method"));
}

TEST(TargetConfig, UnknownMethodIsNamed) {
  RunResult r = StartWithConfig(
      R"({"subsystems": [{"subsystem": "framework", "config": [{"method": "framework_fly"}]}]})");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("framework_fly"));
}

TEST(TargetConfig, BadParamsNameMethodAndParameter) {
  RunResult r = StartWithConfig(R"({"subsystems": [{"subsystem": "framework", "config": [
      {"method": "framework_set_mode", "params": {"mode": "poll", "spin_window_us": "fast"}}]}]})");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("framework_set_mode"));
  EXPECT_THAT(r.err, HasSubstr("spin_window_us"));
}

}  // namespace
}  // namespace pollux::testing
