// The aio module's AioQueue and AioContext, driven directly against a real file: a batch goes
// to the kernel in one io_submit; completions come from the user-space ring (and, forced, from
// io_getevents), also when the ring wraps many times; a partial submission refuses only the
// bad iocb and submits the rest; a full queue refuses Enqueue; kernel errors arrive as -errno;
// every completion signals the eventfd; Arm says whether a reactor may sleep.
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "aio_queue.h"

namespace pollux::testing {
namespace {

constexpr size_t kBlock = 4096;
constexpr size_t kFileBlocks = 256;  // 1 MiB

// What block `block` holds: its number in the first 8 bytes, then a byte pattern.
void FillBlock(uint8_t* data, uint64_t block) {
  for (size_t i = 0; i < kBlock; ++i) data[i] = static_cast<uint8_t>(block * 7 + i);
  std::memcpy(data, &block, sizeof(block));
}

bool BlockMatches(const uint8_t* data, uint64_t block) {
  std::vector<uint8_t> expected(kBlock);
  FillBlock(expected.data(), block);
  return std::memcmp(data, expected.data(), kBlock) == 0;
}

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};
using AlignedBuffer = std::unique_ptr<uint8_t[], AlignedFree>;

AlignedBuffer Allocate(size_t bytes) {
  void* p = nullptr;
  EXPECT_EQ(posix_memalign(&p, kBlock, bytes), 0);
  return AlignedBuffer(static_cast<uint8_t*>(p));
}

// Every completion the queue delivered, in order.
struct Recorder {
  struct Done {
    iocb* cb;
    int64_t res;
  };
  std::vector<Done> done;

  static void Record(void* arg, iocb& cb, int64_t res) noexcept {
    static_cast<Recorder*>(arg)->done.push_back({&cb, res});
  }
};

class AioQueueTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    // Not /tmp: it may be tmpfs, which refuses O_DIRECT.
    char path[] = "/var/tmp/pollux-aio-queue-XXXXXX";
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0) << strerror(errno);
    path_ = path;
    AlignedBuffer block = Allocate(kBlock);
    for (uint64_t b = 0; b < kFileBlocks; ++b) {
      FillBlock(block.get(), b);
      ASSERT_EQ(pwrite(fd, block.get(), kBlock, static_cast<off_t>(b * kBlock)),
                static_cast<ssize_t>(kBlock));
    }
    ASSERT_EQ(fsync(fd), 0);
    close(fd);
    fd_ = open(path_.c_str(), O_RDWR | O_DIRECT | O_CLOEXEC);
    if (fd_ < 0 && errno == EINVAL) fd_ = open(path_.c_str(), O_RDWR | O_CLOEXEC);
    ASSERT_GE(fd_, 0) << strerror(errno);
  }
  void TearDown() override {
    if (fd_ >= 0) close(fd_);
    if (!path_.empty()) unlink(path_.c_str());
  }

  bool user_ring() const { return GetParam(); }

  std::unique_ptr<AioQueue> MakeQueue(uint32_t depth) {
    AioQueue::Options options;
    options.depth = depth;
    options.reap_from_user_ring = user_ring();
    absl::StatusOr<std::unique_ptr<AioQueue>> queue =
        AioQueue::Create(options, &Recorder::Record, &recorder_);
    EXPECT_TRUE(queue.ok()) << queue.status();
    if (!queue.ok()) return nullptr;
    EXPECT_EQ((*queue)->reaps_from_user_ring(), user_ring());
    return std::move(*queue);
  }

  // Polls until `count` completions were recorded in all, sleeping on the eventfd in between
  // (so that it is shown to fire). False after 20 s.
  bool WaitForCompletions(AioQueue& queue, size_t count) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (recorder_.done.size() < count) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      if (queue.Poll()) continue;
      pollfd pfd{queue.event_fd(), POLLIN, 0};
      (void)poll(&pfd, 1, 10);
    }
    return true;
  }

  iovec& Iov(size_t i) { return iovs_[i]; }

  std::string path_;
  int fd_ = -1;
  Recorder recorder_;
  std::vector<iovec> iovs_ = std::vector<iovec>(256);
};

