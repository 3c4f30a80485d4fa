// Bdevs that require shared memory (a vhost-user back-end maps their buffers): reads and
// writes from private buffers are bounced through the shared I/O arena, correct both ways;
// buffers from IoMemory::AllocateShared reach the module as they are; the same through
// passthru (which inherits the property) and through a forwarding bdev that does not have it
// (the base bounces in its Forward path); emulated WRITE_ZEROES writes from shared memory; and
// every bounce buffer goes back to the arena.
#include <gtest/gtest.h>
#include <sys/uio.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "bdev_test_env.h"
#include "pollux/bdev_passthru/bdev_passthru.h"
#include "pollux/env/io_memory.h"
#include "pollux/env/shared_io_memory.h"
#include "test_bdev.h"

namespace pollux::testing {
namespace {

constexpr uint32_t kBlock = 512;

// What reached the module: the iovec bases, and whether every iovec lay in the arena.
struct Submitted {
  IoType type;
  bool shared;
  std::vector<const void*> bases;
};

// A TestBdev (RAM behind it, so data can be checked) that records where its buffers lie.
class SharedMemoryBdev final : public TestBdev {
 public:
  using TestBdev::TestBdev;

  void Submit(BdevIo& io) noexcept override {
    Submitted s{io.type(), true, {}};
    for (int i = 0; i < io.iovcnt(); ++i) {
      s.shared &= InSharedIoMemory(io.iovs()[i].iov_base, io.iovs()[i].iov_len);
      s.bases.push_back(io.iovs()[i].iov_base);
    }
    {
      std::lock_guard lock(mutex_);
      submitted_.push_back(std::move(s));
    }
    TestBdev::Submit(io);
  }

  std::vector<Submitted> TakeSubmitted() {
    std::lock_guard lock(mutex_);
    return std::exchange(submitted_, {});
  }

 private:
  std::mutex mutex_;
  std::vector<Submitted> submitted_;
};

std::vector<char> Pattern(size_t size, int seed) {
  std::vector<char> data(size);
  for (size_t i = 0; i < size; ++i) data[i] = static_cast<char>(i * 31 + seed * 7 + 1);
  return data;
}

class BdevSharedMemoryTest : public BdevTest {
 public:  // for ExpectBouncedOnlyWhenPrivate
  // Registers "S", 256 blocks of 512 bytes, requiring shared memory unless told otherwise.
  SharedMemoryBdev* MakeBase(BdevProperties properties = {}) {
    properties.name = "S";
    if (properties.block_count == 0) properties.block_count = 256;
    if (!properties.requires_shared_memory) properties.requires_shared_memory = !plain_;
    return CallOn(app_thread(), [&]() -> SharedMemoryBdev* {
      auto registered = RegisterBdev(std::make_unique<SharedMemoryBdev>(properties));
      return registered.ok() ? static_cast<SharedMemoryBdev*>(*registered) : nullptr;
    });
  }
  // "F", a forwarding bdev over "S" without the property.
  bool MakeForwarder() {
    return CallOn(app_thread(), [&] {
      auto desc = BdevDesc::OpenAndClaim("S", TestBdevModule::Get(), nullptr);
      if (!desc.ok()) return false;
      BdevProperties properties{.name = "F", .block_count = (*desc)->bdev().block_count()};
      return RegisterBdev(std::make_unique<ForwardingBdev>(properties, std::move(*desc))).ok();
    });
  }

  // Writes then reads 8 blocks at `block` of `name` through `write_buf` and `read_buf`
  // (8 blocks each); checks the data on the device and back, and returns what reached `base`.
  std::vector<Submitted> WriteAndReadBack(SharedMemoryBdev* base, const std::string& name,
                                          char* write_buf, char* read_buf, uint64_t block) {
    IoClient client(app_thread(), name);
    base->TakeSubmitted();
    const std::vector<char> data = Pattern(8 * kBlock, static_cast<int>(block));
    std::memcpy(write_buf, data.data(), data.size());
    EXPECT_EQ(client.Write(write_buf, block, 8), BdevIoStatus::kSuccess);
    EXPECT_EQ(std::memcmp(base->data().data() + block * kBlock, data.data(), data.size()), 0);
    std::memset(read_buf, 0, data.size());
    EXPECT_EQ(client.Read(read_buf, block, 8), BdevIoStatus::kSuccess);
    EXPECT_EQ(std::memcmp(read_buf, data.data(), data.size()), 0);
    return base->TakeSubmitted();
  }

  // Whether the arena holds `allocated` bytes again: every bounce buffer freed, and the zero
  // buffer of emulated WRITE_ZEROES too once the channels are gone (at the end of their
  // thread's poll, hence the wait).
  static bool AllReturned(uint64_t allocated) {
    return WaitUntil([allocated] { return SharedIoBytesAllocated() == allocated; });
  }

