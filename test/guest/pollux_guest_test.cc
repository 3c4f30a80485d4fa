// What only pollux-tgt's target is asked for, through a real guest: the guest's flushes reach
// the bdev (write cache on), two queues are served by the threads of two reactors, a target
// killed with I/O in flight and started again loses nothing (inflight resubmission), and the
// verify workload fails against a bdev that corrupts reads (so its checks are known to bite).
// The shared workloads run against pollux-tgt in guest_workload_test.cc.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "guest_disk.h"
#include "guest_output.h"
#include "guest_workloads.h"
#include "pollux_target.h"

namespace pollux::testing {
namespace {

using Json = nlohmann::json;
constexpr uint64_t MiB = 1024 * 1024;

PolluxTgtTarget& Tgt(GuestDisk& disk) {
  auto* target = dynamic_cast<PolluxTgtTarget*>(disk.target());
  EXPECT_NE(target, nullptr) << "no pollux-tgt runs for this disk";
  return *target;
}

// A counter of bdev_get_iostat for `bdev` (0 when absent).
uint64_t IoStat(PolluxTgtTarget& target, const std::string& bdev, const std::string& counter) {
  absl::StatusOr<Json> stats = target.Rpc("bdev_get_iostat", {{"name", bdev}});
  EXPECT_TRUE(stats.ok()) << stats.status();
  if (!stats.ok()) return 0;
  const Json& list = stats->contains("bdevs") ? (*stats)["bdevs"] : *stats;
  for (const Json& b : list) {
    if (b.value("name", "") == bdev) return b.value(counter, uint64_t{0});
  }
  return 0;
}

Json Queues(PolluxTgtTarget& target) {
  absl::StatusOr<Json> c = target.Rpc("vhost_get_controllers");
  EXPECT_TRUE(c.ok()) << c.status();
  if (!c.ok() || !c->is_array() || c->empty()) return Json::array();
  return (*c)[0]["queues"];
}

TEST(PolluxGuestTest, FlushesReachTheBdevWithTheWriteCacheOn) {
  const PolluxTgtLauncher launcher;
  GuestDisk disk(launcher, {});
  ASSERT_TRUE(disk.Create().ok());
  ASSERT_TRUE(disk.StartTarget().ok());
  absl::StatusOr<GuestRun> run = disk.Boot(WorkloadScript(
      "result cache \"$(cat /sys/block/vda/queue/write_cache)\"\n"
      "must dd dd if=/dev/urandom of=$DISK bs=4k count=64 conv=fsync\n"
      "must sync sync\n"));
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_TRUE(run->ok()) << disk.Explain(*run);
  EXPECT_EQ(ParseResults(run->output)["cache"], "write back") << disk.Explain(*run);
  EXPECT_GT(IoStat(Tgt(disk), "Disk0", "num_flush_ops"), 0u)
      << "the guest's flushes did not reach the bdev";
}

TEST(PolluxGuestTest, TwoQueuesAreServedByTwoReactors) {
  const PolluxTgtLauncher launcher;
  GuestDisk disk(launcher, {.num_queues = 2});
  ASSERT_TRUE(disk.Create().ok());
  RunFioVerify(disk, {.name = "twoqueues", .bytes_per_job = 8 * MiB, .jobs = 2}, {.vcpus = 2});
  if (HasFailure()) return;
  Json queues = Queues(Tgt(disk));
  ASSERT_GE(queues.size(), 2u) << queues.dump();
  EXPECT_GT(queues[0]["requests"].get<uint64_t>(), 0u) << queues.dump();
  EXPECT_GT(queues[1]["requests"].get<uint64_t>(), 0u) << queues.dump();
  EXPECT_NE(queues[0]["thread"], queues[1]["thread"]) << queues.dump();
  EXPECT_EQ(queues[0]["errors"].get<uint64_t>() + queues[1]["errors"].get<uint64_t>(), 0u);
}

TEST(PolluxGuestTest, KilledTargetRestartedLosesNoWrite) {
  const PolluxTgtLauncher launcher;
  GuestDisk disk(launcher, {});
  ASSERT_TRUE(disk.Create().ok());
  ASSERT_TRUE(disk.StartTarget().ok());
  PolluxTgtTarget& target = Tgt(disk);
  const FioVerifySpec spec{.name = "reconnect", .bytes_per_job = 48 * MiB};
  std::optional<absl::StatusOr<GuestRun>> run;
  std::thread guest([&] {
    run = disk.Boot(WorkloadScript("run_fio reconnect " + FioArgs(spec) +
                                   " || fail \"fio verify reconnect\"\n"),
                    {}, {.reconnect = true, .timeout = std::chrono::seconds(200)});
  });
  // Once the guest's writes flow, kill -9 the target and start it again.
  bool flowing = false;
  for (int i = 0; i < 600 && !flowing && !run.has_value(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    Json queues = Queues(target);
    flowing = !queues.empty() && queues[0]["requests"].get<uint64_t>() > 2000;
  }
  EXPECT_TRUE(flowing) << "the guest's writes did not start";
  if (flowing) {
    target.Kill();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    absl::Status restarted = target.Restart();
    EXPECT_TRUE(restarted.ok()) << restarted;
  }
  guest.join();
  ASSERT_TRUE(run.has_value() && run->ok()) << (run ? run->status() : absl::UnknownError("no run"));
  ASSERT_TRUE((*run)->ok()) << disk.Explain(**run);
  absl::StatusOr<FioResult> fio = ParseFio((*run)->output, "reconnect");
  ASSERT_TRUE(fio.ok()) << fio.status();
  EXPECT_EQ(fio->error(), 0) << fio->Describe();
  EXPECT_EQ(fio->write_bytes(), spec.bytes_per_job) << fio->Describe();
  EXPECT_EQ(fio->read_bytes(), spec.bytes_per_job) << "the verify pass\n" << fio->Describe();
}

// The bdev grows while the guest runs (the backing file grown, bdev_uring_rescan): the guest's
// kernel hears of it (virtio config change, through the vhost-user back-end channel) and
// writes and reads its new end.
TEST(PolluxGuestTest, AGrownBdevIsSeenByTheGuest) {
  const PolluxTgtLauncher launcher;
  GuestDisk disk(launcher, {.size_bytes = 64 * MiB});
  ASSERT_TRUE(disk.Create().ok());
  ASSERT_TRUE(disk.StartTarget().ok());
  PolluxTgtTarget& target = Tgt(disk);
  const uint64_t new_sectors = 128 * MiB / 512;
  const std::string tail_offset = std::to_string(120 * MiB);
  std::optional<absl::StatusOr<GuestRun>> run;
  std::thread guest([&] {
    run = disk.Boot(
        WorkloadScript("i=0\n"
                       "while [ \"$(cat /sys/block/vda/size)\" != " +
                       std::to_string(new_sectors) +
                       " ] && [ $i -lt 120 ]; do sleep 1; i=$((i+1)); done\n"
                       "result size $(cat /sys/block/vda/size)\n"
                       "head -c 1048576 /dev/urandom >/tmp/tail.bin\n"
                       "must dd dd if=/tmp/tail.bin of=$DISK bs=65536 oflag=direct,seek_bytes "
                       "seek=" +
                       tail_offset +
                       "\n"
                       "result sha.written $(file_sha /tmp/tail.bin)\n"
                       "result sha.read $(disk_sha " +
                       tail_offset + " 1048576)\n"),
        {}, {.timeout = std::chrono::seconds(200)});
  });
  // Once the guest's kernel has read the disk (its size among the rest), grow it.
  bool probed = false;
  for (int i = 0; i < 900 && !probed && !run.has_value(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    Json queues = Queues(target);
    probed = !queues.empty() && queues[0]["requests"].get<uint64_t>() > 0;
  }
  EXPECT_TRUE(probed) << "the guest never read the disk";
  if (probed) {
    EXPECT_EQ(truncate(disk.backing_file().c_str(), 128 * MiB), 0);
    absl::StatusOr<Json> rescan = target.Rpc("bdev_uring_rescan", {{"name", target.bdev()}});
    EXPECT_TRUE(rescan.ok()) << rescan.status();
  }
  guest.join();
  ASSERT_TRUE(run.has_value() && run->ok()) << (run ? run->status() : absl::UnknownError("no run"));
  ASSERT_TRUE((*run)->ok()) << disk.Explain(**run);
  std::map<std::string, std::string> results = ParseResults((*run)->output);
  EXPECT_EQ(results["size"], std::to_string(new_sectors)) << disk.Explain(**run);
  EXPECT_EQ(results["sha.read"], results["sha.written"]) << disk.Explain(**run);
  EXPECT_FALSE(results["sha.written"].empty()) << disk.Explain(**run);
}

// The checks bite: the same verify against a bdev that corrupts every read must fail.
TEST(PolluxGuestTest, VerifyFailsAgainstABdevThatCorruptsReads) {
  const PolluxTgtLauncher launcher({.corrupt_reads = true});
  GuestDisk disk(launcher, {});
  ASSERT_TRUE(disk.Create().ok());
  ::testing::TestPartResultArray failures;
  {
    ::testing::ScopedFakeTestPartResultReporter capture(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &failures);
    RunFioVerify(disk, {.name = "corrupt", .bytes_per_job = 4 * MiB});
  }
  std::string messages;
  for (int i = 0; i < failures.size(); ++i) messages += failures.GetTestPartResult(i).message();
  ASSERT_GT(failures.size(), 0) << "fio verify passed against a bdev that corrupts reads";
  EXPECT_NE(messages.find("FAIL: fio verify corrupt"), std::string::npos) << messages;
}

}  // namespace
}  // namespace pollux::testing