TEST_P(AioQueueTest, ABatchGoesToTheKernelInOneSubmit) {
  std::unique_ptr<AioQueue> queue = MakeQueue(128);
  ASSERT_NE(queue, nullptr);
  constexpr size_t kReads = 64;
  AlignedBuffer buffer = Allocate(kReads * kBlock);
  std::vector<iocb> cbs(kReads);
  for (size_t i = 0; i < kReads; ++i) {
    uint64_t block = (i * 37) % kFileBlocks;
    Iov(i) = {buffer.get() + i * kBlock, kBlock};
    io_prep_preadv(&cbs[i], fd_, &Iov(i), 1, static_cast<long long>(block * kBlock));
    cbs[i].data = reinterpret_cast<void*>(block);
    ASSERT_TRUE(queue->Enqueue(cbs[i]));
  }
  EXPECT_EQ(queue->queued(), kReads);
  EXPECT_EQ(queue->SubmitQueued(), kReads);
  EXPECT_EQ(queue->submit_calls(), 1u);
  EXPECT_EQ(queue->queued(), 0u);
  EXPECT_EQ(queue->in_flight(), kReads);
  ASSERT_TRUE(WaitForCompletions(*queue, kReads));
  EXPECT_TRUE(queue->idle());
  std::vector<int> seen(kReads, 0);
  for (const Recorder::Done& done : recorder_.done) {
    size_t i = static_cast<size_t>(done.cb - cbs.data());
    ASSERT_LT(i, kReads);
    ++seen[i];
    EXPECT_EQ(done.res, static_cast<int64_t>(kBlock));
    EXPECT_TRUE(BlockMatches(buffer.get() + i * kBlock, reinterpret_cast<uint64_t>(cbs[i].data)))
        << "read " << i;
  }
  for (size_t i = 0; i < kReads; ++i) EXPECT_EQ(seen[i], 1) << "read " << i;
  // Nothing queued: no syscall.
  EXPECT_EQ(queue->SubmitQueued(), 0u);
  EXPECT_EQ(queue->submit_calls(), 1u);
}

// Thousands of requests through a small queue: the ring's head wraps around its end many
// times, and every completion still arrives once with its own result.
TEST_P(AioQueueTest, TheRingWrapsAround) {
  constexpr uint32_t kDepth = 8;
  std::unique_ptr<AioQueue> queue = MakeQueue(kDepth);
  ASSERT_NE(queue, nullptr);
  AlignedBuffer buffer = Allocate(kDepth * kBlock);
  std::vector<iocb> cbs(kDepth);
  constexpr size_t kTotal = 3000;
  size_t issued = 0;
  std::vector<uint64_t> block_of(kDepth);
  std::vector<bool> busy(kDepth, false);
  size_t checked = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (checked < kTotal) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline);
    for (uint32_t slot = 0; slot < kDepth && issued < kTotal; ++slot) {
      if (busy[slot]) continue;
      block_of[slot] = (issued * 13) % kFileBlocks;
      Iov(slot) = {buffer.get() + slot * kBlock, kBlock};
      io_prep_preadv(&cbs[slot], fd_, &Iov(slot), 1,
                     static_cast<long long>(block_of[slot] * kBlock));
      ASSERT_TRUE(queue->Enqueue(cbs[slot]));
      busy[slot] = true;
      ++issued;
    }
    queue->Poll();
    for (const Recorder::Done& done : recorder_.done) {
      auto slot = static_cast<uint32_t>(done.cb - cbs.data());
      ASSERT_LT(slot, kDepth);
      ASSERT_TRUE(busy[slot]) << "completion of an idle slot";
      ASSERT_EQ(done.res, static_cast<int64_t>(kBlock));
      ASSERT_TRUE(BlockMatches(buffer.get() + slot * kBlock, block_of[slot]));
      busy[slot] = false;
      ++checked;
    }
    recorder_.done.clear();
  }
  EXPECT_TRUE(queue->idle());
}

TEST_P(AioQueueTest, AFullQueueRefusesEnqueue) {
  constexpr uint32_t kDepth = 4;
  std::unique_ptr<AioQueue> queue = MakeQueue(kDepth);
  ASSERT_NE(queue, nullptr);
  AlignedBuffer buffer = Allocate((kDepth + 1) * kBlock);
  std::vector<iocb> cbs(kDepth + 1);
  for (uint32_t i = 0; i <= kDepth; ++i) {
    Iov(i) = {buffer.get() + i * kBlock, kBlock};
    io_prep_preadv(&cbs[i], fd_, &Iov(i), 1, static_cast<long long>(i * kBlock));
  }
  for (uint32_t i = 0; i < kDepth; ++i) ASSERT_TRUE(queue->Enqueue(cbs[i]));
  EXPECT_FALSE(queue->Enqueue(cbs[kDepth]));  // queued ones count
  queue->SubmitQueued();
  EXPECT_FALSE(queue->Enqueue(cbs[kDepth]));  // so do in-flight ones
  ASSERT_TRUE(WaitForCompletions(*queue, kDepth));
  EXPECT_TRUE(queue->Enqueue(cbs[kDepth]));
  ASSERT_TRUE(WaitForCompletions(*queue, kDepth + 1));
  EXPECT_TRUE(BlockMatches(buffer.get() + kDepth * kBlock, kDepth));
}

