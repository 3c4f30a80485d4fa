// The vhost-user initiator against the project's test back-end (test/support): packed and
// split rings, EVENT_IDX and indirect descriptors on and off, 1 and 2 queues, flushes reaching
// a back-end with a write cache, and a back-end that breaks the protocol in each way the test
// back-end can: every case a clear error, no crash, no hang.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ostream>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "bdev_test_env.h"
#include "pollux/bdev/bdev.h"
#include "pollux/env/io_memory.h"
#include "vhost_user_test_backend.h"

namespace pollux::testing {
namespace {

using Fault = VhostUserTestFault;

std::vector<uint8_t> Pattern(size_t len, uint32_t seed) {
  std::vector<uint8_t> data(len);
  std::mt19937 rng(seed);
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  return data;
}

class VirtioBlkBackendTest : public BdevTest {
 protected:
  void SetUp() override {
    BdevTest::SetUp();
    char dir[] = "/tmp/pollux-vhost-test-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    options_.socket_path = dir_ + "/backend.sock";
  }
  void TearDown() override {
    BdevTest::TearDown();
    backend_.reset();
    rmdir(dir_.c_str());
  }

  void StartBackend() {
    backend_ = std::make_unique<VhostUserTestBackend>(options_);
    absl::Status s = backend_->Start();
    ASSERT_TRUE(s.ok()) << s;
  }

  absl::StatusOr<rpc::Json> Attach(bool packed, uint32_t vq_count = 1, uint32_t vq_size = 64) {
    return CallRpc("bdev_virtio_attach_controller", {{"name", "VirtioBlk0"},
                                                     {"trtype", "user"},
                                                     {"traddr", options_.socket_path},
                                                     {"dev_type", "blk"},
                                                     {"vq_count", vq_count},
                                                     {"vq_size", vq_size},
                                                     {"packed_ring", packed}});
  }

  bool BdevGone() {
    return WaitUntil([&] {
      return CallOn(app_thread(), [] { return FindBdev("VirtioBlk0"); }) == nullptr;
    });
  }

  // Writes and reads back sizes from 512 B to 128 KiB through `client`, in random pieces of
  // shared memory, and checks the back-end's disk.
  void RoundTrip(IoClient& client, uint32_t seed) {
    absl::StatusOr<IoMemory> shared = IoMemory::AllocateShared(128 << 10, "test");
    ASSERT_TRUE(shared.ok()) << shared.status();
    std::mt19937_64 rng(seed);
    uint64_t offset = 0;
    for (size_t size : {512u, 4096u, 12288u, 65536u, 131072u}) {
      SCOPED_TRACE(::testing::Message() << size << " bytes");
      std::vector<uint8_t> data = Pattern(size, seed++);
      std::memcpy(shared->data(), data.data(), size);
      std::vector<iovec> iovs = RandomIovecs(shared->data(), size, 16, 512, rng);
      ASSERT_EQ(client.Writev(iovs.data(), static_cast<int>(iovs.size()), offset / 512,
                              size / 512),
                BdevIoStatus::kSuccess);
      std::vector<uint8_t> disk(size);
      ASSERT_TRUE(backend_->ReadDisk(offset, disk));
      EXPECT_EQ(disk, data);
      std::memset(shared->data(), 0, size);
      iovs = RandomIovecs(shared->data(), size, 16, 512, rng);
      ASSERT_EQ(client.Readv(iovs.data(), static_cast<int>(iovs.size()), offset / 512,
                             size / 512),
                BdevIoStatus::kSuccess);
      EXPECT_EQ(std::memcmp(shared->data(), data.data(), size), 0);
      offset += size;
    }
  }

