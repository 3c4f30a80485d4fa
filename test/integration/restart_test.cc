// Programs killed with SIGKILL while clients are connected start again cleanly: the stale RPC
// and vhost-user sockets are replaced, the runtime folder DPDK kept for the dead process is
// removed, and the new process serves its clients.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "nlohmann/json.hpp"
#include "perf_runner.h"
#include "process.h"
#include "raw_client.h"
#include "virtio_initiator_config.h"

namespace pollux::testing {
namespace {

using Json = nlohmann::json;

// Where DPDK keeps the runtime folder of the pollux process `pid` (env/stale_runtime_files.h).
std::filesystem::path RuntimeDir(pid_t pid) {
  const char* xdg = std::getenv("XDG_RUNTIME_DIR");
  const std::string base =
      getuid() == 0 ? "/var/run/dpdk" : std::string(xdg != nullptr ? xdg : "/tmp") + "/dpdk";
  return base + "/pollux_" + std::to_string(pid);
}

constexpr char kTargetConfig[] = R"({"subsystems": [
  {"subsystem": "bdev", "config": [
    {"method": "bdev_malloc_create",
     "params": {"name": "Malloc0", "num_blocks": 65536, "block_size": 512}}]},
  {"subsystem": "vhost_blk", "config": [
    {"method": "vhost_create_blk_controller",
     "params": {"ctrlr": "vhost.0", "dev_name": "Malloc0", "cpumask": "0x1"}}]}]})";

uint64_t RequestsServed(const Target& target) {
  RunResult r = target.Rpc({"vhost_get_controllers"});
  Json c = Json::parse(r.out, nullptr, false);
  if (!c.is_array() || c.empty() || c[0]["queues"].empty()) return 0;
  return c[0]["queues"][0].value("requests", uint64_t{0});
}

TEST(RestartAfterKill, TargetKilledWithClientsConnectedStartsAgain) {
  TempDir dir;
  const std::vector<std::string> args = {"-m",       "0",  "-S",
                                         dir.path(), "-c", dir.Write("tgt.json", kTargetConfig)};
  auto killed = std::make_unique<Target>(args);
  ASSERT_TRUE(killed->running()) << killed->Stderr();
  RawClient rpc_client(killed->socket());
  ASSERT_TRUE(rpc_client.connected());
  const std::string initiator_config =
      dir.Write("ini.json", VirtioInitiatorConfig(dir.File("vhost.0"), 1, false));
  Process initiator({PerfPath(), "-c", initiator_config, "-q", "16", "-o", "4k", "-w", "randrw",
                     "-t", "60", "-m", "0"});
  bool flowing = false;
  for (int i = 0; i < 200 && !flowing; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    flowing = RequestsServed(*killed) > 100;
  }
  ASSERT_TRUE(flowing) << initiator.Err();

  const pid_t dead = killed->pid();
  killed->Signal(SIGKILL);
  initiator.Signal(SIGKILL);  // its back-end is gone: no use to anyone now
  Target restarted(args, killed->socket());
  ASSERT_TRUE(restarted.running()) << restarted.Stderr();
  EXPECT_FALSE(std::filesystem::exists(RuntimeDir(dead))) << RuntimeDir(dead);
  RunResult bdevs = restarted.Rpc({"bdev_get_bdevs", "--name", "Malloc0"});
  EXPECT_EQ(bdevs.exit_code, 0) << bdevs.err;
  RunResult verify = RunProgram({PerfPath(), "-c", initiator_config, "-q", "16", "-o", "4k", "-w",
                                 "verify", "-t", "1", "-m", "0"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
}

TEST(RestartAfterKill, PerfKilledWithAnRpcClientConnectedStartsAgain) {
  TempDir dir;
  const std::string socket = dir.File("perf.sock");
  const std::string config = dir.Write("perf.json", R"({"subsystems": [{"subsystem": "bdev",
    "config": [{"method": "bdev_malloc_create",
                "params": {"name": "Malloc0", "num_blocks": 65536, "block_size": 512}}]}]})");
  auto args = [&](const char* seconds) {
    return std::vector<std::string>{PerfPath(), "-c", config, "-b", "Malloc0", "-w",
                                    "verify",   "-q", "4",    "-o", "4096",    "-t",
                                    seconds,    "-m", "0",    "-r", socket};
  };
  pid_t dead = 0;
  {
    Process killed(args("60"));
    dead = killed.pid();
    bool serving = false;
    for (int i = 0; i < 400 && !serving && killed.running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      RawClient probe(socket);
      serving = probe.connected();
    }
    ASSERT_TRUE(serving) << killed.Err();
    RawClient client(socket);
    ASSERT_TRUE(client.connected());
    killed.Signal(SIGKILL);
    EXPECT_EQ(killed.Wait(std::chrono::seconds(10)), -1);
  }
  RunResult r = RunProgram(args("1"));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.err.find("in use"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(RuntimeDir(dead))) << RuntimeDir(dead);
}

}  // namespace
}  // namespace pollux::testing
