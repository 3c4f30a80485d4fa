// pollux-tgt --plugin and pollux-perf --plugin: a module built as a plugin (the zero module of
// test/sdk, pollux_add_plugin) loads before the config replays, its RPC method works in the
// config and over RPC, rpc_get_methods lists it and save_config writes its bdevs back; and each
// way a plugin can be wrong stops the start-up with one clear error, before anything starts.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "process.h"

namespace pollux::testing {
namespace {

using nlohmann::json;
using std::chrono::seconds;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kZeroConfig[] = R"({"subsystems": [{"subsystem": "bdev", "config": [
  {"method": "bdev_zero_create", "params": {"name": "Zero0", "num_blocks": 4096}}]}]})";

std::string Plugin(const char* name) {
  return std::string(POLLUX_PLUGIN_DIR) + "/pollux_" + name + ".so";
}

json ParseJson(const std::string& text) {
  return json::parse(text, nullptr, /*allow_exceptions=*/false);
}

TEST(PluginTest, ModuleLoadsItsRpcMethodReplaysAndSaveConfigWritesItBack) {
  TempDir dir;
  Target target(
      {"-m", "0", "--plugin", Plugin("zero_plugin"), "-c", dir.Write("zero.json", kZeroConfig)});
  ASSERT_TRUE(target.running()) << target.Stderr();
  EXPECT_THAT(target.Stderr(), HasSubstr("bdev module zero; RPC methods bdev_zero_create"));

  RunResult methods = target.Rpc({"rpc_get_methods"});
  ASSERT_EQ(methods.exit_code, 0) << Describe(methods);
  EXPECT_THAT(ParseJson(methods.out), Contains("bdev_zero_create")) << methods.out;

  // The plugin's RPC method over the socket, as for a built-in module.
  RunResult created = target.Rpc({"bdev_zero_create", "--name", "Zero1", "--num_blocks", "2048"});
  ASSERT_EQ(created.exit_code, 0) << Describe(created);
  RunResult bdevs = target.Rpc({"bdev_get_bdevs"});
  ASSERT_EQ(bdevs.exit_code, 0) << Describe(bdevs);
  std::vector<std::string> zero_bdevs;
  for (const json& bdev : ParseJson(bdevs.out)) {
    if (bdev.value("module", "") == "zero") zero_bdevs.push_back(bdev.value("name", ""));
  }
  EXPECT_THAT(zero_bdevs, ::testing::UnorderedElementsAre("Zero0", "Zero1")) << bdevs.out;

  RunResult saved = target.Rpc({"save_config"});
  ASSERT_EQ(saved.exit_code, 0) << Describe(saved);
  std::string saved_path = dir.Write("saved.json", saved.out);
  EXPECT_THAT(saved.out, HasSubstr("\"bdev_zero_create\"")) << saved.out;
  EXPECT_EQ(target.Signal(SIGTERM), 0) << target.Stderr();

  // What save_config wrote starts a target again, with the plugin.
  Target again({"-m", "0", "--plugin", Plugin("zero_plugin"), "-c", saved_path});
  ASSERT_TRUE(again.running()) << again.Stderr();
  RunResult restored = again.Rpc({"bdev_get_bdevs", "--name", "Zero1"});
  EXPECT_EQ(restored.exit_code, 0) << Describe(restored);
}

TEST(PluginTest, PerfLoadsAPluginAndRunsOnItsBdev) {
  TempDir dir;
  RunResult run = RunProgram({POLLUX_PERF_PATH, "--plugin", Plugin("zero_plugin"), "-c",
                              dir.Write("zero.json", kZeroConfig), "-q", "8", "-o", "4k", "-w",
                              "randrw", "-t", "1", "-m", "0", "--json"},
                             seconds(60));
  ASSERT_EQ(run.exit_code, 0) << Describe(run);
  json report = ParseJson(run.out);
  ASSERT_TRUE(report.is_object()) << run.out;
  EXPECT_GT(report["total"].value("ops", 0), 0) << run.out;
}

// Each bad plugin: exit code 1, the message on stderr, and nothing started (no RPC socket).
struct BadPlugin {
  const char* name;
  std::string path;
  const char* message;
};

void ExpectRefused(const BadPlugin& bad) {
  TempDir dir;
  std::string socket = dir.File("rpc.sock");
  RunResult run =
      RunProgram({POLLUX_TGT_PATH, "-m", "0", "-r", socket, "--plugin", bad.path}, seconds(30));
  EXPECT_EQ(run.exit_code, 1) << bad.name << ": " << Describe(run);
  EXPECT_THAT(run.err, HasSubstr(bad.message)) << bad.name;
  EXPECT_THAT(run.err, Not(HasSubstr("started"))) << bad.name;
  struct stat st;
  EXPECT_NE(stat(socket.c_str(), &st), 0) << bad.name << ": the RPC socket was created";
}

TEST(PluginTest, EveryBadPluginIsAClearErrorBeforeAnythingStarts) {
  TempDir dir;
  std::string text = dir.Write("not-elf.so", "this is not a shared object\n");
  std::string program = POLLUX_RPC_PATH;  // ELF, but an executable
  const BadPlugin cases[] = {
      {"missing file", dir.File("missing.so"), "missing.so: No such file or directory"},
      {"not ELF", text, "not an ELF file"},
      // Position-independent executables are ELF shared objects: refused for their missing stamp.
      {"an executable", program, "no pollux ABI stamp"},
      {"no stamp", Plugin("no_stamp_plugin"), "no pollux ABI stamp: not a pollux module"},
      {"another version", Plugin("wrong_version_plugin"),
       "was built against pollux 9.8.7; this is pollux " POLLUX_PROJECT_VERSION},
      {"unresolved symbol", Plugin("unresolved_plugin"),
       "undefined symbol: _Z30pollux_function_nobody_definesi"},
      {"names taken", Plugin("clash_plugin"),
       "bdev module \"null\" is already registered; RPC method \"bdev_null_create\" is already "
       "registered"},
      {"no module", Plugin("no_module_plugin"), "registered no bdev module"},
  };
  for (const BadPlugin& bad : cases) ExpectRefused(bad);
}

TEST(PluginTest, OneBadPluginAmongGoodOnesStopsTheStart) {
  TempDir dir;
  RunResult run = RunProgram(
      {POLLUX_TGT_PATH, "-m", "0", "-r", dir.File("rpc.sock"), "--plugin", Plugin("zero_plugin"),
       "--plugin", Plugin("wrong_version_plugin"), "-c", dir.Write("zero.json", kZeroConfig)},
      seconds(30));
  EXPECT_EQ(run.exit_code, 1) << Describe(run);
  EXPECT_THAT(run.err, HasSubstr("pollux_wrong_version_plugin.so was built against"));
}

}  // namespace
}  // namespace pollux::testing