  std::string dir_;
  VhostUserTestBackendOptions options_;
  std::unique_ptr<VhostUserTestBackend> backend_;
};

// (packed ring, EVENT_IDX offered, indirect offered)
class VirtioBlkRingTest : public VirtioBlkBackendTest,
                          public ::testing::WithParamInterface<std::tuple<bool, bool, bool>> {};

TEST_P(VirtioBlkRingTest, DataFlushDiscardAndWriteZeroesOnTwoQueues) {
  const auto [packed, event_idx, indirect] = GetParam();
  options_.offer_packed_ring = packed;
  options_.offer_event_idx = event_idx;
  options_.offer_indirect = indirect;
  options_.num_queues = 2;
  StartBackend();
  // A small ring: chains of 16 segments do not fit beside each other, so they go indirect
  // when offered, and are split by the layer when not.
  absl::StatusOr<rpc::Json> attached = Attach(packed, 2, 16);
  ASSERT_TRUE(attached.ok()) << attached.status();
  Bdev* bdev = FindBdev("VirtioBlk0");
  ASSERT_NE(bdev, nullptr);
  EXPECT_TRUE(bdev->write_cache());
  Thread* second = CreateThread("second", 1);
  {
    IoClient a(app_thread(), "VirtioBlk0");
    IoClient b(second, "VirtioBlk0");
    ASSERT_TRUE(a.ok() && b.ok());
    RoundTrip(a, 1);
    RoundTrip(b, 100);
    EXPECT_GT(backend_->counters().requests_per_queue[0].load(), 0u);
    EXPECT_GT(backend_->counters().requests_per_queue[1].load(), 0u);
    // The write cache is on: FLUSH reaches the back-end.
    const uint64_t flushes = backend_->counters().flushes.load();
    EXPECT_EQ(a.Flush(0, bdev->block_count()), BdevIoStatus::kSuccess);
    EXPECT_EQ(backend_->counters().flushes.load(), flushes + 1);
    // Write-zeroes and discard larger than the back-end's 32 MiB per segment.
    std::vector<uint8_t> ones(4096, 0xee);
    ASSERT_TRUE(backend_->WriteDisk(0, std::vector<uint8_t>(bdev->size_bytes(), 0x11)));
    EXPECT_EQ(a.WriteZeroes(1, bdev->block_count() - 2), BdevIoStatus::kSuccess);
    std::vector<uint8_t> disk(bdev->size_bytes());
    ASSERT_TRUE(backend_->ReadDisk(0, disk));
    EXPECT_EQ(disk[0], 0x11);
    EXPECT_EQ(disk[511], 0x11);
    EXPECT_EQ(disk[512], 0);
    EXPECT_EQ(disk[disk.size() - 513], 0);
    EXPECT_EQ(disk[disk.size() - 512], 0x11);
    EXPECT_EQ(b.Unmap(8, 64), BdevIoStatus::kSuccess);
    EXPECT_GT(backend_->counters().requests_discard.load(), 0u);
  }
  ExitThread(second);
  EXPECT_EQ(backend_->counters().ring_errors.load(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Rings, VirtioBlkRingTest,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool(),
                                            ::testing::Bool()),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) ? "Packed" : "Split") +
                                  (std::get<1>(info.param) ? "EventIdx" : "Flags") +
                                  (std::get<2>(info.param) ? "Indirect" : "Direct");
                         });

TEST_F(VirtioBlkBackendTest, ReadOnlyBackEndRefusesWrites) {
  options_.read_only = true;
  StartBackend();
  ASSERT_TRUE(Attach(false).ok());
  IoClient client(app_thread(), "VirtioBlk0");
  std::vector<uint8_t> data(4096);
  EXPECT_EQ(client.Read(data.data(), 0, 8), BdevIoStatus::kSuccess);
  EXPECT_EQ(client.Write(data.data(), 0, 8), BdevIoStatus::kNotSupported);
  absl::StatusOr<rpc::Json> bdevs = CallRpc("bdev_get_bdevs", {{"name", "VirtioBlk0"}});
  ASSERT_TRUE(bdevs.ok());
  EXPECT_EQ((*bdevs)[0]["driver_specific"]["virtio_blk"]["read_only"], true);
  EXPECT_EQ((*bdevs)[0]["driver_specific"]["virtio_blk"]["serial"], "pollux-vhost-test");
}

// Faults in completions: (fault, packed ring).
class VirtioBlkCompletionFaultTest
    : public VirtioBlkBackendTest,
      public ::testing::WithParamInterface<std::tuple<Fault, bool>> {};

TEST_P(VirtioBlkCompletionFaultTest, FailsTheIoAndStaysSafe) {
  const auto [fault, packed] = GetParam();
  options_.offer_packed_ring = packed;
  options_.fault = fault;
  options_.fault_after = 3;  // GET_ID at attach is request 0
  StartBackend();
  ASSERT_TRUE(Attach(packed).ok());
  {
    IoClient client(app_thread(), "VirtioBlk0");
    ASSERT_TRUE(client.ok());
    std::vector<uint8_t> data(4096, 7);
    int failed = 0;
    for (int i = 0; i < 6; ++i) {
      failed += client.Read(data.data(), static_cast<uint64_t>(i) * 8, 8) != BdevIoStatus::kSuccess;
    }
    EXPECT_TRUE(backend_->fault_fired());
    EXPECT_GE(failed, 1);
    if (fault == Fault::kUsedLenTooLong) {
      // A bogus length fails that request only.
      EXPECT_EQ(failed, 1);
    } else {
      // A used entry for nothing in flight: the queue stops and the bdev goes away.
      EXPECT_TRUE(WaitUntil([&] { return client.remove_events() == 1; }));
    }
  }
  if (fault != Fault::kUsedLenTooLong) {
    EXPECT_TRUE(BdevGone());
  }
}

