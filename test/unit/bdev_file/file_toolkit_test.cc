// The bdev_file toolkit on its own: the adaptive depth-1 policy's decisions, when a kernel
// engine submits at once (KernelStarves), FileTarget's examination of files and block devices
// (a loop device when the test may attach one), and file_io's synchronous paths
// (short-transfer continuation, reads past the end).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "file_test_util.h"
#include "pollux/bdev_file/adaptive_submit.h"
#include "pollux/bdev_file/file_bdev.h"
#include "pollux/bdev_file/file_io.h"
#include "pollux/bdev_file/file_target.h"

namespace pollux::testing {
namespace {

constexpr uint64_t kMiB = 1024 * 1024;

// ---- The adaptive policy (plain test thread: the overlap memory is this thread's) ----

// One lone request (depth 1) through `policy`, inline taking `inline_ticks`, the engine
// `async_ticks`: 'i' or 'a', the path it took.
char Lone(AdaptiveSubmit& policy, uint64_t inline_ticks, uint64_t async_ticks) {
  if (policy.ChooseInline(true, false)) {
    policy.InlineFinished(inline_ticks);
    return 'i';
  }
  EXPECT_TRUE(policy.timing_lone_async());
  policy.AsyncStarted(1000);
  EXPECT_TRUE(policy.AsyncFinished()) << "a lone request's completion ends its timing";
  policy.LoneAsyncFinished(1000 + async_ticks);
  return 'a';
}

std::string LoneRun(AdaptiveSubmit& policy, int count, uint64_t inline_ticks,
                    uint64_t async_ticks) {
  std::string paths;
  for (int i = 0; i < count; ++i) paths += Lone(policy, inline_ticks, async_ticks);
  return paths;
}

TEST(AdaptiveSubmitTest, LoneRequestsTakeThePathThatWasFasterHere) {
  file_overlap_credit = 0;
  // Warm-up: each path for two phases, inline first.
  AdaptiveSubmit fast_inline;
  const std::string phase(MeasuredChoice::kPhase, 'i');
  const std::string async_phase(MeasuredChoice::kPhase, 'a');
  EXPECT_EQ(LoneRun(fast_inline, MeasuredChoice::kWarmUpAttempts, 55, 70),
            phase + async_phase + phase + async_phase);
  // Then the faster one (the QEMU of the issue: 55 us inline, 70 asynchronous)...
  std::string after = LoneRun(fast_inline, 20 * MeasuredChoice::kPhase, 55, 70);
  EXPECT_EQ(std::count(after.begin(), after.end(), 'i'), 20 * MeasuredChoice::kPhase);
  // ... but where the synchronous call halts a vCPU that wakes slowly (124 against 88 us).
  AdaptiveSubmit slow_inline;
  LoneRun(slow_inline, MeasuredChoice::kWarmUpAttempts, 124, 88);
  after = LoneRun(slow_inline, 20 * MeasuredChoice::kPhase, 124, 88);
  EXPECT_EQ(std::count(after.begin(), after.end(), 'a'), 20 * MeasuredChoice::kPhase);
  EXPECT_EQ(slow_inline.in_flight(), 0u);
  // Now and then the other path is tried again, and a change is followed.
  after = LoneRun(slow_inline, MeasuredChoice::kExplorePhases * MeasuredChoice::kPhase, 124, 88);
  EXPECT_NE(after.find(phase), std::string::npos) << "an exploring phase inline";
  LoneRun(slow_inline, 3 * MeasuredChoice::kExplorePhases * MeasuredChoice::kPhase, 40, 88);
  after = LoneRun(slow_inline, 20 * MeasuredChoice::kPhase, 40, 88);
  EXPECT_GE(std::count(after.begin(), after.end(), 'i'), 19 * MeasuredChoice::kPhase)
      << "inline again, but for an exploring phase: " << after;
}

TEST(AdaptiveSubmitTest, OverlappingRequestsGoAsynchronousForAWhile) {
  file_overlap_credit = 0;
  AdaptiveSubmit policy;
  EXPECT_EQ(Lone(policy, 50, 90), 'i');
  // A request submitted while another's completion waits for delivery goes asynchronous, and
  // so do the next kOverlapMemory ones, even when alone: the load just showed depth > 1.
  EXPECT_FALSE(policy.ChooseInline(true, true));
  EXPECT_FALSE(policy.timing_lone_async()) << "not a lone request: not timed";
  policy.AsyncStarted();
  for (uint32_t i = 0; i < kOverlapMemory; ++i) {
    if (policy.in_flight() != 0) {
      EXPECT_FALSE(policy.AsyncFinished());
    }
    EXPECT_FALSE(policy.ChooseInline(true, false)) << i;
    policy.AsyncStarted();
  }
  EXPECT_FALSE(policy.AsyncFinished());
  EXPECT_EQ(Lone(policy, 50, 90), 'i') << "back to depth 1";
  EXPECT_EQ(policy.in_flight(), 0u);
  EXPECT_EQ(policy.inline_count(), 2u);
  EXPECT_EQ(policy.async_count(), kOverlapMemory + 1);
  // A lone request the engine refused is not timed.
  file_overlap_credit = 0;
  AdaptiveSubmit refused;
  LoneRun(refused, MeasuredChoice::kPhase, 50, 90);
  EXPECT_FALSE(refused.ChooseInline(true, false)) << "the asynchronous phase";
  refused.AsyncRefused();
  EXPECT_FALSE(refused.timing_lone_async());
}

TEST(AdaptiveSubmitTest, WorkElsewhereOnTheReactorKeepsRequestsAsynchronous) {
  file_overlap_credit = 0;
  AdaptiveSubmit a;
  // The reactor is not quiet: another thread was busy, or a poller (another channel with I/O
  // in flight) waits for a device.
  EXPECT_FALSE(a.ChooseInline(false, false));
  EXPECT_EQ(file_overlap_credit, kOverlapMemory) << "that is an overlap too";
  file_overlap_credit = 0;
  EXPECT_TRUE(a.ChooseInline(true, false));
  a.AsyncStarted();  // say it had one in flight
  EXPECT_FALSE(a.ChooseInline(true, false)) << "its own request is in flight";
  a.AsyncFinished();
}

// ---- When a kernel engine submits at once instead of at the end of the poll ----

TEST(KernelStarvesTest, SmallRequestsGoAtOnceBelowTheDepthLargeOnesOnlyToAnIdleKernel) {
  // 4 KiB: at once while the kernel holds fewer than kStarvingDepth requests.
  for (uint32_t held = 0; held < kStarvingDepth; ++held) EXPECT_TRUE(KernelStarves(held, 4096));
  EXPECT_FALSE(KernelStarves(kStarvingDepth, 4096));
  EXPECT_FALSE(KernelStarves(32, 4096));
  // 128 KiB: one such request keeps the device busy; only the first of a refill goes at once.
  EXPECT_TRUE(KernelStarves(0, 128 << 10));
  EXPECT_FALSE(KernelStarves(1, 128 << 10));
  // 16 KiB: the byte bound comes first (4 x 16 KiB = kStarvingBytes).
  EXPECT_TRUE(KernelStarves(3, 16 << 10));
  EXPECT_FALSE(KernelStarves(4, 16 << 10));
  // FLUSH carries no bytes: the request count alone decides.
  EXPECT_TRUE(KernelStarves(kStarvingDepth - 1, 0));
  EXPECT_FALSE(KernelStarves(kStarvingDepth, 0));
}

// ---- FileTarget and file_io ----

TEST(FileTargetTest, ExaminesARegularFile) {
  TempDir dir;
  std::string path = dir.File("t.img");
  MakeFile(path, 3 * kMiB + 1000, 1);
  absl::StatusOr<std::unique_ptr<FileTarget>> target = FileTarget::Open({path, 0, false, {}});
  ASSERT_TRUE(target.ok()) << target.status();
  const FileTarget& t = **target;
  EXPECT_EQ(t.filename(), path);
  EXPECT_FALSE(t.is_block_device());
  EXPECT_EQ(t.block_size(), 512u);
  EXPECT_EQ(t.block_count(), (3 * kMiB + 1000) / 512);
  EXPECT_TRUE(t.direct());
  EXPECT_FALSE(t.direct_requested().has_value());
  EXPECT_GE(t.buffer_alignment(), 512u);
  EXPECT_TRUE(t.supports_unmap());  // ext4
  EXPECT_TRUE(t.supports_write_zeroes());
  EXPECT_EQ(ReadWholeFile(path).size(), 3 * kMiB + 1000) << "probing changed the size";

  absl::StatusOr<std::unique_ptr<FileTarget>> ro = FileTarget::Open({path, 4096, true, false});
  ASSERT_TRUE(ro.ok()) << ro.status();
  EXPECT_EQ((*ro)->block_count(), 3 * kMiB / 4096);
  EXPECT_FALSE((*ro)->direct());
  EXPECT_EQ((*ro)->buffer_alignment(), 1u);
  EXPECT_FALSE((*ro)->supports_unmap());
  EXPECT_FALSE((*ro)->supports_write_zeroes());
}

TEST(FileIoTest, VectorsSkipsAndTheEndOfTheFile) {
  TempDir dir;
  std::string path = dir.File("io.img");
  std::vector<uint8_t> data = MakeFile(path, 1 * kMiB, 2);
  auto target = FileTarget::Open({path, 512, false, false});  // buffered: any buffer works
  ASSERT_TRUE(target.ok()) << target.status();
  std::vector<uint8_t> a(1000), b(3000), c(96);
  iovec iov[3] = {{a.data(), a.size()}, {b.data(), b.size()}, {c.data(), c.size()}};
  EXPECT_EQ(FileReadv(**target, iov, 3, 8192), 0);
  EXPECT_EQ(std::memcmp(a.data(), data.data() + 8192, 1000), 0);
  EXPECT_EQ(std::memcmp(b.data(), data.data() + 9192, 3000), 0);
  EXPECT_EQ(std::memcmp(c.data(), data.data() + 12192, 96), 0);
  // Continuing after 1500 bytes (inside the second iovec) reads only the rest.
  std::fill(a.begin(), a.end(), 0);
  std::fill(b.begin(), b.end(), 0);
  EXPECT_EQ(FileReadv(**target, iov, 3, 0, 1500), 0);
  EXPECT_EQ(a, std::vector<uint8_t>(1000, 0));
  EXPECT_EQ(std::memcmp(b.data(), std::vector<uint8_t>(500, 0).data(), 500), 0);
  EXPECT_EQ(std::memcmp(b.data() + 500, data.data() + 1500, 2500), 0);
  // Writes the same way, then past the end reads fail with EIO.
  std::fill(b.begin(), b.end(), 0x42);
  EXPECT_EQ(FileWritev(**target, iov, 3, 4096, 1000), 0);
  std::vector<uint8_t> back = ReadWholeFile(path);
  EXPECT_EQ(back[4096 + 1000], 0x42);
  EXPECT_EQ(back[4096 + 999], data[4096 + 999]);
  EXPECT_EQ(FileReadv(**target, iov, 3, 1 * kMiB - 512), kFileShortReadErrno);
  EXPECT_EQ(FileFlush(**target), 0);
  EXPECT_EQ(FileUnmap(**target, 0, 4096), 0);
  EXPECT_EQ(FileWriteZeroes(**target, 4096, 4096), 0);
  back = ReadWholeFile(path);
  EXPECT_EQ(std::vector<uint8_t>(back.begin(), back.begin() + 8192), std::vector<uint8_t>(8192, 0));
  EXPECT_EQ(back.size(), 1 * kMiB);
}

// A block device: a loop device over a file, when the test may attach one (root).
TEST(FileTargetTest, ExaminesABlockDevice) {
  TempDir dir;
  std::string path = dir.File("loop.img");
  std::vector<uint8_t> data = MakeFile(path, 4 * kMiB, 3);
  int control = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
  if (control < 0) GTEST_SKIP() << "no /dev/loop-control: " << std::strerror(errno);
  int number = ioctl(control, LOOP_CTL_GET_FREE);
  close(control);
  if (number < 0) GTEST_SKIP() << "LOOP_CTL_GET_FREE: " << std::strerror(errno);
  std::string device = "/dev/loop" + std::to_string(number);
  int loop_fd = open(device.c_str(), O_RDWR | O_CLOEXEC);
  int file_fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (loop_fd < 0 || ioctl(loop_fd, LOOP_SET_FD, file_fd) != 0) {
    if (loop_fd >= 0) close(loop_fd);
    close(file_fd);
    GTEST_SKIP() << "cannot attach " << device << ": " << std::strerror(errno);
  }
  close(file_fd);
  {
    auto target = FileTarget::Open({device, 0, false, {}});
    ASSERT_TRUE(target.ok()) << target.status();
    EXPECT_TRUE((*target)->is_block_device());
    EXPECT_EQ((*target)->block_size(), 512u);
    EXPECT_EQ((*target)->block_count(), 4 * kMiB / 512);
    EXPECT_TRUE((*target)->supports_write_zeroes());
    AlignedBuffer buf(4096);
    iovec iov = {buf.data(), 4096};
    EXPECT_EQ(FileReadv(**target, &iov, 1, 65536), 0);
    EXPECT_EQ(std::memcmp(buf.data(), data.data() + 65536, 4096), 0);
    EXPECT_EQ(FileWriteZeroes(**target, 65536, 4096), 0);
    EXPECT_EQ(FileReadv(**target, &iov, 1, 65536), 0);
    EXPECT_EQ(buf.data()[0], 0);
    if ((*target)->supports_unmap()) {
      EXPECT_EQ(FileUnmap(**target, 0, 4096), 0);
    }
    EXPECT_EQ(FileFlush(**target), 0);
    auto too_small = FileTarget::Open({device, 256, false, {}});
    EXPECT_FALSE(too_small.ok());
  }
  ioctl(loop_fd, LOOP_CLR_FD, 0);
  close(loop_fd);
}

}  // namespace
}  // namespace pollux::testing
