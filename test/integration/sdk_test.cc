// The module SDK: this build installed into a temporary prefix, test/sdk (a bdev module project
// outside the tree: find_package(pollux), a "zero" module, a target main) configured and built
// against it with this build's compiler and generator, and its target started on a config
// that creates a zero bdev and a null bdev (the null module comes from the installed
// pollux::bdev_modules, so its RPC method proves the installed archives are linked whole).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "process.h"

namespace pollux::testing {
namespace {

using nlohmann::json;
using std::chrono::seconds;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

constexpr char kZeroConfig[] = R"({"subsystems": [{"subsystem": "bdev", "config": [
  {"method": "bdev_zero_create", "params": {"name": "Zero0", "num_blocks": 2048}},
  {"method": "bdev_null_create",
   "params": {"name": "Null0", "num_blocks": 2048, "block_size": 512}}]}]})";

// What a step printed, for the failure message.
std::string Output(const RunResult& r) {
  return (r.exit_code == -1 ? std::string("killed (signal or time-out)")
                            : "exit code " + std::to_string(r.exit_code)) +
         "\n--- stdout:\n" + r.out + "\n--- stderr:\n" + r.err;
}

TEST(ModuleSdk, OutOfTreeModuleBuildsAndRunsAgainstInstalledPollux) {
  // DESTDIR from the caller's environment would move the install away from `prefix`.
  unsetenv("DESTDIR");
  TempDir dir;
  const std::string prefix = dir.File("prefix");
  const std::string build = dir.File("build");

  RunResult installed = RunProgram(
      {POLLUX_CMAKE_COMMAND, "--install", POLLUX_BUILD_DIR, "--prefix", prefix}, seconds(120));
  ASSERT_EQ(installed.exit_code, 0)
      << "cmake --install " << POLLUX_BUILD_DIR << " failed: " << Output(installed);

  RunResult configured = RunProgram(
      {POLLUX_CMAKE_COMMAND, "-S", POLLUX_SDK_PROJECT_DIR, "-B", build, "-G",
       POLLUX_CMAKE_GENERATOR, "-DCMAKE_MAKE_PROGRAM=" POLLUX_MAKE_PROGRAM,
       "-DCMAKE_CXX_COMPILER=" POLLUX_CXX_COMPILER, "-DCMAKE_CXX_FLAGS=" POLLUX_CXX_FLAGS,
       "-DCMAKE_BUILD_TYPE=" POLLUX_BUILD_TYPE, "-DCMAKE_PREFIX_PATH=" + prefix},
      seconds(120));
  ASSERT_EQ(configured.exit_code, 0)
      << "configuring " << POLLUX_SDK_PROJECT_DIR << " failed: " << Output(configured);
  // The package found is the one just installed, not another pollux on this machine.
  EXPECT_THAT(configured.out, HasSubstr("pollux " POLLUX_PROJECT_VERSION " from " + prefix + "/"));

  RunResult built =
      RunProgram({POLLUX_CMAKE_COMMAND, "--build", build, "--parallel", "2"}, seconds(240));
  ASSERT_EQ(built.exit_code, 0) << "building " << POLLUX_SDK_PROJECT_DIR
                                << " against the installed SDK failed: " << Output(built);

  Target target({"-m", "0-1", "-c", dir.Write("zero.json", kZeroConfig)}, "", build + "/zero-tgt");
  ASSERT_TRUE(target.running()) << "zero-tgt did not start:\n" << target.Stderr();
  RunResult listed = target.Rpc({"bdev_get_bdevs"});
  ASSERT_EQ(listed.exit_code, 0) << "bdev_get_bdevs: " << Output(listed);
  json bdevs = json::parse(listed.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(bdevs.is_array()) << "bdev_get_bdevs did not return an array: " << listed.out;
  std::map<std::string, std::string> modules;  // bdev name -> module
  for (const json& bdev : bdevs) modules[bdev.value("name", "")] = bdev.value("module", "");
  EXPECT_THAT(modules, UnorderedElementsAre(Pair("Zero0", "zero"), Pair("Null0", "null")))
      << listed.out;
  EXPECT_EQ(target.Signal(SIGTERM), 0) << "zero-tgt did not shut down cleanly:\n"
                                       << target.Stderr();
}

}  // namespace
}  // namespace pollux::testing
