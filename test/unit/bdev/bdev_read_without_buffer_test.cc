// Reads without a buffer (BdevDesc::ReadWithoutBuffer, BdevIo::GetDataBuffer): the callback
// sees the data written before (malloc, through passthru, split), in a buffer meeting the
// bdev's alignment and, for a bdev that requires shared memory, inside the shared arena; a
// module that takes such reads gets its buffer from GetDataBuffer; with every buffer lent the
// extra reads wait and complete later in submission order, none lost; a read larger than the
// largest buffer fails clearly, as does a write without buffer; an abort, a reset, the
// channel going away or the bdev's removal end a waiting read with kAborted and take it out of
// the queue; and every buffer is back in its pool at the end. Small pools (16 and 8 buffers,
// caches of 1) make exhaustion easy; every wait is a condition polled, never a time.
#include <gtest/gtest.h>
#include <sys/uio.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bdev_test_env.h"
#include "pollux/env/shared_io_memory.h"
#include "test_bdev.h"

namespace pollux::testing {
namespace {

using rpc::Json;

constexpr uint32_t kSmallPool = 16;
constexpr uint32_t kLargePool = 8;

// One read without buffer, awaited from the test thread: its callback copies the data out.
struct DataRead {
  std::atomic<bool> done{false};
  BdevIoStatus status = BdevIoStatus::kSuccess;
  int error_number = 0;
  int iovcnt = -1;
  const void* base = nullptr;
  bool in_shared_memory = false;
  std::vector<char> data;
  std::atomic<int>* order = nullptr;
  int position = -1;

  static void Callback(void* arg, BdevIoStatus status, int error_number, const iovec* iovs,
                       int iovcnt) {
    auto* read = static_cast<DataRead*>(arg);
    read->status = status;
    read->error_number = error_number;
    read->iovcnt = iovcnt;
    for (int i = 0; i < iovcnt; ++i) {
      const char* bytes = static_cast<const char*>(iovs[i].iov_base);
      read->data.insert(read->data.end(), bytes, bytes + iovs[i].iov_len);
    }
    if (iovcnt > 0) {
      read->base = iovs[0].iov_base;
      read->in_shared_memory = InSharedIoMemory(iovs[0].iov_base, iovs[0].iov_len);
    }
    if (read->order != nullptr) read->position = read->order->fetch_add(1);
    read->done.store(true, std::memory_order_release);
  }
};

std::vector<char> Pattern(size_t size, int seed) {
  std::vector<char> data(size);
  for (size_t i = 0; i < size; ++i) data[i] = static_cast<char>(i * 13 + seed * 5 + 3);
  return data;
}

// A TestBdev that takes reads without buffer (takes_reads_without_buffer): it counts those it
// saw and gets their buffer itself, the way an SPDK module calls spdk_bdev_io_get_buf.
class BufferTakingBdev final : public TestBdev {
 public:
  using TestBdev::TestBdev;
  std::atomic<int> without_buffer{0};

  void Submit(BdevIo& io) noexcept override {
    if (io.type() != IoType::kRead) return TestBdev::Submit(io);
    if (io.needs_data_buffer()) ++without_buffer;
    io.GetDataBuffer([](BdevIo& io, BdevIoStatus status) {
      if (status != BdevIoStatus::kSuccess) return io.Complete(status);
      static_cast<BufferTakingBdev&>(io.bdev()).TestBdev::Submit(io);
    });
  }
};

class BdevReadWithoutBufferTest : public BdevTest {
 protected:
  BdevLayerOptions LayerOptions() const override {
    BdevLayerOptions options;
    options.small_buf_pool_size = kSmallPool;
    options.large_buf_pool_size = kLargePool;
    options.iobuf_small_cache_size = 1;
    options.iobuf_large_cache_size = 1;
    return options;
  }
  void TearDown() override {
    clients_.clear();  // closed before the layer finishes
    BdevTest::TearDown();
  }

