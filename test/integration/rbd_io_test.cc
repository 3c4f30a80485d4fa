// The rbd module in this process against a one-node Ceph cluster (test/support/ceph): what
// each I/O type leaves on the image (FLUSH, UNMAP and WRITE_ZEROES read back), I/O while the
// cluster is away (errors, no hang) and after it came back on the same client, and an idle rbd
// channel letting its reactor sleep. The bdev layer's own test environment drives it; the
// processes' view (pollux-perf, pollux-tgt) is rbd_test.cc's.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "bdev_test_env.h"
#include "ceph_cluster.h"

namespace pollux::testing {
namespace {

constexpr uint32_t kBlock = 4096;
// librbd's default object: 4 MiB, 1024 blocks. A discard of whole objects removes them, so
// reads return zeroes; a partial one may leave data (rbd_skip_partial_discard).
constexpr uint64_t kObjectBlocks = (4u << 20) / kBlock;

class RbdIoTest : public BdevTest {
 protected:
  void SetUp() override {
    if (auto missing = CephCluster::MissingPrograms()) GTEST_SKIP() << *missing;
    BdevTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(cluster_.Start()) << cluster_.error();
    ASSERT_TRUE(cluster_.CreateImage("img", 64)) << cluster_.error();
    rpc::Json config = cluster_.ClientConfig();
    // A cluster that goes away fails I/O after 3 s instead of the module's 30.
    config["rados_osd_op_timeout"] = "3";
    config["rados_mon_op_timeout"] = "3";
    auto registered =
        CallRpc("bdev_rbd_register_cluster", {{"name", "ceph"}, {"config_param", config}});
    ASSERT_TRUE(registered.ok()) << registered.status();
    auto created = CallRpc("bdev_rbd_create", {{"name", "Rbd0"},
                                               {"pool_name", "rbd"},
                                               {"rbd_name", "img"},
                                               {"block_size", kBlock},
                                               {"cluster_name", "ceph"}});
    ASSERT_TRUE(created.ok()) << created.status();
    EXPECT_EQ(*created, "Rbd0");
  }
  // BdevTest::TearDown ends the layer, which closes the image; the cluster (a member) stops
  // only after, so that the close still finds it.

  static std::vector<char> Pattern(size_t blocks, char fill) {
    return std::vector<char>(blocks * kBlock, fill);
  }
  // Whether `blocks` blocks from `offset` read back as `fill`.
  static bool ReadsAs(IoClient& client, uint64_t offset, uint64_t blocks, char fill) {
    std::vector<char> buf = Pattern(blocks, static_cast<char>(~fill));
    if (client.Read(buf.data(), offset, blocks) != BdevIoStatus::kSuccess) return false;
    return buf == Pattern(blocks, fill);
  }

