// BdevDesc::Forward: a virtual bdev handing its I/O down to its base in place.
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

class BdevForwardTest : public BdevTest {
 protected:
  // A base TestBdev "B" with `base` properties and a forwarding bdev "F" over it.
  TestBdev* Make(BdevProperties base, BdevProperties upper = {}) {
    base.name = "B";
    if (base.block_count == 0) base.block_count = 512;
    return CallOn(app_thread(), [&]() -> TestBdev* {
      TestBdev* b = RegisterTestBdev(base);
      if (b == nullptr) return nullptr;
      auto desc = BdevDesc::OpenAndClaim("B", TestBdevModule::Get(), nullptr);
      if (!desc.ok()) return nullptr;
      upper.name = "F";
      if (upper.block_count == 0) upper.block_count = b->block_count();
      auto f = RegisterBdev(std::make_unique<ForwardingBdev>(upper, std::move(*desc)));
      return f.ok() ? b : nullptr;
    });
  }
  // Another forwarding bdev `name` over `base_name`, read-only and without a claim (so that
  // several can sit on one base).
  bool MakeReader(const std::string& name, const std::string& base_name) {
    return CallOn(app_thread(), [&] {
      auto desc = BdevDesc::Open(base_name, false, nullptr);
      if (!desc.ok()) return false;
      BdevProperties properties{.name = name};
      properties.block_count = (*desc)->bdev().block_count();
      return RegisterBdev(std::make_unique<ForwardingBdev>(properties, std::move(*desc))).ok();
    });
  }
  uint64_t Ops(const std::string& name, IoType type) {
    auto stats = CallRpc("bdev_get_iostat", {{"name", name}});
    EXPECT_TRUE(stats.ok());
    const char* field = type == IoType::kRead ? "num_read_ops" : "num_write_ops";
    return (*stats)["bdevs"][0][field].get<uint64_t>();
  }
  // Read operations of each of `names`, by bdev_get_iostat.
  std::vector<uint64_t> Reads(std::initializer_list<const char*> names) {
    std::vector<uint64_t> ops;
    for (const char* name : names) ops.push_back(Ops(name, IoType::kRead));
    return ops;
  }
};

TEST_F(BdevForwardTest, DataAndStatisticsAtBothLevels) {
  TestBdev* base = Make({});
  ASSERT_NE(base, nullptr);
  {
    IoClient client(app_thread(), "F");
    std::vector<char> data(8 * kBlock, 0x3c);
    EXPECT_EQ(client.Write(data.data(), 40, 8), BdevIoStatus::kSuccess);
    std::vector<char> back(8 * kBlock);
    EXPECT_EQ(client.Read(back.data(), 40, 8), BdevIoStatus::kSuccess);
    EXPECT_EQ(back, data);
    EXPECT_EQ(std::memcmp(base->data().data() + 40 * kBlock, data.data(), data.size()), 0);
    EXPECT_EQ(client.Stats().of(IoType::kRead).ops, 1u);
  }
  EXPECT_EQ(Ops("F", IoType::kRead), 1u);
  EXPECT_EQ(Ops("B", IoType::kRead), 1u);
  EXPECT_EQ(Ops("B", IoType::kWrite), 1u);
}

// A one-level forward is counted once, in its route, for both bdevs: the sums must hold while
// the channels live, for several routes into one base, and once the channels are gone.
TEST_F(BdevForwardTest, StatisticsOfEveryRouteWhileOpenAndAfter) {
  ASSERT_NE(Make({}), nullptr);
  ASSERT_TRUE(MakeReader("G", "B"));
  std::vector<char> buf(kBlock);
  {
    IoClient f(app_thread(), "F");
    IoClient g(app_thread(), "G", false);
    IoClient b(app_thread(), "B", false);
    // Alternating routes: the base's one-route cache misses every time.
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(f.Read(buf.data(), i, 1), BdevIoStatus::kSuccess);
      EXPECT_EQ(g.Read(buf.data(), i, 1), BdevIoStatus::kSuccess);
    }
    EXPECT_EQ(g.Read(buf.data(), 7, 1), BdevIoStatus::kSuccess);
    EXPECT_EQ(b.Read(buf.data(), 8, 1), BdevIoStatus::kSuccess);
    EXPECT_EQ(f.Stats().of(IoType::kRead).ops, 3u);
    EXPECT_EQ(g.Stats().of(IoType::kRead).ops, 4u);
    EXPECT_EQ(f.Stats().of(IoType::kRead).bytes, 3u * kBlock);
    EXPECT_EQ(Reads({"F", "G", "B"}), (std::vector<uint64_t>{3, 4, 8}));
    auto stats = CallRpc("bdev_get_iostat", {{"name", "B"}});
    ASSERT_TRUE(stats.ok());
    EXPECT_GT((*stats)["bdevs"][0]["read_latency_ticks"].get<uint64_t>(), 0u);
  }
  EXPECT_EQ(Reads({"F", "G", "B"}), (std::vector<uint64_t>{3, 4, 8}));
  // Channels made again (perhaps at the same addresses) start new routes.
  {
    IoClient f(app_thread(), "F");
    EXPECT_EQ(f.Read(buf.data(), 0, 1), BdevIoStatus::kSuccess);
    EXPECT_EQ(f.Stats().of(IoType::kRead).ops, 1u);
  }
  EXPECT_EQ(Reads({"F", "B"}), (std::vector<uint64_t>{4, 9}));
}