  void Rpc(const std::string& method, const Json& params) {
    auto result = CallRpc(method, params);
    ASSERT_TRUE(result.ok()) << method << ": " << result.status();
  }
  // Registers a TestBdev (or `T`) named `name` of 512-byte blocks, its data a pattern.
  template <typename T = TestBdev>
  T* Register(const std::string& name, BdevProperties properties = {}) {
    properties.name = name;
    if (properties.block_count == 0) properties.block_count = 1024;
    T* bdev = CallOn(app_thread(), [&]() -> T* {
      auto registered = RegisterBdev(std::make_unique<T>(properties));
      return registered.ok() ? static_cast<T*>(*registered) : nullptr;
    });
    if (bdev != nullptr) bdev->data() = Pattern(bdev->data().size(), 1);
    return bdev;
  }
  // A client on thread "io" of the second reactor (one thread for every client of a test).
  IoClient& Client(const std::string& bdev) {
    if (io_thread_ == nullptr) io_thread_ = CreateThread("io", 1);
    clients_.push_back(std::make_unique<IoClient>(io_thread_, bdev));
    EXPECT_TRUE(clients_.back()->ok());
    return *clients_.back();
  }
  void Start(IoClient& client, uint64_t offset, uint64_t blocks, DataRead& read) {
    RunOn(client.thread(), [&client, offset, blocks, &read] {
      client.desc().ReadWithoutBuffer(client.channel(), offset, blocks, &DataRead::Callback, &read);
    });
  }
  // Reads and waits.
  void ReadAndWait(IoClient& client, uint64_t offset, uint64_t blocks, DataRead& read) {
    Start(client, offset, blocks, read);
    ASSERT_TRUE(WaitUntil([&] { return read.done.load(std::memory_order_acquire); }));
  }
  static BdevBufferPoolStats Pool(const char* name) {
    for (const BdevBufferPoolStats& stats : GetBdevBufferPoolStats()) {
      if (std::string(stats.name) == name) return stats;
    }
    ADD_FAILURE() << "no pool " << name;
    return {};
  }
  // Every buffer of every pool made is free again (none lent, none lost).
  static void ExpectEveryBufferBack() {
    for (const BdevBufferPoolStats& stats : GetBdevBufferPoolStats()) {
      EXPECT_EQ(stats.free, stats.count) << stats.name;
    }
  }

