// The bdev_file toolkit on its own: the adaptive depth-1 policy's decisions, FileTarget's
// examination of files and block devices (a loop device when the test may attach one), and
// file_io's synchronous paths (short-transfer continuation, reads past the end).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "file_test_util.h"
#include "pollux/bdev_file/adaptive_submit.h"
#include "pollux/bdev_file/file_io.h"
#include "pollux/bdev_file/file_target.h"

namespace pollux::testing {
namespace {

constexpr uint64_t kMiB = 1024 * 1024;

// ---- The adaptive policy (plain test thread: its thread-local load is this thread's) ----

TEST(AdaptiveSubmitTest, LoneRequestsRunInlineOverlappingOnesDoNot) {
  file_thread_load = {};
  AdaptiveSubmit policy;
  // Depth 1: each request comes once the previous one was delivered, nothing in flight.
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(policy.ChooseInline(false)) << i;
  // A request submitted while another's completion waits for delivery goes asynchronous, and
  // so do the next kOverlapMemory ones, even when alone: the load just showed depth > 1.
  EXPECT_FALSE(policy.ChooseInline(true));
  policy.AsyncStarted();
  for (uint32_t i = 0; i < kOverlapMemory; ++i) {
    if (policy.in_flight() != 0) policy.AsyncFinished();
    EXPECT_FALSE(policy.ChooseInline(false)) << i;
    policy.AsyncStarted();
  }
  policy.AsyncFinished();
  EXPECT_TRUE(policy.ChooseInline(false)) << "back to depth 1";
  EXPECT_EQ(policy.in_flight(), 0u);
  EXPECT_EQ(policy.inline_count(), 11u);
  EXPECT_EQ(policy.async_count(), kOverlapMemory + 1);
}

TEST(AdaptiveSubmitTest, InFlightElsewhereOnTheThreadKeepsRequestsAsynchronous) {
  file_thread_load = {};
  AdaptiveSubmit a, b;  // two channels (two file bdevs) on one thread
  EXPECT_TRUE(a.ChooseInline(false));
  a.AsyncStarted();  // say a had one in flight
  EXPECT_FALSE(b.ChooseInline(false)) << "another channel of this thread has I/O in flight";
  a.AsyncFinished();
  EXPECT_EQ(file_thread_load.in_flight, 0u);
}

}  // namespace
}  // namespace pollux::testing
