// The rbd bdev in real pollux-perf and pollux-tgt processes against a one-node Ceph cluster
// (test/support/ceph): verify runs, resizes seen from the RPC and from `rbd resize`,
// save_config replayed, the cluster stopped under I/O and started again, and every bad
// parameter. Skipped only where the Ceph programs are not installed (scripts/setup.sh installs
// them).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "ceph_cluster.h"
#include "perf_runner.h"
#include "process.h"

namespace pollux::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

class RbdProcessTest : public PerfProcessTest {
 protected:
  void SetUp() override {
    if (auto missing = CephCluster::MissingPrograms()) GTEST_SKIP() << *missing;
    ASSERT_TRUE(cluster_.Start()) << cluster_.error();
  }

  // The librados settings of cluster "ceph" in the configs below, plus `extra`.
  json ClusterParams(const json& extra = json::object()) const {
    json settings = cluster_.ClientConfig();
    settings.update(extra);
    return {{"name", "ceph"}, {"config_param", settings}};
  }
  // A config that registers the cluster as "ceph" and creates bdev Rbd0 over rbd/`image`.
  std::string Config(const std::string& image, const json& extra = json::object(),
                     uint32_t block_size = 512) const {
    json calls = json::array();
    calls.push_back({{"method", "bdev_rbd_register_cluster"}, {"params", ClusterParams(extra)}});
    calls.push_back({{"method", "bdev_rbd_create"},
                     {"params",
                      {{"name", "Rbd0"},
                       {"pool_name", "rbd"},
                       {"rbd_name", image},
                       {"block_size", block_size},
                       {"cluster_name", "ceph"}}}});
    json bdev_subsystem = {{"subsystem", "bdev"}, {"config", calls}};
    return json({{"subsystems", json::array({bdev_subsystem})}}).dump(2);
  }
  // bdev_get_bdevs' num_blocks of `name` on `target`; 0 if it cannot be read.
  static uint64_t NumBlocks(const Target& target, const std::string& name) {
    RunResult r = target.Rpc({"bdev_get_bdevs", "--name", name});
    if (r.exit_code != 0) return 0;
    return json::parse(r.out)[0]["num_blocks"].get<uint64_t>();
  }

  CephCluster cluster_;
};

// Polls `condition` every 100 ms for up to `timeout` (a hang guard, not a measurement).
bool WaitFor(const std::function<bool()>& condition,
             std::chrono::seconds timeout = std::chrono::seconds(60)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return true;
}

TEST_F(RbdProcessTest, PerfVerifiesAt4KiBAnd128KiB) {
  ASSERT_TRUE(cluster_.CreateImage("img", 256)) << cluster_.error();
  const std::string config = Config("img");
  for (const char* size : {"4k", "128k"}) {
    RunResult r = Perf(config, {"-q", "16", "-o", size, "-w", "verify", "-t", "2", "--json"});
    ASSERT_EQ(r.exit_code, 0) << size << "\n" << r.err;
    json result = ParseJson(r);
    EXPECT_EQ(result["status"], "ok") << size;
    EXPECT_GT(result["total"]["ops"].get<uint64_t>(), 0u) << size;
    EXPECT_EQ(result["total"]["io_errors"], 0) << size;
    EXPECT_EQ(result["total"]["miscompares"], 0) << size;
  }
}

TEST_F(RbdProcessTest, ResizeIsSeenFromTheRpcAndFromOutside) {
  ASSERT_TRUE(cluster_.CreateImage("img", 64)) << cluster_.error();
  Target target({"--cpus", "0", "-c", dir_.Write("rbd.json", Config("img"))});
  ASSERT_TRUE(target.running()) << target.Stderr();
  EXPECT_EQ(NumBlocks(target, "Rbd0"), 64u << 11);

  // bdev_rbd_resize: SPDK's MiB; the bdev has the new size when the call answers.
  RunResult grown = target.Rpc({"bdev_rbd_resize", "--name", "Rbd0", "--new-size", "128"});
  ASSERT_EQ(grown.exit_code, 0) << grown.err;
  EXPECT_EQ(grown.out, "true\n");
  EXPECT_EQ(NumBlocks(target, "Rbd0"), 128u << 11);
  RunResult shrink = target.Rpc({"bdev_rbd_resize", "--name", "Rbd0", "--new-size", "32"});
  EXPECT_EQ(shrink.exit_code, 1);
  EXPECT_THAT(shrink.err, HasSubstr("smaller than its 128 MiB"));
  EXPECT_EQ(NumBlocks(target, "Rbd0"), 128u << 11);

  // Another client grows the image: librbd's update watch tells the bdev.
  CephCommandResult resized = cluster_.Rbd({"resize", "--size", "192M", "rbd/img"});
  ASSERT_EQ(resized.exit_code, 0) << resized.output;
  EXPECT_TRUE(WaitFor([&] { return NumBlocks(target, "Rbd0") == (192u << 11); }))
      << NumBlocks(target, "Rbd0") << "\n"
      << target.Stderr();
}