  Thread* io_thread_ = nullptr;
  std::vector<std::unique_ptr<IoClient>> clients_;
};

TEST_F(BdevReadWithoutBufferTest, MallocAndNullReadsGetTheirData) {
  Rpc("bdev_malloc_create", {{"name", "M0"}, {"num_blocks", 1024}, {"block_size", 512}});
  IoClient& client = Client("M0");
  std::vector<char> small = Pattern(8 << 10, 2), large = Pattern(128 << 10, 3);
  ASSERT_EQ(client.Write(small.data(), 8, 16), BdevIoStatus::kSuccess);
  ASSERT_EQ(client.Write(large.data(), 100, 256), BdevIoStatus::kSuccess);
  DataRead a, b;
  ReadAndWait(client, 8, 16, a);
  ReadAndWait(client, 100, 256, b);
  EXPECT_EQ(a.status, BdevIoStatus::kSuccess);
  EXPECT_EQ(a.iovcnt, 1);
  EXPECT_EQ(a.data, small);
  EXPECT_EQ(b.status, BdevIoStatus::kSuccess);
  EXPECT_EQ(b.data, large);
  // Null keeps no data, but a read of it still gets its buffer and completes.
  Rpc("bdev_null_create", {{"name", "N0"}, {"num_blocks", 1024}, {"block_size", 512}});
  DataRead null_read;
  ReadAndWait(Client("N0"), 0, 16, null_read);
  EXPECT_EQ(null_read.status, BdevIoStatus::kSuccess);
  EXPECT_EQ(null_read.data.size(), 8192u);
  EXPECT_EQ(Pool("small").count, kSmallPool);
  EXPECT_EQ(Pool("large").count, kLargePool);
  EXPECT_EQ(Pool("shared_small").count, 0u);  // made on first need only
  ExpectEveryBufferBack();
}

TEST_F(BdevReadWithoutBufferTest, ThroughPassthruAndSplitOneBufferHoldsTheWholeRead) {
  Rpc("bdev_malloc_create", {{"name", "M0"}, {"num_blocks", 1024}, {"block_size", 512}});
  Rpc("bdev_passthru_create", {{"base_bdev_name", "M0"}, {"name", "P0"}});
  IoClient& writer = Client("P0");
  std::vector<char> data = Pattern(64 << 10, 4);
  ASSERT_EQ(writer.Write(data.data(), 0, 128), BdevIoStatus::kSuccess);
  DataRead through;
  ReadAndWait(writer, 0, 128, through);
  EXPECT_EQ(through.status, BdevIoStatus::kSuccess);
  EXPECT_EQ(through.data, data);

  // Cut into 8 KiB children: the caller still sees one buffer.
  TestBdev* split = Register("T0", {.block_size = 512, .max_transfer_blocks = 16});
  ASSERT_NE(split, nullptr);
  IoClient& client = Client("T0");
  DataRead read;
  ReadAndWait(client, 4, 128, read);
  EXPECT_EQ(read.status, BdevIoStatus::kSuccess);
  EXPECT_EQ(read.iovcnt, 1);
  EXPECT_EQ(read.data,
            std::vector<char>(split->data().begin() + 4 * 512, split->data().begin() + 132 * 512));
  EXPECT_EQ(split->seen().size(), 8u);
  ExpectEveryBufferBack();
}

TEST_F(BdevReadWithoutBufferTest, BufferMeetsTheBdevsAlignment) {
  for (uint32_t alignment : {4096u, 65536u}) {
    std::string name = "A" + std::to_string(alignment);
    // An alignment is at most the block size. 64 KiB: the large pool, for its room.
    TestBdev* bdev = Register(
        name, {.block_size = alignment, .block_count = 16, .required_alignment = alignment});
    ASSERT_NE(bdev, nullptr);
    IoClient& client = Client(name);
    DataRead read;
    ReadAndWait(client, 3, 1, read);
    EXPECT_EQ(read.status, BdevIoStatus::kSuccess) << alignment;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(read.base) % alignment, 0u) << alignment;
    EXPECT_EQ(read.data, std::vector<char>(bdev->data().begin() + 3 * alignment,
                                           bdev->data().begin() + 4 * alignment));
    // The module saw it aligned (no bounce needed: the buffer was made for it).
    ASSERT_EQ(bdev->seen().size(), 1u);
    EXPECT_TRUE(bdev->seen()[0].aligned);
  }
  ExpectEveryBufferBack();
}

TEST_F(BdevReadWithoutBufferTest, SharedMemoryBdevGetsBuffersInsideTheArena) {
  TestBdev* bdev = Register("S0", {.block_size = 512, .requires_shared_memory = true});
  ASSERT_NE(bdev, nullptr);
  IoClient& client = Client("S0");
  for (uint64_t blocks : {8, 200}) {  // one small, one large
    DataRead read;
    ReadAndWait(client, 1, blocks, read);
    EXPECT_EQ(read.status, BdevIoStatus::kSuccess);
    EXPECT_TRUE(read.in_shared_memory) << blocks;
    EXPECT_EQ(read.data, std::vector<char>(bdev->data().begin() + 512,
                                           bdev->data().begin() + (1 + blocks) * 512));
  }
  EXPECT_EQ(Pool("shared_small").count, kSmallPool);
  EXPECT_EQ(Pool("shared_large").count, kLargePool);
  ExpectEveryBufferBack();
}

TEST_F(BdevReadWithoutBufferTest, ModuleThatTakesThemGetsItsBufferFromGetDataBuffer) {
  auto* bdev = Register<BufferTakingBdev>(
      "B0", {.block_size = 4096, .required_alignment = 4096, .takes_reads_without_buffer = true});
  ASSERT_NE(bdev, nullptr);
  IoClient& client = Client("B0");
  DataRead read;
  ReadAndWait(client, 2, 3, read);
  EXPECT_EQ(read.status, BdevIoStatus::kSuccess);
  EXPECT_EQ(bdev->without_buffer.load(), 1);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(read.base) % 4096, 0u);
  EXPECT_EQ(read.data,
            std::vector<char>(bdev->data().begin() + 2 * 4096, bdev->data().begin() + 5 * 4096));
  // A read with its own buffer: GetDataBuffer answers at once with it.
  std::vector<char> buf(4096);
  EXPECT_EQ(client.Read(buf.data(), 5, 1), BdevIoStatus::kSuccess);
  EXPECT_EQ(bdev->without_buffer.load(), 1);
  EXPECT_EQ(buf,
            std::vector<char>(bdev->data().begin() + 5 * 4096, bdev->data().begin() + 6 * 4096));
  ExpectEveryBufferBack();
}

