// The layer's request path: checks, completions, emulation, bouncing, retries, pool exhaustion.
#include <gtest/gtest.h>

#include <cstring>
#include <numeric>
#include <vector>

#include "bdev_test_env.h"
#include "test_bdev.h"

namespace pollux::testing {
namespace {

constexpr uint32_t kBlock = 512;

class BdevIoTest : public BdevTest {
 protected:
  TestBdev* Make(BdevProperties p = {}) {
    if (p.name.empty()) p.name = "T0";
    if (p.block_count == 0) p.block_count = 256;
    TestBdev* bdev = CallOn(app_thread(), [&] { return RegisterTestBdev(p); });
    EXPECT_NE(bdev, nullptr);
    return bdev;
  }
  std::vector<char> Pattern(size_t bytes, int seed) {
    std::vector<char> v(bytes);
    for (size_t i = 0; i < bytes; ++i) v[i] = static_cast<char>((i * 131 + seed) & 0xff);
    return v;
  }
};

TEST_F(BdevIoTest, WriteThenReadBack) {
  TestBdev* bdev = Make();
  IoClient client(app_thread(), "T0");
  ASSERT_TRUE(client.ok());
  auto data = Pattern(4 * kBlock, 7);
  EXPECT_EQ(client.Write(data.data(), 10, 4), BdevIoStatus::kSuccess);
  std::vector<char> back(4 * kBlock);
  EXPECT_EQ(client.Read(back.data(), 10, 4), BdevIoStatus::kSuccess);
  EXPECT_EQ(back, data);
  EXPECT_EQ(std::memcmp(bdev->data().data() + 10 * kBlock, data.data(), data.size()), 0);
}

TEST_F(BdevIoTest, PastTheEndNeverReachesTheModule) {
  TestBdev* bdev = Make();
  IoClient client(app_thread(), "T0");
  std::vector<char> buf(8 * kBlock);
  EXPECT_EQ(client.Read(buf.data(), 255, 2), BdevIoStatus::kOutOfRange);
  EXPECT_EQ(client.Write(buf.data(), 256, 1), BdevIoStatus::kOutOfRange);
  EXPECT_EQ(client.Read(buf.data(), UINT64_MAX, 2), BdevIoStatus::kOutOfRange);  // wraps
  EXPECT_EQ(client.Flush(0, 257), BdevIoStatus::kOutOfRange);
  EXPECT_EQ(client.Read(buf.data(), 254, 2), BdevIoStatus::kSuccess);
  ASSERT_EQ(bdev->seen().size(), 1u);
  EXPECT_EQ(client.Stats().failed_ops, 4u);
}

TEST_F(BdevIoTest, MalformedRequestsAreInvalid) {
  TestBdev* bdev = Make();
  IoClient client(app_thread(), "T0");
  std::vector<char> buf(4 * kBlock);
  EXPECT_EQ(client.Read(buf.data(), 0, 0), BdevIoStatus::kInvalid);     // zero length
  EXPECT_EQ(client.Read(nullptr, 0, 1), BdevIoStatus::kInvalid);        // no buffer
  iovec short_iov{buf.data(), kBlock};
  EXPECT_EQ(client.Readv(&short_iov, 1, 0, 2), BdevIoStatus::kInvalid);  // iovecs too short
  EXPECT_EQ(client.Readv(nullptr, 1, 0, 1), BdevIoStatus::kInvalid);
  EXPECT_EQ(client.Readv(&short_iov, 0, 0, 1), BdevIoStatus::kInvalid);
  EXPECT_TRUE(bdev->seen().empty());
}

TEST_F(BdevIoTest, ReadOnlyDescriptorCannotWrite) {
  Make();
  IoClient client(app_thread(), "T0", /*writable=*/false);
  std::vector<char> buf(kBlock);
  EXPECT_EQ(client.Write(buf.data(), 0, 1), BdevIoStatus::kInvalid);
  EXPECT_EQ(client.WriteZeroes(0, 1), BdevIoStatus::kInvalid);
  EXPECT_EQ(client.Read(buf.data(), 0, 1), BdevIoStatus::kSuccess);
}

TEST_F(BdevIoTest, UnsupportedTypesAreReported) {
  TestBdev* bdev = Make();
  IoClient client(app_thread(), "T0");
  EXPECT_EQ(client.Unmap(0, 1), BdevIoStatus::kNotSupported);
  EXPECT_FALSE(bdev->Supports(IoType::kUnmap));
  EXPECT_TRUE(bdev->Supports(IoType::kWriteZeroes));  // emulated
  EXPECT_TRUE(bdev->seen().empty());
}

TEST_F(BdevIoTest, WriteZeroesIsEmulatedWithWrites) {
  TestBdev* bdev = Make({.name = "T0", .block_count = 8192});  // 4 MiB: several zero buffers
  std::memset(bdev->data().data(), 0x5a, bdev->data().size());
  IoClient client(app_thread(), "T0");
  EXPECT_EQ(client.WriteZeroes(1, 8000), BdevIoStatus::kSuccess);
  std::vector<char>& d = bdev->data();
  EXPECT_EQ(d[0], 0x5a);
  EXPECT_TRUE(std::all_of(d.begin() + kBlock, d.begin() + 8001 * kBlock, [](char c) { return c == 0; }));
  EXPECT_EQ(d[8001 * kBlock], 0x5a);
  uint64_t blocks = 0;
  for (const SeenIo& io : bdev->seen()) {
    EXPECT_EQ(io.type, IoType::kWrite);
    blocks += io.num_blocks;
  }
  EXPECT_EQ(blocks, 8000u);
  EXPECT_GE(bdev->seen().size(), 4u);  // 1 MiB zero buffer = 2048 blocks per write
  EXPECT_EQ(client.Stats().of(IoType::kWriteZeroes).ops, 1u);
}

TEST_F(BdevIoTest, NativeWriteZeroesReachesTheModule) {
  TestBdev* bdev = Make();
  bdev->supported_types |= 1u << static_cast<int>(IoType::kWriteZeroes);
  // The mask is read at registration: register a second bdev with it.
  TestBdev* native = CallOn(app_thread(), [] {
    auto b = std::make_unique<TestBdev>(BdevProperties{.name = "T1", .block_count = 64});
    b->supported_types |= 1u << static_cast<int>(IoType::kWriteZeroes);
    auto r = RegisterBdev(std::move(b));
    return r.ok() ? static_cast<TestBdev*>(*r) : nullptr;
  });
  ASSERT_NE(native, nullptr);
  IoClient client(app_thread(), "T1");
  EXPECT_EQ(client.WriteZeroes(0, 16), BdevIoStatus::kSuccess);
  ASSERT_EQ(native->seen().size(), 1u);
  EXPECT_EQ(native->seen()[0].type, IoType::kWriteZeroes);
}

TEST_F(BdevIoTest, FlushWithoutWriteCacheCompletesInTheLayer) {
  BdevProperties p{.name = "T0", .block_count = 64};
  TestBdev* bdev = Make(p);
  bdev->ClearSeen();
  IoClient client(app_thread(), "T0");
  EXPECT_EQ(client.Flush(0, 64), BdevIoStatus::kSuccess);
  // The module supports flush, so it sees it.
  EXPECT_EQ(bdev->seen().size(), 1u);
}

TEST_F(BdevIoTest, MisalignedBuffersAreBounced) {
  TestBdev* bdev = Make({.name = "T0", .block_count = 64, .required_alignment = 512});
  IoClient client(app_thread(), "T0");
  std::vector<char> storage(8 * kBlock + 1);
  char* odd = storage.data() + 1;  // misaligned on purpose
  auto data = Pattern(4 * kBlock, 3);
  std::memcpy(odd, data.data(), data.size());
  EXPECT_EQ(client.Write(odd, 2, 4), BdevIoStatus::kSuccess);
  std::memset(odd, 0, data.size());
  EXPECT_EQ(client.Read(odd, 2, 4), BdevIoStatus::kSuccess);
  EXPECT_EQ(std::memcmp(odd, data.data(), data.size()), 0);
  // Split iovecs with odd lengths, each misaligned.
  std::vector<char> back(2300);
  iovec iov[3] = {{back.data() + 1, 100}, {back.data() + 200, 1000}, {back.data() + 1300, 948}};
  EXPECT_EQ(client.Readv(iov, 3, 2, 4), BdevIoStatus::kSuccess);
  EXPECT_EQ(std::memcmp(iov[0].iov_base, data.data(), 100), 0);
  EXPECT_EQ(std::memcmp(iov[1].iov_base, data.data() + 100, 1000), 0);
  EXPECT_EQ(std::memcmp(iov[2].iov_base, data.data() + 1100, 948), 0);
  for (const SeenIo& io : bdev->seen()) EXPECT_TRUE(io.aligned);
}

TEST_F(BdevIoTest, FailuresReachTheCaller) {
  TestBdev* bdev = Make();
  IoClient client(app_thread(), "T0");
  std::vector<char> buf(kBlock);
  bdev->fail_next = 1;
  EXPECT_EQ(client.Read(buf.data(), 0, 1), BdevIoStatus::kFailed);
  EXPECT_EQ(client.Read(buf.data(), 0, 1), BdevIoStatus::kSuccess);
  BdevIoStats stats = client.Stats();
  EXPECT_EQ(stats.failed_ops, 1u);
  EXPECT_EQ(stats.of(IoType::kRead).ops, 1u);
}

TEST_F(BdevIoTest, NoMemoryIsRetriedUntilItSucceeds) {
  TestBdev* bdev = Make();
  IoClient client(app_thread(), "T0");
  auto data = Pattern(kBlock, 9);
  bdev->fail_status = BdevIoStatus::kNoMemory;
  bdev->fail_next = 5;
  EXPECT_EQ(client.Write(data.data(), 3, 1), BdevIoStatus::kSuccess);
  EXPECT_EQ(bdev->seen().size(), 6u);  // five refusals, then the write
  EXPECT_EQ(std::memcmp(bdev->data().data() + 3 * kBlock, data.data(), kBlock), 0);
}

TEST_F(BdevIoTest, CompletionsInsideSubmitAreDeferred) {
  Make();
  IoClient client(app_thread(), "T0");
  // The callback runs after Read() returned, never inside it.
  struct State {
    bool in_submit = false;
    bool called_inside = false;
    std::atomic<bool> done{false};
  } state;
  std::vector<char> buf(kBlock);
  RunOn(app_thread(), [&] {
    state.in_submit = true;
    client.desc().Read(client.channel(), buf.data(), 0, 1,
                       [](void* arg, BdevIoStatus, int) {
                         auto* s = static_cast<State*>(arg);
                         s->called_inside = s->in_submit;
                         s->done = true;
                       },
                       &state);
    state.in_submit = false;
  });
  ASSERT_TRUE(WaitUntil([&] { return state.done.load(); }));
  EXPECT_FALSE(state.called_inside);
}

TEST_F(BdevIoTest, HeldIoCompletesLater) {
  TestBdev* bdev = Make();
  IoClient client(app_thread(), "T0");
  bdev->hold = true;
  std::atomic<int> completed{0};
  std::vector<char> buf(8 * kBlock);
  RunOn(app_thread(), [&] {
    for (int i = 0; i < 8; ++i) {
      client.desc().Read(client.channel(), buf.data() + i * kBlock, i, 1,
                         [](void* arg, BdevIoStatus s, int) {
                           if (s == BdevIoStatus::kSuccess) ++*static_cast<std::atomic<int>*>(arg);
                         },
                         &completed);
    }
  });
  ASSERT_TRUE(WaitUntil([&] { return bdev->held_count() == 8; }));
  EXPECT_EQ(completed.load(), 0);
  bdev->hold = false;
  EXPECT_EQ(CallOn(app_thread(), [&] { return bdev->Release(); }), 8u);
  ASSERT_TRUE(WaitUntil([&] { return completed.load() == 8; }));
}

class SmallPoolTest : public BdevIoTest {
 protected:
  BdevLayerOptions LayerOptions() const override {
    return {.bdev_io_pool_size = 64, .bdev_io_cache_size = 8};
  }
};

// More I/O than BdevIo objects: the excess waits and runs as objects free; none fails.
TEST_F(SmallPoolTest, ExhaustionQueuesInsteadOfFailing) {
  TestBdev* bdev = Make();
  IoClient client(app_thread(), "T0");
  bdev->hold = true;
  constexpr int kIos = 200;
  std::atomic<int> ok{0};
  std::atomic<int> failed{0};
  struct Counters {
    std::atomic<int>* ok;
    std::atomic<int>* failed;
  } counters{&ok, &failed};
  std::vector<char> buf(kBlock);
  RunOn(app_thread(), [&] {
    for (int i = 0; i < kIos; ++i) {
      client.desc().Read(client.channel(), buf.data(), i % 256, 1,
                         [](void* arg, BdevIoStatus s, int) {
                           auto* c = static_cast<Counters*>(arg);
                           ++*(s == BdevIoStatus::kSuccess ? c->ok : c->failed);
                         },
                         &counters);
    }
  });
  ASSERT_TRUE(WaitUntil([&] { return bdev->held_count() == 64; }));
  bdev->hold = false;
  ASSERT_TRUE(WaitUntil([&] {
    CallOn(app_thread(), [&] { return bdev->Release(); });
    return ok.load() + failed.load() == kIos;
  }));
  EXPECT_EQ(ok.load(), kIos);
  EXPECT_EQ(bdev->seen().size(), static_cast<size_t>(kIos));
}

TEST_F(BdevIoTest, IoFromTwoThreadsUsesTwoChannels) {
  Make();
  Thread* other = CreateThread("other", 1);
  {
    IoClient a(app_thread(), "T0");
    IoClient b(other, "T0");
    auto data = Pattern(kBlock, 1);
    EXPECT_EQ(a.Write(data.data(), 0, 1), BdevIoStatus::kSuccess);
    std::vector<char> back(kBlock);
    EXPECT_EQ(b.Read(back.data(), 0, 1), BdevIoStatus::kSuccess);
    EXPECT_EQ(back, data);
    EXPECT_EQ(a.Stats().of(IoType::kWrite).ops, 1u);
    EXPECT_EQ(b.Stats().of(IoType::kRead).ops, 1u);
    EXPECT_EQ(b.Stats().of(IoType::kWrite).ops, 0u);
  }
  ExitThread(other);
}

}  // namespace
}  // namespace pollux::testing