  bool plain_ = false;  // MakeBase without the property
};

TEST_F(BdevSharedMemoryTest, PrivateBuffersAreBouncedThroughSharedMemoryBothWays) {
  SharedMemoryBdev* base = MakeBase();
  ASSERT_NE(base, nullptr);
  ASSERT_TRUE(base->requires_shared_memory());
  const uint64_t allocated_before = SharedIoBytesAllocated();
  std::vector<char> write_buf(8 * kBlock);
  std::vector<char> read_buf(8 * kBlock);
  std::vector<Submitted> seen = WriteAndReadBack(base, "S", write_buf.data(), read_buf.data(), 10);
  ASSERT_EQ(seen.size(), 2u);
  for (const Submitted& s : seen) {
    EXPECT_TRUE(s.shared);
    ASSERT_EQ(s.bases.size(), 1u);
  }
  EXPECT_NE(seen[0].bases[0], write_buf.data());
  EXPECT_NE(seen[1].bases[0], read_buf.data());
  EXPECT_TRUE(AllReturned(allocated_before));
}

TEST_F(BdevSharedMemoryTest, PrivateIovecsAreGatheredAndScatteredCorrectly) {
  SharedMemoryBdev* base = MakeBase();
  ASSERT_NE(base, nullptr);
  IoClient client(app_thread(), "S");
  const std::vector<char> data = Pattern(4 * kBlock, 5);
  std::vector<char> out(data);
  iovec write_iov[3] = {{out.data(), 700}, {out.data() + 700, 1000}, {out.data() + 1700, 348}};
  EXPECT_EQ(client.Writev(write_iov, 3, 40, 4), BdevIoStatus::kSuccess);
  EXPECT_EQ(std::memcmp(base->data().data() + 40 * kBlock, data.data(), data.size()), 0);
  std::vector<char> back(data.size());
  iovec read_iov[2] = {{back.data(), 1500}, {back.data() + 1500, 548}};
  EXPECT_EQ(client.Readv(read_iov, 2, 40, 4), BdevIoStatus::kSuccess);
  EXPECT_EQ(back, data);
  for (const Submitted& s : base->TakeSubmitted()) {
    EXPECT_TRUE(s.shared);
    EXPECT_EQ(s.bases.size(), 1u);  // one contiguous bounce buffer
  }
}

TEST_F(BdevSharedMemoryTest, SharedBuffersPassUnbounced) {
  SharedMemoryBdev* base = MakeBase();
  ASSERT_NE(base, nullptr);
  absl::StatusOr<IoMemory> memory = IoMemory::AllocateShared(16 * kBlock, "the test");
  ASSERT_TRUE(memory.ok()) << memory.status();
  char* write_buf = reinterpret_cast<char*>(memory->data());
  char* read_buf = write_buf + 8 * kBlock;
  std::vector<Submitted> seen = WriteAndReadBack(base, "S", write_buf, read_buf, 20);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].bases, std::vector<const void*>{write_buf});
  EXPECT_EQ(seen[1].bases, std::vector<const void*>{read_buf});
  // Several iovecs, all shared: as they came.
  IoClient client(app_thread(), "S");
  iovec iov[2] = {{read_buf, 3 * kBlock}, {write_buf, kBlock}};
  EXPECT_EQ(client.Readv(iov, 2, 0, 4), BdevIoStatus::kSuccess);
  seen = base->TakeSubmitted();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].bases, (std::vector<const void*>{read_buf, write_buf}));
}

TEST_F(BdevSharedMemoryTest, OneIovecOutsideMakesTheWholeRequestBounce) {
  SharedMemoryBdev* base = MakeBase();
  ASSERT_NE(base, nullptr);
  absl::StatusOr<IoMemory> memory = IoMemory::AllocateShared(2 * kBlock, "the test");
  ASSERT_TRUE(memory.ok()) << memory.status();
  std::vector<char> private_part(2 * kBlock);
  const std::vector<char> data = Pattern(4 * kBlock, 8);
  std::memcpy(memory->data(), data.data(), 2 * kBlock);
  std::memcpy(private_part.data(), data.data() + 2 * kBlock, 2 * kBlock);
  IoClient client(app_thread(), "S");
  iovec iov[2] = {{memory->data(), 2 * kBlock}, {private_part.data(), 2 * kBlock}};
  EXPECT_EQ(client.Writev(iov, 2, 60, 4), BdevIoStatus::kSuccess);
  EXPECT_EQ(std::memcmp(base->data().data() + 60 * kBlock, data.data(), data.size()), 0);
  std::vector<Submitted> seen = base->TakeSubmitted();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_TRUE(seen[0].shared);
  ASSERT_EQ(seen[0].bases.size(), 1u);
  EXPECT_NE(seen[0].bases[0], memory->data());
}

TEST_F(BdevSharedMemoryTest, SharedButMisalignedBuffersAreBouncedAligned) {
  SharedMemoryBdev* base = MakeBase({.required_alignment = kBlock});
  ASSERT_NE(base, nullptr);
  absl::StatusOr<IoMemory> memory = IoMemory::AllocateShared(20 * kBlock, "the test");
  ASSERT_TRUE(memory.ok()) << memory.status();
  char* odd = reinterpret_cast<char*>(memory->data()) + 1;  // shared, misaligned
  std::vector<Submitted> seen = WriteAndReadBack(base, "S", odd, odd + 9 * kBlock, 30);
  ASSERT_EQ(seen.size(), 2u);
  for (const Submitted& s : seen) {
    EXPECT_TRUE(s.shared);
    ASSERT_EQ(s.bases.size(), 1u);
    EXPECT_NE(s.bases[0], odd);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(s.bases[0]) % kBlock, 0u);
  }
}