TEST_F(BdevReadWithoutBufferTest, ForwardedStillWithoutBufferEveryBaseGetsOneOrTakesIt) {
  // A virtual bdev that takes reads without buffer passes them on as they are: over a plain
  // base (Forward's inline path), an aligned one (its checks out of line) and one that takes
  // them too (it asks for its buffer itself).
  ASSERT_NE(Register("Plain", {.block_size = 512}), nullptr);
  ASSERT_NE(Register("Aligned", {.block_size = 4096, .required_alignment = 4096}), nullptr);
  auto* taking = Register<BufferTakingBdev>("Taking", {.block_size = 512,
                                                       .takes_reads_without_buffer = true});
  ASSERT_NE(taking, nullptr);
  for (const char* base : {"Plain", "Aligned", "Taking"}) {
    const std::string upper = std::string("F") + base;
    ASSERT_TRUE(CallOn(app_thread(), [&] {
      auto desc = BdevDesc::Open(base, false, nullptr);
      if (!desc.ok()) return false;
      BdevProperties properties{.name = upper, .takes_reads_without_buffer = true};
      properties.block_size = (*desc)->bdev().block_size();
      properties.block_count = (*desc)->bdev().block_count();
      return RegisterBdev(std::make_unique<ForwardingBdev>(properties, std::move(*desc))).ok();
    })) << base;
    IoClient& client = Client(upper);
    TestBdev& bdev = static_cast<TestBdev&>(*CallOn(app_thread(), [&] { return FindBdev(base); }));
    const uint64_t block = bdev.block_size();
    DataRead read;
    ReadAndWait(client, 2, 3, read);
    EXPECT_EQ(read.status, BdevIoStatus::kSuccess) << base;
    EXPECT_EQ(read.data, std::vector<char>(bdev.data().begin() + 2 * block,
                                           bdev.data().begin() + 5 * block))
        << base;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(read.base) % bdev.required_alignment(), 0u) << base;
    ASSERT_EQ(bdev.seen().size(), 1u) << base;
  }
  EXPECT_EQ(taking->without_buffer.load(), 1);
  ExpectEveryBufferBack();
}

TEST_F(BdevReadWithoutBufferTest, ExhaustedPoolQueuesTheRestInOrderAndLosesNone) {
  TestBdev* bdev = Register("T0", {.block_size = 512});
  ASSERT_NE(bdev, nullptr);
  IoClient& client = Client("T0");
  bdev->hold = true;
  constexpr int kReads = kLargePool + 5;
  std::atomic<int> order{0};
  std::vector<DataRead> reads(kReads);
  for (int i = 0; i < kReads; ++i) {
    reads[i].order = &order;
    Start(client, i * 32, 32, reads[i]);  // 16 KiB: the large pool
  }
  // Every large buffer is lent to a held read; the others wait for one.
  ASSERT_TRUE(WaitUntil([&] { return bdev->held_count() == kLargePool; }));
  EXPECT_EQ(Pool("large").free, 0u);
  EXPECT_EQ(Pool("large").waits, 5u);
  for (const DataRead& read : reads) EXPECT_FALSE(read.done.load());
  // Released, each returned buffer goes to the oldest waiting read, which completes inline.
  bdev->hold = false;
  RunOn(client.thread(), [bdev] { bdev->Release(); });
  ASSERT_TRUE(WaitUntil([&] { return order.load() == kReads; }));
  for (int i = 0; i < kReads; ++i) {
    EXPECT_EQ(reads[i].status, BdevIoStatus::kSuccess) << i;
    EXPECT_EQ(reads[i].data, std::vector<char>(bdev->data().begin() + i * 32 * 512,
                                               bdev->data().begin() + (i + 1) * 32 * 512))
        << i;
    // Held ones in release (submission) order, then the waiters in theirs.
    EXPECT_EQ(reads[i].position, i);
  }
  ExpectEveryBufferBack();
}

TEST_F(BdevReadWithoutBufferTest, AThreadHoldingNoneOfTheBuffersIsServedFromThePool) {
  // Every large buffer is lent to reads of thread "io", which holds them; a read of another
  // thread waits. Nothing returned on its own thread can resume it: its poller looks at the
  // pool, which gets buffers back once "io"'s cache spills.
  TestBdev* bdev = Register("T0", {.block_size = 512});
  ASSERT_NE(bdev, nullptr);
  IoClient& holder = Client("T0");
  bdev->hold = true;
  DataRead held[kLargePool];
  for (uint32_t i = 0; i < kLargePool; ++i) Start(holder, i * 32, 32, held[i]);
  ASSERT_TRUE(WaitUntil([&] { return bdev->held_count() == kLargePool; }));
  IoClient other(CreateThread("other", 0), "T0");
  ASSERT_TRUE(other.ok());
  DataRead waiting;
  Start(other, 500, 32, waiting);
  ASSERT_TRUE(WaitUntil([&] { return Pool("large").waits == 1; }));
  EXPECT_FALSE(waiting.done.load());
  bdev->hold = false;
  RunOn(holder.thread(), [bdev] { bdev->Release(); });
  ASSERT_TRUE(WaitUntil([&] { return waiting.done.load(); }));
  EXPECT_EQ(waiting.status, BdevIoStatus::kSuccess);
  EXPECT_EQ(waiting.data,
            std::vector<char>(bdev->data().begin() + 500 * 512, bdev->data().begin() + 532 * 512));
  for (const DataRead& read : held) {
    ASSERT_TRUE(WaitUntil([&] { return read.done.load(); }));
    EXPECT_EQ(read.status, BdevIoStatus::kSuccess);
  }
  ExpectEveryBufferBack();
}

