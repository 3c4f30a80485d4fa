// What is particular to the uring engine (the conformance suite covers the rest): the probe,
// the ring setup flags this kernel takes (the best set on Linux 6.1 and later), and registered
// buffers: which buffers get a slot, that a slot never outlives its memory, and data through
// READ_FIXED / WRITE_FIXED end to end.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <liburing.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bdev_test_env.h"
#include "file_test_util.h"
#include "pollux/bdev_uring/bdev_uring.h"
#include "pollux/env/io_memory.h"
#include "registered_buffers.h"

namespace pollux::testing {
namespace {

using UringBdevTest = BdevTest;

bool KernelAtLeast(int major, int minor) {
  utsname name{};
  int kmajor = 0, kminor = 0;
  if (uname(&name) != 0 || std::sscanf(name.release, "%d.%d", &kmajor, &kminor) != 2) return false;
  return kmajor > major || (kmajor == major && kminor >= minor);
}

TEST_F(UringBdevTest, ProbeAndSetupFlags) {
  absl::Status probe = CallOn(app_thread(), [] { return ProbeUring(); });
  if (!probe.ok()) GTEST_SKIP() << "io_uring does not work here: " << probe;
  std::string flags = CallOn(app_thread(), [] { return UringSetupFlagNames(); });
  if (KernelAtLeast(6, 1)) {
    EXPECT_EQ(flags, "SINGLE_ISSUER|DEFER_TASKRUN|TASKRUN_FLAG");
  }

  TempDir dir;
  std::string path = dir.File("u.img");
  MakeFile(path, 1024 * 1024, 0);
  ASSERT_TRUE(CallRpc("bdev_uring_create", {{"name", "U0"}, {"filename", path}}).ok());
  absl::StatusOr<rpc::Json> bdevs = CallRpc("bdev_get_bdevs", {{"name", "U0"}});
  ASSERT_TRUE(bdevs.ok());
  const rpc::Json& info = (*bdevs)[0];
  EXPECT_EQ(info["product_name"], "URING bdev");
  EXPECT_EQ(info["driver_specific"]["uring"]["setup_flags"], flags);
  EXPECT_EQ(info["driver_specific"]["uring"]["registered_buffer_ios"], 0);
  EXPECT_TRUE(CallRpc("bdev_uring_delete", {{"name", "U0"}}).ok());
  absl::StatusOr<rpc::Json> again = CallRpc("bdev_uring_delete", {{"name", "U0"}});
  EXPECT_FALSE(again.ok());
}

// A ring of the test's own (on the test thread) and its RegisteredBuffers.
class RegisteredBuffersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(io_uring_queue_init(8, &ring_, 0), 0);
    ring_ready_ = true;
    if (!buffers_.Init(ring_)) GTEST_SKIP() << "no sparse buffer table (Linux < 5.19)";
  }
  void TearDown() override {
    if (ring_ready_) io_uring_queue_exit(&ring_);
  }

  // Reads `len` bytes at `offset` of `fd` into `buf` through the ring, by slot when `slot` >= 0.
  int Read(int fd, void* buf, unsigned len, uint64_t offset, int slot) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (slot >= 0) {
      io_uring_prep_read_fixed(sqe, fd, buf, len, offset, slot);
    } else {
      io_uring_prep_read(sqe, fd, buf, len, offset);
    }
    io_uring_cqe* cqe = nullptr;
    if (io_uring_submit_and_wait(&ring_, 1) < 0 || io_uring_wait_cqe(&ring_, &cqe) != 0) return -1;
    int res = cqe->res;
    io_uring_cqe_seen(&ring_, cqe);
    return res;
  }

  io_uring ring_{};
  bool ring_ready_ = false;
  RegisteredBuffers buffers_;
};

TEST_F(RegisteredBuffersTest, OnlyBuffersInsideAnIoRegionGetASlot) {
  constexpr uint64_t kSize = 4 << 20;
  absl::StatusOr<IoMemory> memory = IoMemory::Allocate(kSize, "test");
  ASSERT_TRUE(memory.ok()) << memory.status();
  uint8_t* data = memory->data();
  EXPECT_EQ(buffers_.registered(), 0u);  // nothing is pinned before a request uses it
  const int slot = buffers_.Find(ring_, data + 8192, 4096);
  EXPECT_GE(slot, 0);
  EXPECT_EQ(buffers_.registered(), 1u);
  EXPECT_EQ(buffers_.Find(ring_, data, kSize), slot);  // the same piece, not registered again
  EXPECT_EQ(buffers_.registered(), 1u);

  AlignedBuffer plain(4096);
  EXPECT_EQ(buffers_.Find(ring_, plain.data(), 4096), -1);
  // Past the region's end (it is whole 2 MiB pages without hugepages: find its real end).
  uint64_t generation = 0;
  uintptr_t end = 0;
  for (const IoRegionSpan& span : IoRegionsSnapshot(generation)) {
    if (span.begin == reinterpret_cast<uintptr_t>(data)) end = span.end;
  }
  ASSERT_NE(end, 0u);
  EXPECT_EQ(buffers_.Find(ring_, reinterpret_cast<void*>(end - 2048), 4096), -1);
  EXPECT_EQ(buffers_.registered(), 1u);
}