TEST_F(BdevForwardTest, StatisticsThroughTwoLevels) {
  ASSERT_NE(Make({}), nullptr);
  ASSERT_TRUE(MakeReader("H", "F"));
  std::vector<char> buf(kBlock);
  {
    IoClient h(app_thread(), "H", false);
    EXPECT_EQ(h.Read(buf.data(), 5, 1), BdevIoStatus::kSuccess);
    EXPECT_EQ(h.Read(buf.data(), 6, 1), BdevIoStatus::kSuccess);
    EXPECT_EQ(Reads({"H", "F", "B"}), (std::vector<uint64_t>{2, 2, 2}));
  }
  EXPECT_EQ(Reads({"H", "F", "B"}), (std::vector<uint64_t>{2, 2, 2}));
}

// SubmittedStats: each channel's own callers' I/O, wherever it went, whatever else its channel
// completed for the bdevs above (one level through a route, two levels, split children).
TEST_F(BdevForwardTest, SubmittedStatisticsAreTheCallersOwn) {
  ASSERT_NE(Make({}, {.max_transfer_blocks = 8}), nullptr);
  ASSERT_TRUE(MakeReader("H", "F"));
  std::vector<char> buf(20 * kBlock);
  IoClient b(app_thread(), "B", false);
  IoClient f(app_thread(), "F");
  IoClient h(app_thread(), "H", false);
  EXPECT_EQ(b.Read(buf.data(), 0, 1), BdevIoStatus::kSuccess);
  for (int i = 0; i < 2; ++i) EXPECT_EQ(f.Read(buf.data(), i, 1), BdevIoStatus::kSuccess);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(h.Read(buf.data(), i, 1), BdevIoStatus::kSuccess);
  // One read of 20 blocks at F, cut in 8 + 8 + 4 there, the children forwarded to B.
  EXPECT_EQ(f.Read(buf.data(), 0, 20), BdevIoStatus::kSuccess);
  auto reads = [](const BdevIoStats& stats) { return stats.of(IoType::kRead).ops; };
  EXPECT_EQ(reads(b.SubmittedStats()), 1u);
  EXPECT_EQ(reads(f.SubmittedStats()), 3u);
  EXPECT_EQ(reads(h.SubmittedStats()), 3u);
  EXPECT_EQ(f.SubmittedStats().of(IoType::kRead).bytes, 22u * kBlock);
  // The channels' totals are their bdevs': B completed its own read, F's two forwarded reads,
  // F's three children and H's three reads; F its own four and H's three.
  EXPECT_EQ(reads(b.Stats()), 1u + 2 + 3 + 3);
  EXPECT_EQ(reads(f.Stats()), 3u + 3);
  EXPECT_EQ(reads(h.Stats()), 3u);
  EXPECT_EQ(Reads({"H", "F", "B"}), (std::vector<uint64_t>{3, 6, 9}));
}

TEST_F(BdevForwardTest, BaseSplitsWhatTheUpperDidNot) {
  TestBdev* base = Make({.max_transfer_blocks = 4});
  ASSERT_NE(base, nullptr);
  IoClient client(app_thread(), "F");
  std::vector<char> data(30 * kBlock);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 13);
  EXPECT_EQ(client.Write(data.data(), 3, 30), BdevIoStatus::kSuccess);
  for (const SeenIo& io : base->seen()) EXPECT_LE(io.num_blocks, 4u);
  EXPECT_EQ(base->seen().size(), 8u);
  std::vector<char> back(30 * kBlock);
  EXPECT_EQ(client.Read(back.data(), 3, 30), BdevIoStatus::kSuccess);
  EXPECT_EQ(back, data);
}