TEST_F(BdevReadWithoutBufferTest, TooLargeOrWriteWithoutBufferFailsClearly) {
  TestBdev* bdev = Register("T0", {.block_size = 512});
  TestBdev* aligned = Register("T1", {.block_size = 8192, .required_alignment = 8192});
  TestBdev* very_aligned =
      Register("T2", {.block_size = 65536, .block_count = 4, .required_alignment = 65536});
  ASSERT_NE(bdev, nullptr);
  ASSERT_NE(aligned, nullptr);
  ASSERT_NE(very_aligned, nullptr);
  IoClient& client = Client("T0");
  DataRead too_large;
  ReadAndWait(client, 0, 265, too_large);  // 132.5 KiB
  EXPECT_EQ(too_large.status, BdevIoStatus::kInvalid);
  EXPECT_EQ(too_large.iovcnt, 0);
  // 132 KiB fits; 128 KiB with room for an 8 KiB alignment too, not with a 64 KiB one.
  DataRead fits, fits_aligned, does_not;
  ReadAndWait(client, 0, 264, fits);
  EXPECT_EQ(fits.status, BdevIoStatus::kSuccess);
  ReadAndWait(Client("T1"), 0, 16, fits_aligned);
  EXPECT_EQ(fits_aligned.status, BdevIoStatus::kSuccess);
  ReadAndWait(Client("T2"), 0, 2, does_not);
  EXPECT_EQ(does_not.status, BdevIoStatus::kInvalid);
  EXPECT_TRUE(very_aligned->seen().empty());
  // The other checks still come first.
  DataRead past_end;
  ReadAndWait(client, 1020, 8, past_end);
  EXPECT_EQ(past_end.status, BdevIoStatus::kOutOfRange);
  // Writes and plain reads need the caller's buffer.
  EXPECT_EQ(client.Write(nullptr, 0, 1), BdevIoStatus::kInvalid);
  EXPECT_EQ(client.Read(nullptr, 0, 1), BdevIoStatus::kInvalid);
  EXPECT_EQ(bdev->seen().size(), 1u);  // only `fits` reached the module
  ExpectEveryBufferBack();
}

// Two bdevs on one thread: T0 holds every large buffer in held reads; reads of T1 wait.
class BdevBufferWaitTest : public BdevReadWithoutBufferTest {
 protected:
  void SetUp() override {
    BdevReadWithoutBufferTest::SetUp();
    if (HasFatalFailure()) return;
    holder_ = Register("T0", {.block_size = 512});
    waiter_bdev_ = Register("T1", {.block_size = 512});
    ASSERT_NE(holder_, nullptr);
    ASSERT_NE(waiter_bdev_, nullptr);
    holder_client_ = &Client("T0");
    waiter_client_ = &Client("T1");
    holder_->hold = true;
    for (uint32_t i = 0; i < kLargePool; ++i) Start(*holder_client_, i * 32, 32, held_[i]);
    ASSERT_TRUE(WaitUntil([&] { return holder_->held_count() == kLargePool; }));
    for (DataRead& read : waiting_) Start(*waiter_client_, 0, 32, read);
    ASSERT_TRUE(WaitUntil([&] { return Pool("large").waits == 2; }));
  }
  // Lets the held reads (and whatever got their buffers) finish; checks nothing was lost.
  void ReleaseHeld() {
    holder_->hold = false;
    RunOn(holder_client_->thread(), [this] { holder_->Release(); });
    ASSERT_TRUE(WaitUntil([&] {
      for (const DataRead& read : held_) {
        if (!read.done.load()) return false;
      }
      return true;
    }));
    for (const DataRead& read : held_) EXPECT_EQ(read.status, BdevIoStatus::kSuccess);
  }

