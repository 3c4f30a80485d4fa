// Real Linux guests (QEMU under TCG) whose disk is a vhost-user-blk socket, running workloads
// through the guest's own virtio-blk driver. Every GuestWorkloadTest runs against each target
// launcher the suite is instantiated with: qemu-storage-daemon and pollux-tgt. Two more tests check the machinery itself:
// the timeout, and that the checks fail against a target that drops writes. The image comes
// from scripts/guest-image.sh (the CTest fixture guest_image); the tests run one at a time
// (RUN_SERIAL), each in 5-20 s here.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <memory>

#include "guest_disk.h"
#include "guest_workloads.h"
#include "pollux_target.h"
#include "qsd_target.h"

namespace pollux::testing {

// Test names print the target's name, not the launcher's address.
void PrintTo(const VhostBlkTargetLauncher* launcher, std::ostream* os) { *os << launcher->name(); }

namespace {

constexpr uint64_t MiB = 1024 * 1024;

class GuestWorkloadTest : public ::testing::TestWithParam<const VhostBlkTargetLauncher*> {
 protected:
  // A disk on tmpfs for the target under test; its target is not started yet.
  std::unique_ptr<GuestDisk> CreateDisk(GuestDiskOptions options = {}) {
    auto disk = std::make_unique<GuestDisk>(*GetParam(), options);
    absl::Status status = disk->Create();
    if (!status.ok()) {
      ADD_FAILURE() << status;
      return nullptr;
    }
    return disk;
  }
};

TEST_P(GuestWorkloadTest, FioVerifyRandom4k) {
  std::unique_ptr<GuestDisk> disk = CreateDisk();
  ASSERT_NE(disk, nullptr);
  RunFioVerify(*disk, {.name = "rand4k", .block_sizes = "4k", .bytes_per_job = 16 * MiB});
}

TEST_P(GuestWorkloadTest, FioVerifyMixed4kTo256k) {
  std::unique_ptr<GuestDisk> disk = CreateDisk();
  ASSERT_NE(disk, nullptr);
  RunFioVerify(
      *disk,
      {.name = "mixed", .block_sizes = "4k/40:16k/20:64k/20:256k/20", .bytes_per_job = 32 * MiB});
}

TEST_P(GuestWorkloadTest, DdDirectAndBufferedChecksums) {
  std::unique_ptr<GuestDisk> disk = CreateDisk();
  ASSERT_NE(disk, nullptr);
  RunDdChecksums(*disk);
}

TEST_P(GuestWorkloadTest, Ext4FsckRemountAndReboot) {
  std::unique_ptr<GuestDisk> disk = CreateDisk();
  ASSERT_NE(disk, nullptr);
  RunExt4(*disk);
}

TEST_P(GuestWorkloadTest, DiscardAndWriteZeroesOnUnalignedRanges) {
  std::unique_ptr<GuestDisk> disk = CreateDisk();
  ASSERT_NE(disk, nullptr);
  RunDiscardAndWriteZeroes(*disk);
}

TEST_P(GuestWorkloadTest, TwoVcpusUseTwoQueues) {
  std::unique_ptr<GuestDisk> disk = CreateDisk({.num_queues = 2});
  ASSERT_NE(disk, nullptr);
  DeviceReport device;
  RunFioVerify(*disk, {.name = "twoqueues", .bytes_per_job = 8 * MiB, .jobs = 2}, {.vcpus = 2},
               &device);
  if (HasFailure()) return;
  EXPECT_EQ(device.hw_queues, 2) << "the guest's blk-mq does not see 2 hardware queues";
  ASSERT_EQ(device.queue_interrupts.size(), 2u) << "request queues with an interrupt";
  for (const auto& [queue, interrupts] : device.queue_interrupts) {
    EXPECT_GT(interrupts, 0u) << "request queue " << queue
                              << " completed nothing with one fio job pinned to each vCPU";
  }
}

TEST_P(GuestWorkloadTest, SplitRingVerify) {
  std::unique_ptr<GuestDisk> disk = CreateDisk();
  ASSERT_NE(disk, nullptr);
  DeviceReport device{.packed_ring = true};
  RunFioVerify(*disk, {.name = "split", .bytes_per_job = 8 * MiB}, {.packed_ring = false}, &device);
  if (HasFailure()) return;
  EXPECT_FALSE(device.packed_ring) << "packed=off, yet the guest negotiated a packed ring";
}

TEST_P(GuestWorkloadTest, PackedRingVerify) {
  std::unique_ptr<GuestDisk> disk = CreateDisk();
  ASSERT_NE(disk, nullptr);
  DeviceReport device;
  RunFioVerify(*disk, {.name = "packed", .bytes_per_job = 8 * MiB}, {.packed_ring = true}, &device);
  if (HasFailure()) return;
  // A target without packed rings leaves QEMU's packed=on unnegotiated: the split ring again.
  EXPECT_EQ(device.packed_ring, GetParam()->features().packed_ring)
      << "VIRTIO_F_RING_PACKED negotiated: " << device.packed_ring << "; " << GetParam()->name()
      << " offers it: " << GetParam()->features().packed_ring;
}

TEST_P(GuestWorkloadTest, ReadOnlyExport) {
  std::unique_ptr<GuestDisk> disk = CreateDisk({.read_only = true});
  ASSERT_NE(disk, nullptr);
  RunReadOnly(*disk);
}

TEST_P(GuestWorkloadTest, NegativeControlVerifyCatchesHostOverwrite) {
  std::unique_ptr<GuestDisk> disk = CreateDisk();
  ASSERT_NE(disk, nullptr);
  RunVerifyNegativeControl(*disk);
}

// A guest that does not finish is killed at the timeout, and the message says how far it got.
// The chardev's reconnect=1 (for tests that restart the target) boots too.
TEST(GuestVmTest, KilledAtTheTimeout) {
  const QsdLauncher launcher;
  GuestDisk disk(launcher, {});
  absl::Status status = disk.Create();
  ASSERT_TRUE(status.ok()) << status;
  status = disk.StartTarget();
  ASSERT_TRUE(status.ok()) << status;
  absl::StatusOr<GuestRun> run =
      disk.Boot(WorkloadScript("echo \"disk of $(cat /sys/block/vda/size) sectors\"\nsleep 600\n"),
                {}, {.reconnect = true, .timeout = std::chrono::seconds(20)});
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_TRUE(run->timed_out) << disk.Explain(*run);
  EXPECT_FALSE(run->finished) << disk.Explain(*run);
  EXPECT_EQ(run->workload_status, -1);
  EXPECT_NE(run->console.find("disk of 131072 sectors"), std::string::npos)
      << "the workload did not start on the 64 MiB disk\n"
      << disk.Explain(*run);
  EXPECT_NE(run->Describe().find("QEMU was killed"), std::string::npos) << run->Describe();
}

// The workloads' checks bite: fio's verify against a target that drops every write fails.
TEST(GuestNegativeControlTest, FioVerifyFailsAgainstATargetThatDropsWrites) {
  const QsdLauncher launcher(/*drop_writes=*/true);
  GuestDisk disk(launcher, {});
  absl::Status created = disk.Create();
  ASSERT_TRUE(created.ok()) << created;
  ::testing::TestPartResultArray failures;
  {
    ::testing::ScopedFakeTestPartResultReporter capture(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &failures);
    RunFioVerify(disk, {.name = "dropped", .bytes_per_job = 4 * MiB});
  }
  std::string messages;
  for (int i = 0; i < failures.size(); ++i) {
    messages += failures.GetTestPartResult(i).message();
    messages += "\n";
  }
  ASSERT_GT(failures.size(), 0) << "fio verify passed against a target that drops writes";
  EXPECT_NE(messages.find("FAIL: fio verify dropped"), std::string::npos)
      << "the workload failed, but not in fio's verify:\n"
      << messages;
  EXPECT_NE(messages.find("at file /dev/vda offset"), std::string::npos)
      << "fio's log names no block that failed its verify:\n"
      << messages;
}

const QsdLauncher kQsd;
const PolluxTgtLauncher kPolluxTgt;

INSTANTIATE_TEST_SUITE_P(Targets, GuestWorkloadTest, ::testing::Values(&kQsd, &kPolluxTgt),
                         [](const auto& info) { return info.param->name(); });

}  // namespace
}  // namespace pollux::testing
