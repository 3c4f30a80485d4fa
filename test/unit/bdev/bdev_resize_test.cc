// NotifyBdevBlockCountChange: the new size reaches every channel's range checks, then every
// open descriptor as a kResize event on its own thread; shrinking under an open descriptor and
// calls off the app thread are refused.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <vector>

#include "bdev_test_env.h"
#include "test_bdev.h"

namespace pollux::testing {
namespace {

constexpr uint32_t kBlock = 512;

class BdevResizeTest : public BdevTest {
 protected:
  // A TestBdev whose memory holds `capacity` blocks, registered with `blocks` of them.
  TestBdev* Register(uint64_t capacity, uint64_t blocks) {
    TestBdev* bdev = CallOn(app_thread(), [capacity] {
      return RegisterTestBdev({.name = "R", .block_size = kBlock, .block_count = capacity});
    });
    EXPECT_NE(bdev, nullptr);
    if (blocks != capacity) {
      EXPECT_TRUE(Resize(*bdev, blocks).ok());
    }
    return bdev;
  }
  absl::Status Resize(Bdev& bdev, uint64_t blocks) {
    return CallOn(app_thread(), [&] { return NotifyBdevBlockCountChange(bdev, blocks); });
  }
};

// A descriptor opened on `thread` that records the events it gets and where.
struct EventRecorder {
  std::unique_ptr<BdevDesc> desc;
  std::atomic<int> resizes{0};
  std::atomic<uint64_t> size_seen{0};
  std::atomic<bool> on_own_thread{true};
};

TEST_F(BdevResizeTest, GrowthReachesChannelsThenDescriptors) {
  TestBdev* bdev = Register(/*capacity=*/64, /*blocks=*/32);
  Thread* io_thread = CreateThread("io", 1);
  EventRecorder recorder;
  RunOn(io_thread, [&] {
    auto desc = BdevDesc::Open("R", /*writable=*/true, [&](BdevEvent event, Bdev& b) {
      if (event != BdevEvent::kResize) return;
      recorder.on_own_thread = Thread::Current() == io_thread;
      recorder.size_seen = b.block_count();
      recorder.resizes.fetch_add(1);
    });
    ASSERT_TRUE(desc.ok());
    recorder.desc = std::move(*desc);
  });
  {
    IoClient client(io_thread, "R");
    ASSERT_TRUE(client.ok());
    std::vector<char> buf(kBlock, 'x');
    // The channel exists before the resize: its cached size must follow.
    EXPECT_EQ(client.Write(buf.data(), 40, 1), BdevIoStatus::kOutOfRange);
    ASSERT_TRUE(Resize(*bdev, 64).ok());
    ASSERT_TRUE(WaitUntil([&] { return recorder.resizes.load() == 1; }));
    EXPECT_EQ(recorder.size_seen.load(), 64u);
    EXPECT_TRUE(recorder.on_own_thread.load());
    EXPECT_EQ(bdev->block_count(), 64u);
    EXPECT_EQ(bdev->size_bytes(), 64u * kBlock);
    // Once the event is in, I/O past the old end goes through on the old channel.
    EXPECT_EQ(client.Write(buf.data(), 40, 1), BdevIoStatus::kSuccess);
    EXPECT_EQ(client.Write(buf.data(), 63, 2), BdevIoStatus::kOutOfRange);
    // bdev_get_bdevs shows the new size.
    auto bdevs = CallRpc("bdev_get_bdevs", {{"name", "R"}});
    ASSERT_TRUE(bdevs.ok()) << bdevs.status();
    EXPECT_EQ((*bdevs)[0]["num_blocks"], 64u);
  }
  // The same size again: nothing to tell.
  ASSERT_TRUE(Resize(*bdev, 64).ok());
  WaitForIterations(io_thread, 4);
  EXPECT_EQ(recorder.resizes.load(), 1);
  RunOn(io_thread, [&] { recorder.desc.reset(); });
  ExitThread(io_thread);
}

TEST_F(BdevResizeTest, ShrinkingIsRefusedWhileADescriptorIsOpen) {
  TestBdev* bdev = Register(64, 64);
  Thread* io_thread = CreateThread("io", 1);
  {
    IoClient client(io_thread, "R", /*writable=*/false);
    ASSERT_TRUE(client.ok());
    absl::Status s = Resize(*bdev, 32);
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("cannot shrink from 64 to 32"));
    EXPECT_EQ(bdev->block_count(), 64u);
  }
  // Nobody has it open: it may shrink, and new channels see the new size.
  ASSERT_TRUE(Resize(*bdev, 32).ok());
  IoClient client(io_thread, "R");
  std::vector<char> buf(kBlock);
  EXPECT_EQ(client.Read(buf.data(), 40, 1), BdevIoStatus::kOutOfRange);
  EXPECT_EQ(client.Read(buf.data(), 31, 1), BdevIoStatus::kSuccess);
}

TEST_F(BdevResizeTest, BadCallsAreRefused) {
  TestBdev* bdev = Register(8, 8);
  EXPECT_EQ(Resize(*bdev, 0).code(), absl::StatusCode::kInvalidArgument);
  // Off the app thread (a channel's thread, a module's own OS thread): refused, unchanged.
  Thread* other = CreateThread("other", 1);
  absl::Status s = CallOn(other, [&] { return NotifyBdevBlockCountChange(*bdev, 16); });
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("app thread"));
  EXPECT_EQ(bdev->block_count(), 8u);
  ExitThread(other);
}

}  // namespace
}  // namespace pollux::testing
