// Splitting: at the optimal I/O boundary, at max_transfer_blocks and at max_segments, with
// the data intact through randomly cut iovecs.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <vector>

#include "bdev_test_env.h"
#include "test_bdev.h"

namespace pollux::testing {
namespace {

constexpr uint32_t kBlock = 512;

class BdevSplitTest : public BdevTest {
 protected:
  TestBdev* Make(BdevProperties p) {
    p.name = "S0";
    if (p.block_count == 0) p.block_count = 1024;
    TestBdev* bdev = CallOn(app_thread(), [&] { return RegisterTestBdev(p); });
    EXPECT_NE(bdev, nullptr);
    return bdev;
  }
};

TEST_F(BdevSplitTest, SplitsAtTheOptimalBoundary) {
  TestBdev* bdev = Make({.optimal_io_boundary = 8, .split_on_optimal_io_boundary = true});
  IoClient client(app_thread(), "S0");
  std::vector<char> buf(20 * kBlock);
  EXPECT_EQ(client.Read(buf.data(), 6, 20), BdevIoStatus::kSuccess);  // 6..25: 6-7, 8-15, 16-23, 24-25
  auto seen = bdev->seen();
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen[0].offset_blocks, 6u);
  EXPECT_EQ(seen[0].num_blocks, 2u);
  EXPECT_EQ(seen[1].offset_blocks, 8u);
  EXPECT_EQ(seen[1].num_blocks, 8u);
  EXPECT_EQ(seen[2].num_blocks, 8u);
  EXPECT_EQ(seen[3].offset_blocks, 24u);
  EXPECT_EQ(seen[3].num_blocks, 2u);
  // Within one boundary: not split. The statistics count the caller's I/O, not the pieces.
  bdev->ClearSeen();
  EXPECT_EQ(client.Read(buf.data(), 8, 8), BdevIoStatus::kSuccess);
  EXPECT_EQ(bdev->seen().size(), 1u);
  EXPECT_EQ(client.Stats().of(IoType::kRead).ops, 2u);
}

TEST_F(BdevSplitTest, BoundaryIgnoredUnlessAsked) {
  TestBdev* bdev = Make({.optimal_io_boundary = 8, .split_on_optimal_io_boundary = false});
  IoClient client(app_thread(), "S0");
  std::vector<char> buf(20 * kBlock);
  EXPECT_EQ(client.Read(buf.data(), 6, 20), BdevIoStatus::kSuccess);
  EXPECT_EQ(bdev->seen().size(), 1u);
}

TEST_F(BdevSplitTest, SplitsAtMaxTransfer) {
  TestBdev* bdev = Make({.max_transfer_blocks = 16});
  IoClient client(app_thread(), "S0");
  std::vector<char> buf(100 * kBlock);
  EXPECT_EQ(client.Write(buf.data(), 0, 100), BdevIoStatus::kSuccess);
  auto seen = bdev->seen();
  ASSERT_EQ(seen.size(), 7u);  // 6 x 16 + 4
  uint64_t next = 0;
  for (const SeenIo& io : seen) {
    EXPECT_LE(io.num_blocks, 16u);
    EXPECT_EQ(io.offset_blocks, next);
    next += io.num_blocks;
  }
  EXPECT_EQ(next, 100u);
}

TEST_F(BdevSplitTest, SplitsAtMaxSegmentsOnBlockBoundaries) {
  TestBdev* bdev = Make({.max_segments = 3});
  IoClient client(app_thread(), "S0");
  // 12 one-block segments: children of at most 3 segments, cut between segments.
  std::vector<char> buf(12 * kBlock);
  std::vector<iovec> iov(12);
  for (int i = 0; i < 12; ++i) iov[i] = {buf.data() + i * kBlock, kBlock};
  EXPECT_EQ(client.Readv(iov.data(), 12, 0, 12), BdevIoStatus::kSuccess);
  EXPECT_EQ(bdev->seen().size(), 4u);
  uint64_t blocks = 0;
  for (const SeenIo& io : bdev->seen()) {
    EXPECT_LE(io.iovcnt, 3);
    blocks += io.num_blocks;
  }
  EXPECT_EQ(blocks, 12u);
}

TEST_F(BdevSplitTest, BlockOverTooManySegmentsIsBounced) {
  TestBdev* bdev = Make({.max_segments = 2});
  IoClient client(app_thread(), "S0");
  // Each 512-byte block in four 128-byte segments cannot be cut into 2-segment pieces: the
  // layer copies through one contiguous buffer instead.
  std::vector<char> buf(2 * kBlock);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<char>(i * 7);
  iovec iov[8];
  for (int i = 0; i < 8; ++i) iov[i] = {buf.data() + i * 128, 128};
  EXPECT_EQ(client.Writev(iov, 8, 3, 2), BdevIoStatus::kSuccess);
  EXPECT_EQ(std::memcmp(bdev->data().data() + 3 * kBlock, buf.data(), buf.size()), 0);
  std::vector<char> back(2 * kBlock);
  for (int i = 0; i < 8; ++i) iov[i] = {back.data() + i * 128, 128};
  EXPECT_EQ(client.Readv(iov, 8, 3, 2), BdevIoStatus::kSuccess);
  EXPECT_EQ(back, buf);
  for (const SeenIo& io : bdev->seen()) EXPECT_LE(io.iovcnt, 2);
}

TEST_F(BdevSplitTest, ChildFailureFailsTheParent) {
  TestBdev* bdev = Make({.max_transfer_blocks = 4});
  IoClient client(app_thread(), "S0");
  bdev->fail_next = 1;
  bdev->fail_errno = ENOSPC;
  std::vector<char> buf(64 * kBlock);
  EXPECT_EQ(client.Read(buf.data(), 0, 64), BdevIoStatus::kFailed);
  EXPECT_EQ(client.last_error_number(), ENOSPC);  // the failed child's errno, on the parent
  EXPECT_EQ(client.Read(buf.data(), 0, 64), BdevIoStatus::kSuccess);
  EXPECT_EQ(client.Stats().failed_ops, 1u);
}

// Data integrity: random writes and reads through random iovec cuts, against a shadow copy,
// with every splitting rule on at once.
TEST_F(BdevSplitTest, RandomIovecsKeepDataIntact) {
  TestBdev* bdev = Make({.block_count = 512,
                         .optimal_io_boundary = 16,
                         .split_on_optimal_io_boundary = true,
                         .max_transfer_blocks = 24,
                         .max_segments = 5});
  IoClient client(app_thread(), "S0");
  std::vector<char> shadow(512 * kBlock, 0);
  std::mt19937 rng(1234);
  for (int round = 0; round < 200; ++round) {
    uint64_t blocks = 1 + rng() % 64;
    uint64_t offset = rng() % (512 - blocks + 1);
    size_t bytes = blocks * kBlock;
    std::vector<char> buf(bytes);
    // Cut the buffer into 1..12 random pieces.
    std::vector<iovec> iov;
    size_t pos = 0;
    int pieces = 1 + static_cast<int>(rng() % 12);
    for (int i = 0; i < pieces - 1 && pos < bytes; ++i) {
      size_t len = 1 + rng() % (bytes - pos);
      if (pos + len >= bytes) break;
      iov.push_back({buf.data() + pos, len});
      pos += len;
    }
    iov.push_back({buf.data() + pos, bytes - pos});
    if (rng() % 2 == 0) {
      for (size_t i = 0; i < bytes; ++i) buf[i] = static_cast<char>(rng());
      ASSERT_EQ(client.Writev(iov.data(), static_cast<int>(iov.size()), offset, blocks),
                BdevIoStatus::kSuccess);
      std::memcpy(shadow.data() + offset * kBlock, buf.data(), bytes);
    } else {
      ASSERT_EQ(client.Readv(iov.data(), static_cast<int>(iov.size()), offset, blocks),
                BdevIoStatus::kSuccess);
      ASSERT_EQ(std::memcmp(shadow.data() + offset * kBlock, buf.data(), bytes), 0)
          << "round " << round;
    }
  }
  EXPECT_EQ(std::memcmp(shadow.data(), bdev->data().data(), shadow.size()), 0);
  for (const SeenIo& io : bdev->seen()) {
    EXPECT_LE(io.num_blocks, 24u);
    EXPECT_LE(io.iovcnt, 5);
    EXPECT_EQ(io.offset_blocks / 16, (io.offset_blocks + io.num_blocks - 1) / 16);
  }
}

}  // namespace
}  // namespace pollux::testing