  CephCluster cluster_;
};

TEST_F(RbdIoTest, FlushUnmapAndWriteZeroesReadBack) {
  Thread* io_thread = CreateThread("io", 1);
  IoClient client(io_thread, "Rbd0");
  ASSERT_TRUE(client.ok());
  for (IoType type : {IoType::kRead, IoType::kWrite, IoType::kFlush, IoType::kUnmap,
                      IoType::kWriteZeroes, IoType::kReset}) {
    EXPECT_TRUE(client.desc().bdev().Supports(type)) << IoTypeName(type);
  }
  // Two whole objects of 'A', flushed, read back.
  std::vector<char> data = Pattern(2 * kObjectBlocks, 'A');
  ASSERT_EQ(client.Write(data.data(), 0, 2 * kObjectBlocks), BdevIoStatus::kSuccess);
  ASSERT_EQ(client.Flush(0, 2 * kObjectBlocks), BdevIoStatus::kSuccess);
  EXPECT_TRUE(ReadsAs(client, 0, 2 * kObjectBlocks, 'A'));
  // UNMAP of the whole first object: zeroes.
  ASSERT_EQ(client.Unmap(0, kObjectBlocks), BdevIoStatus::kSuccess);
  EXPECT_TRUE(ReadsAs(client, 0, kObjectBlocks, 0));
  EXPECT_TRUE(ReadsAs(client, kObjectBlocks, kObjectBlocks, 'A'));
  // WRITE_ZEROES inside the second object: exactly its blocks are zero, the rest untouched.
  const uint64_t zeroed = kObjectBlocks + 8;
  ASSERT_EQ(client.WriteZeroes(zeroed, 16), BdevIoStatus::kSuccess);
  EXPECT_TRUE(ReadsAs(client, zeroed, 16, 0));
  EXPECT_TRUE(ReadsAs(client, kObjectBlocks, 8, 'A'));
  EXPECT_TRUE(ReadsAs(client, zeroed + 16, kObjectBlocks - 24, 'A'));
  // A partial UNMAP succeeds (what it reads back is librbd's choice); RESET waits for nothing.
  EXPECT_EQ(client.Unmap(kObjectBlocks + 100, 3), BdevIoStatus::kSuccess);
  EXPECT_EQ(client.Reset(), BdevIoStatus::kSuccess);
  // Many iovecs at once (readv/writev), cut at block boundaries.
  std::vector<char> scattered = Pattern(64, 'S');
  for (size_t i = 0; i < scattered.size(); ++i) scattered[i] = static_cast<char>(i * 7);
  std::vector<iovec> iovs;
  for (size_t at = 0; at < scattered.size(); at += kBlock) iovs.push_back({&scattered[at], kBlock});
  ASSERT_EQ(client.Writev(iovs.data(), static_cast<int>(iovs.size()), 4 * kObjectBlocks, 64),
            BdevIoStatus::kSuccess);
  std::vector<char> back(scattered.size());
  ASSERT_EQ(client.Read(back.data(), 4 * kObjectBlocks, 64), BdevIoStatus::kSuccess);
  EXPECT_EQ(back, scattered);
}

TEST_F(RbdIoTest, IoFailsWhileTheClusterIsAwayAndWorksOnceItIsBack) {
  Thread* io_thread = CreateThread("io", 1);
  IoClient client(io_thread, "Rbd0");
  ASSERT_TRUE(client.ok());
  std::vector<char> data = Pattern(8, 'B');
  ASSERT_EQ(client.Write(data.data(), 0, 8), BdevIoStatus::kSuccess);

  cluster_.Stop();
  // Within rados_osd_op_timeout (3 s here): an error carrying librados' errno, not a hang
  // (IoClient fails the test if the I/O never completes).
  EXPECT_EQ(client.Write(data.data(), 8, 8), BdevIoStatus::kFailed);
  EXPECT_EQ(client.last_error_number(), ETIMEDOUT) << std::strerror(client.last_error_number());
  std::vector<char> buf(8 * kBlock);
  EXPECT_EQ(client.Read(buf.data(), 0, 8), BdevIoStatus::kFailed);

  // Back on the same directory and ports: the same connection finds it again by itself.
  ASSERT_TRUE(cluster_.Restart()) << cluster_.error();
  // The client learns of the restarted OSD through the mon it reconnects to: an I/O still
  // under way then may time out, so the first success is awaited, not the first try.
  std::vector<char> fresh = Pattern(8, 'C');
  EXPECT_TRUE(WaitUntil([&] { return client.Write(fresh.data(), 16, 8) == BdevIoStatus::kSuccess; },
                        std::chrono::seconds(60)));
  EXPECT_TRUE(ReadsAs(client, 16, 8, 'C'));
  EXPECT_TRUE(ReadsAs(client, 0, 8, 'B'));  // memstore saved it at the OSD's SIGTERM
}

class RbdInterruptModeTest : public RbdIoTest {
 protected:
  ReactorRuntimeOptions RuntimeOptions() const override { return InterruptModeOptions(); }
};

TEST_F(RbdInterruptModeTest, CompletionsWakeTheReactorAndAnIdleChannelLetsItSleep) {
  Thread* io_thread = CreateThread("io", 1);
  IoClient client(io_thread, "Rbd0");
  ASSERT_TRUE(client.ok());
  const uint64_t wakeups_before = Info(1).wakeups;
  // Each I/O waits for librbd's thread: the reactor sleeps meanwhile and only the ring's
  // eventfd wakes it (were the wake-up lost, the I/O would never complete).
  std::vector<char> data = Pattern(4, 'D');
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(client.Write(data.data(), 4 * i, 4), BdevIoStatus::kSuccess);
    ASSERT_TRUE(ReadsAs(client, 4 * i, 4, 'D'));
  }
  EXPECT_GT(Info(1).wakeups, wakeups_before);
  // The channel stays (the client holds it) with nothing in flight: the reactor sleeps, and
  // nothing of the rbd bdev keeps it awake.
  EXPECT_TRUE(WaitUntil([&] { return Info(1).sleeping; }))
      << ::testing::PrintToString(Info(1).awake_reasons);
  EXPECT_TRUE(Info(1).awake_reasons.empty()) << ::testing::PrintToString(Info(1).awake_reasons);
}

}  // namespace
}  // namespace pollux::testing