TEST_F(BdevForwardTest, UpperChildrenAreForwarded) {
  TestBdev* base = Make({}, {.max_transfer_blocks = 8});
  ASSERT_NE(base, nullptr);
  IoClient client(app_thread(), "F");
  std::vector<char> data(20 * kBlock, 0x11);
  EXPECT_EQ(client.Write(data.data(), 0, 20), BdevIoStatus::kSuccess);
  EXPECT_EQ(base->seen().size(), 3u);  // 8 + 8 + 4
  EXPECT_EQ(client.Stats().of(IoType::kWrite).ops, 1u);
  // The upper counts the caller's I/O, the base the three children it saw.
  EXPECT_EQ(Ops("F", IoType::kWrite), 1u);
  EXPECT_EQ(Ops("B", IoType::kWrite), 3u);
}

TEST_F(BdevForwardTest, BaseBouncesForItsAlignment) {
  TestBdev* base = Make({.required_alignment = 512});
  ASSERT_NE(base, nullptr);
  IoClient client(app_thread(), "F");
  std::vector<char> storage(4 * kBlock + 3);
  char* odd = storage.data() + 3;
  for (int i = 0; i < 4 * static_cast<int>(kBlock); ++i) odd[i] = static_cast<char>(i);
  EXPECT_EQ(client.Write(odd, 0, 4), BdevIoStatus::kSuccess);
  std::vector<char> expect(odd, odd + 4 * kBlock);
  std::memset(odd, 0, 4 * kBlock);
  EXPECT_EQ(client.Read(odd, 0, 4), BdevIoStatus::kSuccess);
  EXPECT_EQ(std::memcmp(odd, expect.data(), expect.size()), 0);
  for (const SeenIo& io : base->seen()) EXPECT_TRUE(io.aligned);
}

TEST_F(BdevForwardTest, RangeIsCheckedAgainstTheBase) {
  TestBdev* base = Make({.block_count = 64}, {.block_count = 128});  // upper claims more
  ASSERT_NE(base, nullptr);
  IoClient client(app_thread(), "F");
  std::vector<char> buf(kBlock);
  EXPECT_EQ(client.Read(buf.data(), 100, 1), BdevIoStatus::kOutOfRange);
  EXPECT_EQ(client.Read(buf.data(), 10, 1), BdevIoStatus::kSuccess);
  EXPECT_EQ(base->seen().size(), 1u);
}

TEST_F(BdevForwardTest, FailuresAndRetriesAtTheBase) {
  TestBdev* base = Make({});
  ASSERT_NE(base, nullptr);
  IoClient client(app_thread(), "F");
  std::vector<char> buf(kBlock);
  base->fail_next = 1;
  base->fail_errno = EIO;
  EXPECT_EQ(client.Read(buf.data(), 0, 1), BdevIoStatus::kFailed);
  EXPECT_EQ(client.last_error_number(), EIO);  // the base's errno reaches the caller
  EXPECT_EQ(client.Read(buf.data(), 0, 1), BdevIoStatus::kSuccess);
  EXPECT_EQ(client.last_error_number(), 0);
  base->fail_status = BdevIoStatus::kNoMemory;
  base->fail_next = 3;
  EXPECT_EQ(client.Read(buf.data(), 0, 1), BdevIoStatus::kSuccess);
  EXPECT_EQ(client.last_error_number(), 0);
  EXPECT_EQ(client.Stats().failed_ops, 1u);
}

TEST_F(BdevForwardTest, RemovingTheBaseWithIoInFlight) {
  TestBdev* base = Make({});
  ASSERT_NE(base, nullptr);
  auto client = std::make_unique<IoClient>(app_thread(), "F");
  base->hold = true;
  std::atomic<int> completed{0};
  std::vector<char> buf(4 * kBlock);
  RunOn(app_thread(), [&] {
    for (int i = 0; i < 4; ++i) {
      client->desc().Read(client->channel(), buf.data() + i * kBlock, i, 1,
                          [](void* arg, BdevIoStatus, int) { ++*static_cast<std::atomic<int>*>(arg); },
                          &completed);
    }
  });
  ASSERT_TRUE(WaitUntil([&] { return base->held_count() == 4; }));
  EXPECT_EQ(CallOn(app_thread(), [&] { return base->Release(); }), 4u);
  ASSERT_TRUE(WaitUntil([&] { return completed.load() == 4; }));
  client.reset();
  EXPECT_TRUE(Delete("F").ok());
  EXPECT_TRUE(Delete("B").ok());
}

}  // namespace
}  // namespace pollux::testing