TEST_F(RegisteredBuffersTest, ASlotNeverOutlivesItsMemory) {
  TempDir dir;
  std::string path = dir.File("r.img");
  std::vector<uint8_t> contents = MakeFile(path, 1 << 20, 7);
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);

  constexpr uint64_t kSize = 2 << 20;
  absl::StatusOr<IoMemory> memory = IoMemory::Allocate(kSize, "test");
  ASSERT_TRUE(memory.ok()) << memory.status();
  uint8_t* data = memory->data();
  int slot = buffers_.Find(ring_, data, 4096);
  ASSERT_GE(slot, 0);
  ASSERT_EQ(Read(fd, data, 4096, 4096, slot), 4096);
  EXPECT_EQ(std::memcmp(data, contents.data() + 4096, 4096), 0);

  // The memory goes back and other memory comes to the same address: the next lookup must not
  // answer the old slot, whose pages the ring still holds.
  *memory = IoMemory();
  void* again = mmap(data, kSize, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (again != static_cast<void*>(data)) {
    if (again != MAP_FAILED) munmap(again, kSize);
    close(fd);
    GTEST_SKIP() << "the address was taken again before the test could map it";
  }
  EXPECT_EQ(buffers_.Find(ring_, data, 4096), -1);
  EXPECT_EQ(buffers_.registered(), 0u);
  ASSERT_EQ(Read(fd, data, 4096, 8192, -1), 4096);
  EXPECT_EQ(std::memcmp(data, contents.data() + 8192, 4096), 0);
  munmap(again, kSize);
  close(fd);
}

// Reads and writes through the uring bdev into IoMemory (so READ_FIXED / WRITE_FIXED), batched
// so that they overlap and take the ring, checked against the file.
TEST_F(UringBdevTest, DataThroughRegisteredBuffers) {
  absl::Status probe = CallOn(app_thread(), [] { return ProbeUring(); });
  if (!probe.ok()) GTEST_SKIP() << "io_uring does not work here: " << probe;
  TempDir dir;
  std::string path = dir.File("f.img");
  constexpr uint64_t kBlock = 4096;
  constexpr int kRequests = 32;
  std::vector<uint8_t> contents = MakeFile(path, 256 * kBlock, 11);
  ASSERT_TRUE(
      CallRpc("bdev_uring_create", {{"name", "U0"}, {"filename", path}, {"block_size", kBlock}})
          .ok());
  absl::StatusOr<IoMemory> memory = IoMemory::Allocate(kRequests * kBlock, "test");
  ASSERT_TRUE(memory.ok()) << memory.status();
  uint8_t* data = memory->data();
  {
    Thread* io_thread = CreateThread("io", 1);
    IoClient client(io_thread, "U0");
    ASSERT_TRUE(client.ok());
    std::vector<BatchOp> writes(kRequests);
    for (int i = 0; i < kRequests; ++i) {
      std::memset(data + i * kBlock, 0x40 + i, kBlock);
      writes[i].type = IoType::kWrite;
      writes[i].offset_blocks = 2 * i + 1;
      writes[i].num_blocks = 1;
      writes[i].iovs = {{data + i * kBlock, kBlock}};
      std::memset(contents.data() + (2 * i + 1) * kBlock, 0x40 + i, kBlock);
    }
    ASSERT_TRUE(RunBatch(client, writes));
    for (const BatchOp& op : writes) EXPECT_EQ(op.status, BdevIoStatus::kSuccess);
    std::memset(data, 0, kRequests * kBlock);
    std::vector<BatchOp> reads(kRequests);
    for (int i = 0; i < kRequests; ++i) {
      reads[i].type = IoType::kRead;
      reads[i].offset_blocks = 2 * i;  // every other block: the written ones and the ones between
      reads[i].num_blocks = 1;
      reads[i].iovs = {{data + i * kBlock, kBlock}};
    }
    ASSERT_TRUE(RunBatch(client, reads));
    for (int i = 0; i < kRequests; ++i) {
      EXPECT_EQ(reads[i].status, BdevIoStatus::kSuccess);
      EXPECT_EQ(std::memcmp(data + i * kBlock, contents.data() + 2 * i * kBlock, kBlock), 0) << i;
    }
  }
  EXPECT_EQ(ReadWholeFile(path), contents);
  // They went by READ_FIXED / WRITE_FIXED: all but the lone first of each batch, which may
  // take the inline path (the adaptive depth-1 choice).
  absl::StatusOr<rpc::Json> bdevs = CallRpc("bdev_get_bdevs", {{"name", "U0"}});
  ASSERT_TRUE(bdevs.ok());
  EXPECT_GE((*bdevs)[0]["driver_specific"]["uring"]["registered_buffer_ios"].get<uint64_t>(),
            2u * (kRequests - 1));
  EXPECT_TRUE(CallRpc("bdev_uring_delete", {{"name", "U0"}}).ok());
}

}  // namespace
}  // namespace pollux::testing