// io_submit stops at an iocb it refuses: the ones before it are in flight, that one completes
// with its own error, the ones after it are submitted by a further call of the same flush.
TEST_P(AioQueueTest, APartialSubmissionRefusesOnlyTheBadIocb) {
  std::unique_ptr<AioQueue> queue = MakeQueue(16);
  ASSERT_NE(queue, nullptr);
  AlignedBuffer buffer = Allocate(3 * kBlock);
  std::vector<iocb> cbs(3);
  for (int i = 0; i < 3; ++i) {
    Iov(i) = {buffer.get() + i * kBlock, kBlock};
    io_prep_preadv(&cbs[i], i == 1 ? -1 : fd_, &Iov(i), 1, static_cast<long long>(i * kBlock));
    ASSERT_TRUE(queue->Enqueue(cbs[i]));
  }
  EXPECT_EQ(queue->SubmitQueued(), 2u);
  // The first call took one iocb, the second refused the bad one, the third took the rest.
  EXPECT_EQ(queue->submit_calls(), 3u);
  EXPECT_EQ(queue->queued(), 0u);
  EXPECT_EQ(queue->in_flight(), 2u);
  EXPECT_FALSE(queue->idle());
  // The refusal is not completed inside SubmitQueued (it runs in the arm hook too)...
  EXPECT_TRUE(recorder_.done.empty());
  // ...nor may the reactor sleep on it.
  EXPECT_FALSE(queue->Arm());
  ASSERT_TRUE(WaitForCompletions(*queue, 3));
  EXPECT_EQ(recorder_.done[0].cb, &cbs[1]);  // refusals first, at the next reap
  EXPECT_EQ(recorder_.done[0].res, -EBADF);
  for (const Recorder::Done& done : recorder_.done) {
    if (done.cb != &cbs[1]) {
      EXPECT_EQ(done.res, static_cast<int64_t>(kBlock));
    }
  }
  EXPECT_TRUE(BlockMatches(buffer.get(), 0));
  EXPECT_TRUE(BlockMatches(buffer.get() + 2 * kBlock, 2));
  EXPECT_TRUE(queue->idle());
}

// A failure the kernel reports at completion (here O_DIRECT with a misaligned buffer, or the
// read past the end on a buffered file) arrives as the result, and fails nothing else.
TEST_P(AioQueueTest, KernelErrorsArriveAsNegativeErrno) {
  std::unique_ptr<AioQueue> queue = MakeQueue(16);
  ASSERT_NE(queue, nullptr);
  int flags = fcntl(fd_, F_GETFL);
  bool direct = (flags & O_DIRECT) != 0;
  AlignedBuffer buffer = Allocate(3 * kBlock);
  iocb good{};
  iocb bad{};
  Iov(0) = {buffer.get(), kBlock};
  io_prep_preadv(&good, fd_, &Iov(0), 1, 0);
  if (direct) {
    Iov(1) = {buffer.get() + kBlock + 1, kBlock};  // misaligned for O_DIRECT
    io_prep_preadv(&bad, fd_, &Iov(1), 1, 0);
  } else {
    // Without O_DIRECT: a write through a read-only descriptor.
    int ro = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(ro, 0);
    Iov(1) = {buffer.get() + kBlock, kBlock};
    io_prep_pwritev(&bad, ro, &Iov(1), 1, 0);
    close(ro);  // the iocb's fd is now invalid: refused with EBADF at submission
  }
  ASSERT_TRUE(queue->Enqueue(bad));
  ASSERT_TRUE(queue->Enqueue(good));
  queue->SubmitQueued();
  ASSERT_TRUE(WaitForCompletions(*queue, 2));
  for (const Recorder::Done& done : recorder_.done) {
    if (done.cb == &bad) {
      EXPECT_EQ(done.res, direct ? -EINVAL : -EBADF);
    } else {
      EXPECT_EQ(done.res, static_cast<int64_t>(kBlock));
    }
  }
  EXPECT_TRUE(BlockMatches(buffer.get(), 0));
}