  TestBdev* holder_ = nullptr;
  TestBdev* waiter_bdev_ = nullptr;
  IoClient* holder_client_ = nullptr;
  IoClient* waiter_client_ = nullptr;
  DataRead held_[kLargePool];
  DataRead waiting_[2];
};

TEST_F(BdevBufferWaitTest, AbortEndsTheWaitOfOneReadAndTheOtherStillGetsItsBuffer) {
  AwaitedIo abort;
  RunOn(waiter_client_->thread(), [&] {
    waiter_client_->desc().Abort(waiter_client_->channel(), &waiting_[0], &AwaitedIo::Callback,
                                 &abort);
  });
  ASSERT_TRUE(WaitUntil([&] { return abort.done.load() && waiting_[0].done.load(); }));
  EXPECT_EQ(abort.status.load(), BdevIoStatus::kSuccess);
  EXPECT_EQ(waiting_[0].status, BdevIoStatus::kAborted);
  EXPECT_EQ(waiting_[0].iovcnt, 0);
  EXPECT_FALSE(waiting_[1].done.load());
  ASSERT_NO_FATAL_FAILURE(ReleaseHeld());
  ASSERT_TRUE(WaitUntil([&] { return waiting_[1].done.load(); }));
  EXPECT_EQ(waiting_[1].status, BdevIoStatus::kSuccess);
  EXPECT_EQ(waiting_[1].data, std::vector<char>(waiter_bdev_->data().begin(),
                                                waiter_bdev_->data().begin() + 32 * 512));
  // Only the one that got a buffer reached the module.
  EXPECT_EQ(waiter_bdev_->seen().size(), 1u);
  ExpectEveryBufferBack();
}

TEST_F(BdevBufferWaitTest, ResetAbortsTheChannelsWaitingReads) {
  EXPECT_EQ(waiter_client_->Reset(), BdevIoStatus::kSuccess);
  for (DataRead& read : waiting_) {
    ASSERT_TRUE(WaitUntil([&] { return read.done.load(); }));
    EXPECT_EQ(read.status, BdevIoStatus::kAborted);
  }
  ASSERT_NO_FATAL_FAILURE(ReleaseHeld());
  EXPECT_TRUE(waiter_bdev_->seen().size() == 1u);  // the reset only
  ExpectEveryBufferBack();
}

TEST_F(BdevBufferWaitTest, ChannelGoneWithWaitingReadsCompletesThemAborted) {
  // The caller drops its channel with reads outstanding (a bug the layer logs): those waiting
  // for a buffer end, with their callbacks, instead of being resumed on a channel that is gone.
  std::erase_if(clients_, [this](const auto& c) { return c.get() == waiter_client_; });
  waiter_client_ = nullptr;
  for (DataRead& read : waiting_) {
    ASSERT_TRUE(WaitUntil([&] { return read.done.load(); }));
    EXPECT_EQ(read.status, BdevIoStatus::kAborted);
  }
  ASSERT_NO_FATAL_FAILURE(ReleaseHeld());
  EXPECT_TRUE(waiter_bdev_->seen().empty());
  ExpectEveryBufferBack();
}

TEST_F(BdevBufferWaitTest, RemovalOfTheBdevCompletesItsWaitingReadsAborted) {
  std::atomic<bool> deleted{false};
  RunOn(app_thread(), [&] {
    DeleteBdev("T1", nullptr, [&](absl::Status status) {
      EXPECT_TRUE(status.ok()) << status;
      deleted = true;
    });
  });
  for (DataRead& read : waiting_) {
    ASSERT_TRUE(WaitUntil([&] { return read.done.load(); }));
    EXPECT_EQ(read.status, BdevIoStatus::kAborted);
  }
  ASSERT_TRUE(WaitUntil([&] { return waiter_client_->remove_events() == 1; }));
  // Its user closes on the remove event, as it should; the removal then finishes.
  std::erase_if(clients_, [this](const auto& c) { return c.get() == waiter_client_; });
  waiter_client_ = nullptr;
  ASSERT_TRUE(WaitUntil([&] { return deleted.load(); }));
  ASSERT_NO_FATAL_FAILURE(ReleaseHeld());
  ExpectEveryBufferBack();
}

}  // namespace
}  // namespace pollux::testing