INSTANTIATE_TEST_SUITE_P(
    Faults, VirtioBlkCompletionFaultTest,
    ::testing::Combine(::testing::Values(Fault::kUsedIdOutOfRange, Fault::kUsedLenTooLong,
                                         Fault::kUsedIdxJump),
                       ::testing::Bool()),
    [](const auto& info) {
      std::string name = VhostUserTestFaultName(std::get<0>(info.param));
      name.erase(std::remove(name.begin(), name.end(), '-'), name.end());
      return name + (std::get<1>(info.param) ? "Packed" : "Split");
    });

// Faults in the handshake: attach fails with a message that says what happened.
struct HandshakeFaultCase {
  Fault fault;
  uint64_t after;
  const char* expected;
  friend void PrintTo(const HandshakeFaultCase& c, std::ostream* os) {
    *os << VhostUserTestFaultName(c.fault) << " after " << c.after;
  }
};

class VirtioBlkHandshakeFaultTest : public VirtioBlkBackendTest,
                                    public ::testing::WithParamInterface<HandshakeFaultCase> {};

TEST_P(VirtioBlkHandshakeFaultTest, AttachFailsClearly) {
  options_.fault = GetParam().fault;
  options_.fault_after = GetParam().after;
  StartBackend();
  absl::StatusOr<rpc::Json> attached = Attach(false);
  ASSERT_FALSE(attached.ok());
  EXPECT_NE(attached.status().message().find(GetParam().expected), std::string::npos)
      << attached.status();
  EXPECT_EQ(FindBdev("VirtioBlk0"), nullptr);
  // Nothing was left behind: a healthy back-end on the same path attaches (the fault fired).
  backend_.reset();
  options_.fault = Fault::kNone;
  StartBackend();
  absl::StatusOr<rpc::Json> again = Attach(false);
  EXPECT_TRUE(again.ok()) << again.status();
}

INSTANTIATE_TEST_SUITE_P(
    Faults, VirtioBlkHandshakeFaultTest,
    ::testing::Values(
        HandshakeFaultCase{Fault::kWrongReplyType, 0, "answered GET_FEATURES with a message of"},
        HandshakeFaultCase{Fault::kWrongReplyType, 4, "with a message of type"},
        HandshakeFaultCase{Fault::kBadReplySize, 0, "carries 12 bytes, expected 8"},
        HandshakeFaultCase{Fault::kCloseDuringHandshake, 0, "closed the connection"},
        HandshakeFaultCase{Fault::kCloseDuringHandshake, 6, "closed the connection"},
        HandshakeFaultCase{Fault::kHang, 3, "it hangs"}),
    [](const auto& info) {
      std::string name = VhostUserTestFaultName(info.param.fault);
      name.erase(std::remove(name.begin(), name.end(), '-'), name.end());
      return name + "After" + std::to_string(info.param.after);
    });

TEST_F(VirtioBlkBackendTest, BackEndClosingMidIoFailsWhatIsInFlight) {
  options_.fault = Fault::kCloseMidIo;
  options_.fault_after = 4;
  options_.completion_delay_us = 2000;
  options_.offer_packed_ring = true;
  StartBackend();
  absl::StatusOr<rpc::Json> attached = Attach(true);
  ASSERT_TRUE(attached.ok()) << attached.status();
  IoClient client(app_thread(), "VirtioBlk0");
  ASSERT_TRUE(client.ok());
  std::vector<uint8_t> data(4096);
  int failed = 0;
  for (int i = 0; i < 8; ++i) {
    failed += client.Read(data.data(), 0, 8) != BdevIoStatus::kSuccess;
  }
  EXPECT_GE(failed, 4);
  EXPECT_TRUE(WaitUntil([&] { return client.remove_events() == 1; }));
  EXPECT_TRUE(backend_->fault_fired());
}

}  // namespace
}  // namespace pollux::testing
