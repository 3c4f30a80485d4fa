// pollux-tgt's vhost-user-blk target as a user runs it, driven by pollux-perf through the
// initiator (two processes): -w verify from 512 B to 128 KiB on split and packed rings with one
// and two queues served by two reactors, an initiator killed mid-I/O, and a front-end that
// sends garbage: the target survives each and serves the next client.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "nlohmann/json.hpp"
#include "process.h"
#include "virtio_initiator_config.h"

namespace pollux::testing {
namespace {

using Json = nlohmann::json;

std::string TargetConfig(bool packed) {
  return R"({"subsystems": [
    {"subsystem": "bdev", "config": [
      {"method": "bdev_malloc_create", "params": {"name": "Malloc0", "num_blocks": 131072, "block_size": 512}}]},
    {"subsystem": "vhost_blk", "config": [
      {"method": "vhost_create_blk_controller",
       "params": {"ctrlr": "vhost.0", "dev_name": "Malloc0", "cpumask": "0x3", "packed_ring": )" +
         std::string(packed ? "true" : "false") + "}}]}]}";
}

class VhostTargetTest : public ::testing::Test {
 protected:
  void StartTarget(bool packed) {
    target_ = std::make_unique<Target>(std::vector<std::string>{
        "-m", "0x3", "-S", dir_.path(), "-c", dir_.Write("tgt.json", TargetConfig(packed))});
    ASSERT_TRUE(target_->running()) << target_->Stderr();
  }
  RunResult Perf(const std::string& workload, const std::string& size, int queues, bool packed,
                 const std::string& seconds = "1") {
    return RunProgram(
        {POLLUX_PERF_PATH, "-c",
         dir_.Write("ini.json", VirtioInitiatorConfig(dir_.File("vhost.0"), queues, packed)), "-q",
         "16", "-o", size, "-w", workload, "-t", seconds, "-m", queues == 1 ? "0" : "0-1"},
        std::chrono::seconds(60));
  }
  Json Controllers() {
    RunResult r = target_->Rpc({"vhost_get_controllers"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return Json::parse(r.out, nullptr, false);
  }

  TempDir dir_;
  std::unique_ptr<Target> target_;
};

TEST_F(VhostTargetTest, VerifyOnSplitAndPackedRingsWithOneAndTwoQueues) {
  for (bool packed : {false, true}) {
    StartTarget(packed);
    for (int queues : {1, 2}) {
      for (const char* size : {"512", "4k", "128k"}) {
        SCOPED_TRACE(::testing::Message()
                     << (packed ? "packed" : "split") << ", " << queues << " queue(s), " << size);
        RunResult r = Perf("verify", size, queues, packed);
        EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
        EXPECT_NE(r.out.find("VirtioBlk0"), std::string::npos) << r.out;
      }
    }
    // Two queues, served by the threads of two reactors, each carried I/O.
    Json c = Controllers();
    ASSERT_TRUE(c.is_array() && c.size() == 1) << c.dump();
    ASSERT_GE(c[0]["queues"].size(), 2u) << c.dump();
    EXPECT_GT(c[0]["queues"][0]["requests"].get<uint64_t>(), 0u);
    EXPECT_GT(c[0]["queues"][1]["requests"].get<uint64_t>(), 0u);
    EXPECT_NE(c[0]["queues"][0]["thread"], c[0]["queues"][1]["thread"]);
    EXPECT_EQ(c[0]["queues"][0]["errors"].get<uint64_t>(), 0u);
    EXPECT_EQ(target_->Signal(SIGTERM), 0) << target_->Stderr();
  }
}

TEST_F(VhostTargetTest, AnInitiatorKilledMidIoLeavesTheTargetServing) {
  StartTarget(false);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::string config =
        dir_.Write("killed.json", VirtioInitiatorConfig(dir_.File("vhost.0"), 1, false));
    execl(POLLUX_PERF_PATH, POLLUX_PERF_PATH, "-c", config.c_str(), "-q", "32", "-o", "64k", "-w",
          "randrw", "-t", "30", "-m", "0", static_cast<char*>(nullptr));
    _exit(127);
  }
  // Kill it once requests flow.
  bool flowing = false;
  for (int i = 0; i < 200 && !flowing; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    Json c = Controllers();
    flowing = c.is_array() && !c[0]["queues"].empty() &&
              c[0]["queues"][0]["requests"].get<uint64_t>() > 1000;
  }
  EXPECT_TRUE(flowing);
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  // The session ends and a new initiator gets the disk.
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    Json c = Controllers();
    gone = c.is_array() && c[0]["sessions"].empty();
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(gone) << Controllers().dump();
  RunResult r = Perf("verify", "4k", 1, false);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

// Sends one raw vhost-user message: a header claiming `claimed_size` bytes, then `payload`.
void SendRaw(int fd, uint32_t request, uint32_t flags, const std::vector<uint8_t>& payload,
             uint32_t claimed_size) {
  uint32_t header[3] = {request, flags, claimed_size};
  std::vector<uint8_t> message(sizeof(header) + payload.size());
  std::memcpy(message.data(), header, sizeof(header));
  if (!payload.empty()) {
    std::memcpy(message.data() + sizeof(header), payload.data(), payload.size());
  }
  (void)send(fd, message.data(), message.size(), MSG_NOSIGNAL);
}

TEST_F(VhostTargetTest, GarbageFromAFrontEndIsRefusedAndTheTargetServesTheNext) {
  StartTarget(false);
  struct Case {
    uint32_t request, flags, size;
    std::vector<uint8_t> payload;
  };
  std::vector<Case> cases = {
      {0xdeadbeef, 1, 0, {}},                                        // unknown request
      {24 /* GET_CONFIG */, 1, 12, std::vector<uint8_t>(12, 0xff)},  // window past the end
      {24, 1, 4, {1, 2, 3, 4}},                                      // shorter than its own header
      {5 /* SET_MEM_TABLE */, 1, 8, std::vector<uint8_t>(8, 0xff)},  // no fds, bogus count
      {8 /* SET_VRING_NUM */, 1, 8, {0xe8, 0x03, 0, 0, 0xff, 0xff, 0, 0}},  // queue 1000
      {12 /* SET_VRING_KICK */, 1, 8, {0x01, 0, 0, 0, 0, 0, 0, 0}},         // no fd
      {1 /* GET_FEATURES */, 1, 0x100000, {}},                              // claims a huge payload
      {3 /* SET_OWNER */, 1, 3, {1, 2}},  // truncated payload, then hang up
  };
  for (const Case& c : cases) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::string path = dir_.File("vhost.0");
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << strerror(errno);
    SendRaw(fd, c.request, c.flags, c.payload, c.size);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    close(fd);
    ASSERT_TRUE(target_->running()) << "request " << c.request << ": " << target_->Stderr();
  }
  // Still serving: RPC answers and a real initiator verifies data.
  EXPECT_TRUE(Controllers().is_array());
  RunResult r = Perf("verify", "4k", 1, false);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << target_->Stderr();
}

}  // namespace
}  // namespace pollux::testing