// Every iocb carries the eventfd: the kernel adds one per completion.
TEST_P(AioQueueTest, EveryCompletionSignalsTheEventFd) {
  std::unique_ptr<AioQueue> queue = MakeQueue(32);
  ASSERT_NE(queue, nullptr);
  constexpr size_t kReads = 20;
  AlignedBuffer buffer = Allocate(kReads * kBlock);
  std::vector<iocb> cbs(kReads);
  for (size_t i = 0; i < kReads; ++i) {
    Iov(i) = {buffer.get() + i * kBlock, kBlock};
    io_prep_preadv(&cbs[i], fd_, &Iov(i), 1, static_cast<long long>(i * kBlock));
    ASSERT_TRUE(queue->Enqueue(cbs[i]));
  }
  queue->SubmitQueued();
  ASSERT_TRUE(WaitForCompletions(*queue, kReads));
  uint64_t count = 0;
  ASSERT_EQ(read(queue->event_fd(), &count, sizeof(count)), static_cast<ssize_t>(sizeof(count)));
  EXPECT_EQ(count, kReads);
}

// The arm hook: nothing in flight, sleep; queued iocbs are submitted first; a completion
// already in the ring keeps the reactor awake (and is not lost); after reaping, sleep again.
TEST_P(AioQueueTest, ArmSaysWhetherTheReactorMaySleep) {
  std::unique_ptr<AioQueue> queue = MakeQueue(8);
  ASSERT_NE(queue, nullptr);
  EXPECT_TRUE(queue->Arm());
  AlignedBuffer buffer = Allocate(kBlock);
  iocb cb{};
  Iov(0) = {buffer.get(), kBlock};
  io_prep_preadv(&cb, fd_, &Iov(0), 1, 5 * kBlock);
  ASSERT_TRUE(queue->Enqueue(cb));
  bool armed = queue->Arm();
  EXPECT_EQ(queue->queued(), 0u);  // flushed by the arm hook
  EXPECT_EQ(queue->submit_calls(), 1u);
  if (armed) {
    // The reactor would sleep now: the completion must wake it through the eventfd.
    pollfd pfd{queue->event_fd(), POLLIN, 0};
    ASSERT_EQ(poll(&pfd, 1, 20'000), 1);
  } else {
    // Already completed (a fast disk): arming saw it.
    EXPECT_TRUE(recorder_.done.empty());
  }
  // The completion waits in the ring: no sleep until it is reaped.
  EXPECT_FALSE(queue->Arm());
  EXPECT_TRUE(recorder_.done.empty());
  EXPECT_EQ(queue->Reap(), 1u);
  ASSERT_EQ(recorder_.done.size(), 1u);
  EXPECT_EQ(recorder_.done[0].res, static_cast<int64_t>(kBlock));
  EXPECT_TRUE(BlockMatches(buffer.get(), 5));
  EXPECT_TRUE(queue->Arm());
}

// Writes through the queue, read back with plain preadv.
TEST_P(AioQueueTest, WritesWithIovecs) {
  std::unique_ptr<AioQueue> queue = MakeQueue(16);
  ASSERT_NE(queue, nullptr);
  constexpr size_t kWrites = 8;
  AlignedBuffer buffer = Allocate(kWrites * 2 * kBlock);
  std::vector<iocb> cbs(kWrites);
  for (size_t i = 0; i < kWrites; ++i) {
    uint64_t block = 100 + 2 * i;
    FillBlock(buffer.get() + 2 * i * kBlock, block + 1000);
    FillBlock(buffer.get() + (2 * i + 1) * kBlock, block + 1001);
    // Two iovecs per write: one block each.
    Iov(2 * i) = {buffer.get() + 2 * i * kBlock, kBlock};
    Iov(2 * i + 1) = {buffer.get() + (2 * i + 1) * kBlock, kBlock};
    io_prep_pwritev(&cbs[i], fd_, &Iov(2 * i), 2, static_cast<long long>(block * kBlock));
    ASSERT_TRUE(queue->Enqueue(cbs[i]));
  }
  queue->SubmitQueued();
  ASSERT_TRUE(WaitForCompletions(*queue, kWrites));
  for (const Recorder::Done& done : recorder_.done) {
    EXPECT_EQ(done.res, static_cast<int64_t>(2 * kBlock));
  }
  AlignedBuffer check = Allocate(2 * kBlock);
  for (size_t i = 0; i < kWrites; ++i) {
    uint64_t block = 100 + 2 * i;
    ASSERT_EQ(pread(fd_, check.get(), 2 * kBlock, static_cast<off_t>(block * kBlock)),
              static_cast<ssize_t>(2 * kBlock));
    EXPECT_TRUE(BlockMatches(check.get(), block + 1000));
    EXPECT_TRUE(BlockMatches(check.get() + kBlock, block + 1001));
  }
}

INSTANTIATE_TEST_SUITE_P(Reaping, AioQueueTest, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "UserRing" : "IoGetevents";
                         });

}  // namespace
}  // namespace pollux::testing