TEST_F(RbdProcessTest, SaveConfigWritesClustersFirstAndReplays) {
  ASSERT_TRUE(cluster_.CreateImage("img", 32)) << cluster_.error();
  ASSERT_TRUE(cluster_.CreateImage("own", 32)) << cluster_.error();
  json saved;
  {
    Target target(
        {"--cpus", "0", "-c", dir_.Write("rbd.json", Config("img", json::object(), 4096))});
    ASSERT_TRUE(target.running()) << target.Stderr();
    // A second bdev with its own connection (user_id and config instead of cluster_name).
    json own = {{"name", "Own0"},
                {"pool_name", "rbd"},
                {"rbd_name", "own"},
                {"user_id", "admin"},
                {"config", cluster_.ClientConfig()}};
    RunResult created = target.Rpc({"bdev_rbd_create", "-j", own.dump()});
    ASSERT_EQ(created.exit_code, 0) << created.err;
    EXPECT_EQ(created.out, "\"Own0\"\n");

    RunResult info = target.Rpc({"bdev_rbd_get_clusters_info", "--name", "ceph"});
    ASSERT_EQ(info.exit_code, 0) << info.err;
    EXPECT_EQ(json::parse(info.out)["bdevs"], json::array({"Rbd0"}));
    RunResult bdev = target.Rpc({"bdev_get_bdevs", "--name", "Rbd0"});
    json rbd = json::parse(bdev.out)[0]["driver_specific"]["rbd"];
    EXPECT_EQ(rbd["pool_name"], "rbd");
    EXPECT_EQ(rbd["rbd_name"], "img");
    EXPECT_EQ(rbd["cluster_name"], "ceph");

    RunResult r = target.Rpc({"save_config"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    saved = json::parse(r.out);
  }
  std::vector<std::string> methods;
  for (const json& subsystem : saved["subsystems"]) {
    if (subsystem["subsystem"] != "bdev") continue;
    for (const json& call : subsystem["config"]) {
      const std::string method = call["method"];
      if (method.rfind("bdev_rbd_", 0) == 0) methods.push_back(method);
    }
  }
  EXPECT_THAT(methods, ::testing::ElementsAre("bdev_rbd_register_cluster", "bdev_rbd_create",
                                              "bdev_rbd_create"));

  // The saved config makes the same bdevs (UUIDs included) in a new target.
  Target again({"--cpus", "0", "-c", dir_.Write("saved.json", saved.dump())});
  ASSERT_TRUE(again.running()) << again.Stderr();
  RunResult saved_again = again.Rpc({"save_config"});
  ASSERT_EQ(saved_again.exit_code, 0) << saved_again.err;
  EXPECT_EQ(json::parse(saved_again.out), saved);

  // A cluster in use stays; once its bdev is gone it goes.
  RunResult busy = again.Rpc({"bdev_rbd_unregister_cluster", "--name", "ceph"});
  EXPECT_EQ(busy.exit_code, 1);
  EXPECT_THAT(busy.err, HasSubstr("used by bdev Rbd0"));
  ASSERT_EQ(again.Rpc({"bdev_rbd_delete", "--name", "Rbd0"}).exit_code, 0);
  RunResult gone = again.Rpc({"bdev_rbd_unregister_cluster", "--name", "ceph"});
  EXPECT_EQ(gone.exit_code, 0) << gone.err;
  EXPECT_EQ(json::parse(again.Rpc({"bdev_rbd_get_clusters_info"}).out), json::array());
}

TEST_F(RbdProcessTest, ClusterStoppedUnderIoFailsItAndComesBack) {
  ASSERT_TRUE(cluster_.CreateImage("img", 64)) << cluster_.error();
  ASSERT_TRUE(cluster_.CreateImage("other", 32)) << cluster_.error();
  // Failures after 3 s without the cluster instead of the module's default 30.
  const json timeouts = {{"rados_osd_op_timeout", "3"}, {"rados_mon_op_timeout", "3"}};
  // A target keeps its connection through the outage (bdev Rbd0 on "other").
  Target target({"--cpus", "0", "-c", dir_.Write("tgt.json", Config("other", timeouts))});
  ASSERT_TRUE(target.running()) << target.Stderr();
  const std::string socket = dir_.File("perf.sock");
  const std::string perf_config = dir_.Write("perf.json", Config("img", timeouts));
  Process perf({PerfPath(), "-c", perf_config, "-r", socket, "-q", "8", "-o", "4k", "-w", "verify",
                "-t", "300"});
  auto ops = [&]() -> uint64_t {
    RunResult r = RunProgram({RpcPath(), "-s", socket, "bdev_get_iostat", "--name", "Rbd0"});
    if (r.exit_code != 0) return 0;
    json bdev = json::parse(r.out)["bdevs"][0];
    return bdev["num_read_ops"].get<uint64_t>() + bdev["num_write_ops"].get<uint64_t>();
  };
  ASSERT_TRUE(WaitFor([&] { return ops() > 0; })) << perf.Err();

  cluster_.Stop();
  // Errors, not a hang: the I/O at librbd fails once its timeout has passed, the job stops at
  // its first error (pollux-perf's rule), drains and the run ends by itself.
  EXPECT_EQ(perf.Wait(std::chrono::seconds(120)), 1) << perf.Err();
  EXPECT_THAT(perf.Err(), HasSubstr("I/O error on bdev Rbd0"));
  EXPECT_THAT(perf.Err(), HasSubstr("Connection timed out"));
  // The target's calls that need the cluster fail the same way, and it answers the others.
  RunResult down = target.Rpc({"bdev_rbd_resize", "--name", "Rbd0", "--new-size", "64"});
  EXPECT_EQ(down.exit_code, 1) << down.out;
  // librbd cannot take the exclusive lock a resize needs: EROFS rather than ETIMEDOUT.
  EXPECT_THAT(down.err, HasSubstr("resizing the image to 67108864 bytes"));
  EXPECT_EQ(NumBlocks(target, "Rbd0"), 32u << 11);

  // Back on the same directory and ports: the target's connection finds it again by itself
  // (once the mon client's hunt and the objecter's resend have caught up: awaited, not timed).
  ASSERT_TRUE(cluster_.Restart()) << cluster_.error();
  EXPECT_TRUE(WaitFor([&] {
    return target.Rpc({"bdev_rbd_resize", "--name", "Rbd0", "--new-size", "64"}).exit_code == 0;
  })) << target.Stderr();
  EXPECT_EQ(NumBlocks(target, "Rbd0"), 64u << 11);
}

TEST_F(RbdProcessTest, BadParametersFailClearlyAndLeaveNothing) {
  ASSERT_TRUE(cluster_.CreateImage("img", 32)) << cluster_.error();
  Target target({"--cpus", "0"});
  ASSERT_TRUE(target.running()) << target.Stderr();
  auto call = [&](const std::string& method, const json& params) {
    return target.Rpc({method, "-j", params.dump()});
  };
  // pollux-rpc prints the error as JSON: its message is compared unescaped.
  auto expect_error = [&](const std::string& method, const json& params, const std::string& text) {
    RunResult r = call(method, params);
    EXPECT_EQ(r.exit_code, 1) << method << " " << params.dump() << "\n" << r.out;
    const json error = json::parse(r.err, nullptr, /*allow_exceptions=*/false);
    EXPECT_THAT(error.is_object() ? error.value("message", "") : r.err, HasSubstr(text))
        << method << " " << params.dump();
  };
  RunResult registered = call("bdev_rbd_register_cluster", ClusterParams());
  ASSERT_EQ(registered.exit_code, 0) << registered.err;
  EXPECT_EQ(registered.out, "\"ceph\"\n");
  expect_error("bdev_rbd_register_cluster", ClusterParams(),
               "cluster \"ceph\" is already registered");
  expect_error("bdev_rbd_register_cluster", {{"name", "f"}, {"config_file", "/nonexistent.conf"}},
               "config_file \"/nonexistent.conf\"");
  expect_error("bdev_rbd_register_cluster",
               {{"name", "x"}, {"config_param", {{"no_such_option", "1"}}}}, "no_such_option");

  const json bdev = {
      {"name", "Rbd0"}, {"pool_name", "rbd"}, {"rbd_name", "img"}, {"cluster_name", "ceph"}};
  auto with = [&](const json& changes) {
    json params = bdev;
    params.update(changes);
    return params;
  };
  expect_error("bdev_rbd_create", with({{"cluster_name", "nope"}}),
               "cluster \"nope\" is not registered");
  expect_error("bdev_rbd_create", with({{"pool_name", "nopool"}}),
               "pool \"nopool\" does not exist");
  expect_error("bdev_rbd_create", with({{"rbd_name", "missing"}}),
               "image \"missing\" does not exist in pool \"rbd\"");
  expect_error("bdev_rbd_create", with({{"block_size", 1000}}),
               "block_size 1000 is not a power of two");
  expect_error("bdev_rbd_create", with({{"uuid", "not-a-uuid"}}), "is not a UUID");
  expect_error("bdev_rbd_create", with({{"config", cluster_.ClientConfig()}}),
               "cluster_name excludes user_id and config");
  expect_error("bdev_rbd_resize", {{"name", "Rbd0"}, {"new_size", 64}}, "no rbd bdev named Rbd0");
  RunResult created = call("bdev_rbd_create", bdev);
  ASSERT_EQ(created.exit_code, 0) << created.err;
  expect_error("bdev_rbd_create", bdev, "bdev name Rbd0 already exists");
  expect_error("bdev_rbd_unregister_cluster", {{"name", "ceph"}}, "used by bdev Rbd0");
  expect_error("bdev_rbd_unregister_cluster", {{"name", "nope"}}, "not registered");

  // A cluster that never answers: the call fails once client_mount_timeout has passed, and
  // meanwhile the target answers every other call.
  int dead_port = cluster_.mon_port() + 50;  // inside the cluster's range, where no mon listens
  json dead = {{"name", "dead"},
               {"config_param",
                {{"mon_host", "v2:127.0.0.1:" + std::to_string(dead_port)},
                 {"auth_client_required", "none"},
                 {"client_mount_timeout", "5"}}}};
  Process waiting(
      {RpcPath(), "-s", target.socket(), "bdev_rbd_register_cluster", "-j", dead.dump()});
  RunResult meanwhile = target.Rpc({"bdev_get_bdevs"});
  EXPECT_EQ(meanwhile.exit_code, 0) << meanwhile.err;
  EXPECT_TRUE(waiting.running()) << "the dead cluster answered before bdev_get_bdevs did";
  EXPECT_EQ(waiting.Wait(std::chrono::seconds(60)), 1);
  EXPECT_THAT(waiting.Err(), HasSubstr("connecting to the Ceph cluster at v2:127.0.0.1:"));
  // The same for a bdev's own connection.
  json own_dead = {{"name", "Dead0"},
                   {"pool_name", "rbd"},
                   {"rbd_name", "img"},
                   {"config", dead["config_param"]}};
  expect_error("bdev_rbd_create", own_dead, "connecting to the Ceph cluster");

  // Nothing stayed of the failures: one bdev, one cluster.
  RunResult bdevs = target.Rpc({"bdev_get_bdevs"});
  ASSERT_EQ(bdevs.exit_code, 0);
  ASSERT_EQ(json::parse(bdevs.out).size(), 1u) << bdevs.out;
  EXPECT_EQ(json::parse(bdevs.out)[0]["name"], "Rbd0");
  RunResult clusters = target.Rpc({"bdev_rbd_get_clusters_info"});
  ASSERT_EQ(clusters.exit_code, 0);
  ASSERT_EQ(json::parse(clusters.out).size(), 1u) << clusters.out;
  EXPECT_EQ(json::parse(clusters.out)[0]["cluster_name"], "ceph");
}

}  // namespace
}  // namespace pollux::testing
