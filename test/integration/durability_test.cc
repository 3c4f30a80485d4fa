// Durability across kill -9 on the file engines (uring, aio, threadpool) with the write cache
// reported on: pollux-durability-test-app writes rounds of checksummed blocks with a FLUSH
// after each and records a round once its FLUSH completed; it is killed at random points, and
// the check then finds every flushed round's blocks there (or the next round's) and no block
// torn. A negative control proves the check catches a torn block and a lost flushed round.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "nlohmann/json.hpp"
#include "perf_runner.h"
#include "process.h"

namespace pollux::testing {
namespace {

using Json = nlohmann::json;

constexpr uint64_t kDiskBytes = 8 << 20;

uint64_t LastRound(const std::string& state) {
  std::ifstream in(state);
  uint64_t round = 0, last = 0;
  while (in >> round) last = round;
  return last;
}

class DurabilityTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    disk_ = dir_.File("disk.img");
    std::ofstream(disk_).close();
    ASSERT_EQ(truncate(disk_.c_str(), kDiskBytes), 0);
    config_ = dir_.Write("config.json", R"({"subsystems":[{"subsystem":"bdev","config":[
      {"method":"bdev_)" + GetParam() + R"(_create","params":{"name":"Disk0","filename":")" +
                                            disk_ + R"("}}]}]})");
    state_ = dir_.File("state");
  }

  std::vector<std::string> Args(const char* mode) const {
    return {POLLUX_DURABILITY_APP_PATH,
            "-c",
            config_,
            "-b",
            "Disk0",
            "--state",
            state_,
            mode,
            "-m",
            "0"};
  }

  // The check's exit code and JSON report.
  RunResult Check() { return RunProgram(Args("--check"), std::chrono::seconds(60)); }

  TempDir dir_;
  std::string disk_, config_, state_;
};

TEST_P(DurabilityTest, FlushedRoundsSurviveKillMinus9AndNoBlockIsTorn) {
  std::mt19937 random(42);
  for (int kill = 0; kill < 3; ++kill) {
    const uint64_t before = LastRound(state_);
    Process writer(Args("--write"));
    // A few rounds flushed in this run, then a kill at a random point of the next ones.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (LastRound(state_) < before + 2 && writer.running() &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ASSERT_GE(LastRound(state_), before + 2) << writer.Err();
    std::this_thread::sleep_for(std::chrono::microseconds(random() % 50'000));
    writer.Signal(SIGKILL);
    EXPECT_EQ(writer.Wait(std::chrono::seconds(10)), -1) << writer.Err();
  }
  RunResult check = Check();
  ASSERT_EQ(check.exit_code, 0) << Describe(check);
  Json report = Json::parse(check.out);
  EXPECT_EQ(report["flushed_round"], LastRound(state_)) << check.out;
  EXPECT_EQ(report["error_count"], 0) << check.out;
  EXPECT_EQ(report["blocks"], 2048) << check.out;  // 256 units of 4 KiB, 512-byte blocks
}

INSTANTIATE_TEST_SUITE_P(Engines, DurabilityTest, ::testing::Values("uring", "aio", "threadpool"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

// The check is not blind: a torn block and a flushed round that is missing both fail it.
TEST(DurabilityCheck, CatchesATornBlockAndALostFlushedRound) {
  TempDir dir;
  const std::string disk = dir.File("disk.img");
  std::ofstream(disk).close();
  ASSERT_EQ(truncate(disk.c_str(), kDiskBytes), 0);
  const std::string config = dir.Write("config.json", R"({"subsystems":[{"subsystem":"bdev",
    "config":[{"method":"bdev_uring_create","params":{"name":"Disk0","filename":")" +
                                                          disk + R"("}}]}]})");
  const std::string state = dir.File("state");
  auto args = [&](std::vector<std::string> mode) {
    std::vector<std::string> argv = {
        POLLUX_DURABILITY_APP_PATH, "-c", config, "-b", "Disk0", "--state", state, "-m", "0"};
    argv.insert(argv.end(), mode.begin(), mode.end());
    return argv;
  };
  RunResult write = RunProgram(args({"--write", "--rounds", "2"}));
  ASSERT_EQ(write.exit_code, 0) << Describe(write);
  ASSERT_EQ(RunProgram(args({"--check"})).exit_code, 0);

  // Half of block 5 from elsewhere: torn.
  {
    std::fstream file(disk, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(5 * 512 + 300);
    file.write("torn", 4);
  }
  RunResult torn = RunProgram(args({"--check"}));
  EXPECT_EQ(torn.exit_code, 1) << Describe(torn);
  EXPECT_NE(torn.out.find("block 5 is torn"), std::string::npos) << torn.out;

  // A round recorded as flushed that the disk does not hold: lost.
  ASSERT_EQ(RunProgram(args({"--write", "--rounds", "1"})).exit_code, 0);
  std::ofstream(state, std::ios::app) << "9\n";
  RunResult lost = RunProgram(args({"--check"}));
  EXPECT_EQ(lost.exit_code, 1) << Describe(lost);
  EXPECT_NE(lost.out.find("but round 9 was flushed"), std::string::npos) << lost.out;
}

}  // namespace
}  // namespace pollux::testing
