// pollux-tgt as a user starts it: reactors, methods, modes, signals and shutdown.
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "process.h"

namespace pollux::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

json Parse(const RunResult& r) {
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return json::parse(r.out, nullptr, false);
}

TEST(TargetLifecycle, ListsOneReactorPerCore) {
  Target target({"--cpus", "0-1"});
  ASSERT_TRUE(target.running()) << target.Stderr();
  json result = Parse(target.Rpc({"framework_get_reactors"}));
  ASSERT_TRUE(result.contains("reactors")) << result.dump();
  ASSERT_EQ(result["reactors"].size(), 2u);
  std::set<int> cores;
  for (auto& r : result["reactors"]) cores.insert(r["core"].get<int>());
  EXPECT_EQ(cores, (std::set<int>{0, 1}));
  EXPECT_EQ(result["mode"], "interrupt");
  EXPECT_EQ(target.Signal(SIGTERM), 0) << target.Stderr();
}

TEST(TargetLifecycle, DefaultCoresAreAllAllowedCores) {
  Target target({});
  ASSERT_TRUE(target.running()) << target.Stderr();
  json result = Parse(target.Rpc({"framework_get_reactors"}));
  EXPECT_EQ(result["reactors"].size(), static_cast<size_t>(sysconf(_SC_NPROCESSORS_ONLN)));
  // The app thread lives on the first reactor.
  bool found = false;
  for (auto& r : result["reactors"]) {
    for (auto& t : r["lw_threads"]) found |= t["name"] == "app_thread";
  }
  EXPECT_TRUE(found) << result.dump();
}

TEST(TargetLifecycle, RpcWithoutMethodListsEveryMethod) {
  Target target({"--cpus", "0"});
  RunResult r = target.Rpc({});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* method : {"rpc_get_methods", "pollux_get_version", "framework_get_reactors",
                             "thread_get_stats", "thread_get_pollers", "framework_set_mode",
                             "save_config", "log_set_level", "framework_shutdown"}) {
    EXPECT_THAT(r.out, HasSubstr(method));
  }
}

TEST(TargetLifecycle, VersionAndThreadStats) {
  Target target({"--cpus", "0-1"});
  json version = Parse(target.Rpc({"pollux_get_version"}));
  EXPECT_THAT(version["version"].get<std::string>(), HasSubstr("pollux v"));
  json stats = Parse(target.Rpc({"thread_get_stats"}));
  ASSERT_TRUE(stats["threads"].is_array()) << stats.dump();
  bool found = false;
  for (auto& t : stats["threads"]) {
    if (t["name"] == "app_thread") {
      found = true;
      EXPECT_GT(t["messages"].get<uint64_t>(), 0u);
    }
  }
  EXPECT_TRUE(found) << stats.dump();
  EXPECT_GT(stats["tick_rate"].get<uint64_t>(), 0u);
}

// SPDK's shape: per thread, its pollers in active, timed and paused lists.
TEST(TargetLifecycle, ThreadGetPollers) {
  Target target({"--cpus", "0-1"});
  json result = Parse(target.Rpc({"thread_get_pollers"}));
  EXPECT_GT(result["tick_rate"].get<uint64_t>(), 0u);
  ASSERT_TRUE(result["threads"].is_array()) << result.dump();
  bool app_thread = false;
  std::set<std::pair<uint64_t, uint64_t>> ids;  // (thread, poller): unique
  size_t pollers = 0;
  for (auto& t : result["threads"]) {
    app_thread |= t["name"] == "app_thread";
    for (const char* list : {"active_pollers", "timed_pollers", "paused_pollers"}) {
      ASSERT_TRUE(t[list].is_array()) << t.dump();
      for (auto& p : t[list]) {
        ++pollers;
        ids.insert({t["id"].get<uint64_t>(), p["id"].get<uint64_t>()});
        EXPECT_TRUE(p["name"].is_string()) << p.dump();
        EXPECT_LE(p["busy_count"].get<uint64_t>(), p["run_count"].get<uint64_t>()) << p.dump();
        EXPECT_EQ(p.contains("period_ticks"), std::string(list) == "timed_pollers") << p.dump();
        if (std::string(list) == "paused_pollers") {
          EXPECT_EQ(p["state"], "paused");
        }
      }
    }
  }
  EXPECT_TRUE(app_thread) << result.dump();
  EXPECT_GT(pollers, 0u) << result.dump();
  EXPECT_EQ(ids.size(), pollers) << result.dump();
}

TEST(TargetLifecycle, SetModeAtRunTime) {
  Target target({"--cpus", "0-1", "--mode", "interrupt"});
  ASSERT_EQ(Parse(target.Rpc({"framework_set_mode", "--mode", "poll"})), json(true));
  json reactors = Parse(target.Rpc({"framework_get_reactors"}));
  EXPECT_EQ(reactors["mode"], "poll");
  ASSERT_EQ(Parse(target.Rpc({"framework_set_mode", "--mode", "interrupt", "--spin-window-us",
                              "40"})),
            json(true));
  reactors = Parse(target.Rpc({"framework_get_reactors"}));
  EXPECT_EQ(reactors["mode"], "interrupt");
  EXPECT_EQ(reactors["spin_window_us"], 40);
  RunResult bad = target.Rpc({"framework_set_mode", "--mode", "sideways"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.err, HasSubstr("sideways"));
}

TEST(TargetLifecycle, IdleReactorsSleepInInterruptMode) {
  Target target({"--cpus", "0-1", "--mode", "interrupt"});
  // Every reactor goes to sleep between RPC calls: its sleep counter grows.
  json reactors = Parse(target.Rpc({"framework_get_reactors"}));
  for (auto& r : reactors["reactors"]) {
    EXPECT_GT(r["sleeps"].get<uint64_t>(), 0u) << r.dump();
    EXPECT_TRUE(r["awake_reasons"].empty()) << r.dump();
  }
}

TEST(TargetLifecycle, LogLevel) {
  Target target({"--cpus", "0"});
  EXPECT_EQ(Parse(target.Rpc({"log_set_level", "--level", "debug"})), json(true));
  EXPECT_EQ(Parse(target.Rpc({"log_get_level"})), json("debug"));
  RunResult bad = target.Rpc({"log_set_level", "--level", "loud"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.err, HasSubstr("loud"));
}

TEST(TargetLifecycle, SigintShutsDownCleanlyAndRemovesSocket) {
  Target target({"--cpus", "0-1"});
  ASSERT_TRUE(target.running());
  EXPECT_EQ(target.Signal(SIGINT), 0) << target.Stderr();
  EXPECT_FALSE(std::filesystem::exists(target.socket()));
  EXPECT_THAT(target.Stderr(), HasSubstr("shutting down"));
}

TEST(TargetLifecycle, FrameworkShutdownExitsZero) {
  Target target({"--cpus", "0-1", "--mode", "poll"});
  RunResult r = target.Rpc({"framework_shutdown"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(target.Wait(), 0) << target.Stderr();
  EXPECT_FALSE(std::filesystem::exists(target.socket()));
}

TEST(TargetLifecycle, TwoTargetsRunSideBySide) {
  Target first({"--cpus", "0"});
  Target second({"--cpus", "1"});
  ASSERT_TRUE(first.running()) << first.Stderr();
  ASSERT_TRUE(second.running()) << second.Stderr();
  EXPECT_EQ(Parse(first.Rpc({"framework_get_reactors"}))["reactors"][0]["core"], 0);
  EXPECT_EQ(Parse(second.Rpc({"framework_get_reactors"}))["reactors"][0]["core"], 1);
}

}  // namespace
}  // namespace pollux::testing