TEST_F(BdevSharedMemoryTest, ABdevWithoutThePropertyTakesPrivateBuffersAsTheyAre) {
  plain_ = true;
  SharedMemoryBdev* base = MakeBase();
  ASSERT_NE(base, nullptr);
  std::vector<char> write_buf(8 * kBlock);
  std::vector<char> read_buf(8 * kBlock);
  std::vector<Submitted> seen = WriteAndReadBack(base, "S", write_buf.data(), read_buf.data(), 1);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].bases, std::vector<const void*>{write_buf.data()});
  EXPECT_EQ(seen[1].bases, std::vector<const void*>{read_buf.data()});
}

// Through the upper bdev `name` over `base`: private buffers reach the base bounced into
// shared memory (and every bounce buffer is returned), shared ones as they are.
void ExpectBouncedOnlyWhenPrivate(BdevSharedMemoryTest& test, SharedMemoryBdev* base,
                                  const std::string& name, uint32_t seed) {
  const uint64_t allocated_before = SharedIoBytesAllocated();
  std::vector<char> write_buf(8 * kBlock);
  std::vector<char> read_buf(8 * kBlock);
  std::vector<Submitted> seen =
      test.WriteAndReadBack(base, name, write_buf.data(), read_buf.data(), seed);
  ASSERT_EQ(seen.size(), 2u);
  for (const Submitted& s : seen) EXPECT_TRUE(s.shared);
  EXPECT_NE(seen[0].bases[0], write_buf.data());
  EXPECT_NE(seen[1].bases[0], read_buf.data());
  EXPECT_TRUE(test.AllReturned(allocated_before));

  absl::StatusOr<IoMemory> memory = IoMemory::AllocateShared(16 * kBlock, "the test");
  ASSERT_TRUE(memory.ok()) << memory.status();
  char* shared_write = reinterpret_cast<char*>(memory->data());
  char* shared_read = shared_write + 8 * kBlock;
  seen = test.WriteAndReadBack(base, name, shared_write, shared_read, seed + 10);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].bases, std::vector<const void*>{shared_write});
  EXPECT_EQ(seen[1].bases, std::vector<const void*>{shared_read});
}

TEST_F(BdevSharedMemoryTest, ThroughPassthru) {
  SharedMemoryBdev* base = MakeBase();
  ASSERT_NE(base, nullptr);
  ASSERT_TRUE(CallRpc("bdev_passthru_create", {{"base_bdev_name", "S"}, {"name", "P"}}).ok());
  EXPECT_TRUE(CallOn(app_thread(), [] { return FindBdev("P")->requires_shared_memory(); }));
  ExpectBouncedOnlyWhenPrivate(*this, base, "P", 50);
}

TEST_F(BdevSharedMemoryTest, ThroughAForwardingBdevWithoutTheProperty) {
  SharedMemoryBdev* base = MakeBase();
  ASSERT_NE(base, nullptr);
  ASSERT_TRUE(MakeForwarder());
  EXPECT_FALSE(CallOn(app_thread(), [] { return FindBdev("F")->requires_shared_memory(); }));
  // The base bounces what the forwarder passed down as it came.
  ExpectBouncedOnlyWhenPrivate(*this, base, "F", 70);
}

TEST_F(BdevSharedMemoryTest, EmulatedWriteZeroesWritesFromSharedMemory) {
  SharedMemoryBdev* base = MakeBase();  // no native WRITE_ZEROES: the layer emulates it
  ASSERT_NE(base, nullptr);
  std::memset(base->data().data(), 0x77, base->data().size());
  const uint64_t allocated_before = SharedIoBytesAllocated();
  {
    IoClient client(app_thread(), "S");
    EXPECT_GT(SharedIoBytesAllocated(), allocated_before);  // the channel's zero buffer
    EXPECT_EQ(client.WriteZeroes(16, 32), BdevIoStatus::kSuccess);
  }
  EXPECT_TRUE(AllReturned(allocated_before));  // freed with the last channel
  const char* zeroed = base->data().data() + 16 * kBlock;
  for (uint64_t i = 0; i < 32 * kBlock; ++i) ASSERT_EQ(zeroed[i], 0) << "byte " << i;
  EXPECT_EQ(base->data()[16 * kBlock - 1], 0x77);
  EXPECT_EQ(base->data()[48 * kBlock], 0x77);
  std::vector<Submitted> seen = base->TakeSubmitted();
  ASSERT_FALSE(seen.empty());
  for (const Submitted& s : seen) {
    EXPECT_EQ(s.type, IoType::kWrite);
    EXPECT_TRUE(s.shared);
  }
}

}  // namespace
}  // namespace pollux::testing
