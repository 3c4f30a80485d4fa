// The target's virtqueue processing against a guest the test plays by hand: rings and buffers
// in a fake guest memory of two regions, the driver side written by the initiator's own ring
// classes, requests served from a malloc bdev. Every malformed request the guest may send
// completes with IOERR (or UNSUPP) or stops the queue with one log line, and nothing is read
// or written outside the guest's buffers (the sanitizer build checks that).
#include <gtest/gtest.h>
#include <linux/virtio_blk.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <numeric>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bdev_test_env.h"
#include "device_ring.h"
#include "packed_virtqueue.h"
#include "pollux/bdev/bdev_desc.h"
#include "split_virtqueue.h"
#include "vhost_blk_queue.h"

namespace pollux::testing {
namespace {

constexpr uint32_t kQueueSize = 64;
constexpr uint64_t kRegionBytes = 2 << 20;
// Guest-physical bases of the two regions: the second starts right where the first ends, so
// a buffer may run from one into the other (two host iovecs).
constexpr uint64_t kRegion0 = 0x100000;
constexpr uint64_t kRegion1 = kRegion0 + kRegionBytes;
constexpr uint64_t kDiskBlocks = 2048;  // 1 MiB of 512-byte blocks

struct Buf {
  uint64_t gpa;
  uint32_t len;
  bool device_writes;
};

// Guest memory: two host allocations that the guest sees as one contiguous range, with the
// rings at the start of the first.
class FakeGuest {
 public:
  FakeGuest() : host0_(kRegionBytes + 64), host1_(kRegionBytes + 64) {
    GuestMemoryRegion regions[2] = {{kRegion0, kRegionBytes, Aligned(host0_)},
                                    {kRegion1, kRegionBytes, Aligned(host1_)}};
    memory_ = std::make_shared<const GuestMemory>(regions);
  }
  std::shared_ptr<const GuestMemory> memory() const { return memory_; }
  uint8_t* Host(uint64_t gpa) { return memory_->Translate(gpa, 1); }
  // Ring memory at the start of region 0 (never handed out as a buffer).
  uint8_t* ring_memory() { return Host(kRegion0); }
  // A zeroed buffer in the guest; `at` picks where, for buffers that must cross regions.
  uint64_t Alloc(uint32_t len, std::optional<uint64_t> at = std::nullopt) {
    uint64_t gpa = at.value_or(next_);
    if (!at) next_ += (len + 63) & ~uint64_t{63};
    for (uint32_t i = 0; i < len; ++i) *memory_->Translate(gpa + i, 1) = 0;
    return gpa;
  }
  uint64_t Header(uint32_t type, uint64_t sector) {
    uint64_t gpa = Alloc(16);
    virtio_blk_outhdr h{type, 0, sector};
    std::memcpy(Host(gpa), &h, sizeof(h));
    return gpa;
  }
  uint64_t Status() {
    uint64_t gpa = Alloc(1);
    *Host(gpa) = 0xff;
    return gpa;
  }
  void Fill(uint64_t gpa, uint32_t len, uint8_t seed) {
    for (uint32_t i = 0; i < len; ++i) *Host(gpa + i) = static_cast<uint8_t>(seed + i * 7);
  }
  bool Holds(uint64_t gpa, uint32_t len, uint8_t seed) {
    for (uint32_t i = 0; i < len; ++i) {
      if (*Host(gpa + i) != static_cast<uint8_t>(seed + i * 7)) return false;
    }
    return true;
  }

 private:
  static uint8_t* Aligned(std::vector<uint8_t>& v) {
    auto p = reinterpret_cast<uintptr_t>(v.data());
    return reinterpret_cast<uint8_t*>((p + 63) & ~uintptr_t{63});
  }
  std::vector<uint8_t> host0_;
  std::vector<uint8_t> host1_;
  std::shared_ptr<const GuestMemory> memory_;
  uint64_t next_ = kRegion0 + 64 * 1024;  // after the rings
};

// The driver side of one ring layout, over the fake guest.
template <typename Ring>
struct Driver;

template <>
struct Driver<SplitVirtqueue> {
  static constexpr bool kPacked = false;
  explicit Driver(FakeGuest& guest) : ring(guest.ring_memory(), kQueueSize, true) {}
  void* desc() { return reinterpret_cast<void*>(ring.desc_address()); }
  void* driver_area() { return reinterpret_cast<void*>(ring.avail_address()); }
  void* device_area() { return reinterpret_cast<void*>(ring.used_address()); }
  RingPosition position() { return {}; }
  SplitVirtqueue ring;
};

template <>
struct Driver<PackedVirtqueue> {
  static constexpr bool kPacked = true;
  explicit Driver(FakeGuest& guest) : ring(guest.ring_memory(), kQueueSize, true) {}
  void* desc() { return reinterpret_cast<void*>(ring.desc_address()); }
  void* driver_area() { return reinterpret_cast<void*>(ring.avail_address()); }
  void* device_area() { return reinterpret_cast<void*>(ring.used_address()); }
  // rte_vhost's packed positions: the wrap counter (1 on a fresh ring) in bit 15.
  RingPosition position() { return {1u << 15, 1u << 15}; }
  PackedVirtqueue ring;
};

template <typename Ring>
class VhostBlkQueueTest : public BdevTest {
 protected:
  void SetUp() override {
    BdevTest::SetUp();
    absl::StatusOr<rpc::Json> made = CallRpc(
        "bdev_malloc_create", {{"name", "Malloc0"}, {"num_blocks", kDiskBlocks}, {"block_size", 512}});
    ASSERT_TRUE(made.ok()) << made.status();
    thread_ = CreateThread("vhost-queue", 1);
    driver_ = std::make_unique<Driver<Ring>>(guest_);
    kick_fd_ = eventfd(0, EFD_NONBLOCK);
    call_fd_ = eventfd(0, EFD_NONBLOCK);
  }

  void TearDown() override {
    if (queue_ != nullptr && queue_->running()) Stop();
    RunOn(thread_, [this] {
      queue_.reset();
      desc_.reset();
    });
    ExitThread(thread_);
    close(kick_fd_);
    close(call_fd_);
    BdevTest::TearDown();
  }

  void Start(bool read_only = false) {
    RunOn(thread_, [this, read_only] {
      absl::StatusOr<std::unique_ptr<BdevDesc>> desc =
          BdevDesc::Open("Malloc0", !read_only, [](BdevEvent, Bdev&) {});
      ASSERT_TRUE(desc.ok()) << desc.status();
      desc_ = *std::move(desc);
      VhostBlkQueueSetup setup;
      setup.name = "test queue 0";
      setup.packed = Driver<Ring>::kPacked;
      setup.desc = driver_->desc();
      setup.driver_area = driver_->driver_area();
      setup.device_area = driver_->device_area();
      setup.ring = {kQueueSize, true, true, guest_.memory().get()};
      setup.position = driver_->position();
      setup.kick_fd = kick_fd_;
      setup.call_fd = call_fd_;
      setup.memory = guest_.memory();
      VhostBlkDevice& d = setup.device;
      d.desc = desc_.get();
      d.block_size = 512;
      d.capacity_sectors = kDiskBlocks;
      d.read_only = read_only;
      d.discard = true;
      d.write_zeroes = true;
      d.max_discard_sectors = 1 << 16;
      d.max_write_zeroes_sectors = 1 << 16;
      std::memcpy(d.id, "Malloc0", 7);
      queue_ = std::make_unique<VhostBlkQueue>("test queue 0", thread_);
      absl::Status s = queue_->Start(std::move(setup));
      ASSERT_TRUE(s.ok()) << s;
    });
  }

  RingPosition Stop() {
    std::atomic<bool> done{false};
    RingPosition position;
    RunOn(thread_, [&] {
      queue_->Stop([&](RingPosition p) {
        position = p;
        done = true;
      });
    });
    EXPECT_TRUE(WaitUntil([&] { return done.load(); }));
    return position;
  }

  // Makes one chain available and kicks; returns its id.
  uint16_t Submit(const std::vector<Buf>& bufs) {
    uint16_t id = driver_->ring.AddChain(static_cast<int>(bufs.size()), [&](auto push) {
      for (const Buf& b : bufs) push(b.gpa, b.len, b.device_writes);
    });
    uint64_t one = 1;
    EXPECT_EQ(write(kick_fd_, &one, sizeof(one)), 8);
    return id;
  }

  struct Used {
    uint16_t id;
    uint32_t len;
  };
  // Waits for the next used element (nullopt after a timeout: the queue did not answer).
  std::optional<Used> NextUsed(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    Used used{};
    const char* error = nullptr;
    std::optional<Used> result;
    WaitUntil(
        [&] {
          UsedResult r = driver_->ring.NextUsed(used.id, used.len, error);
          EXPECT_NE(r, UsedResult::kBroken) << error;
          if (r == UsedResult::kUsed) result = used;
          return r != UsedResult::kNone;
        },
        timeout);
    return result;
  }

  // A whole request: header, data buffers, status; returns the status byte (0xff: none came).
  uint8_t Request(uint32_t type, uint64_t sector, std::vector<Buf> data, uint32_t* used_len = nullptr) {
    std::vector<Buf> chain{{guest_.Header(type, sector), 16, false}};
    chain.insert(chain.end(), data.begin(), data.end());
    uint64_t status = guest_.Status();
    chain.push_back({status, 1, true});
    Submit(chain);
    std::optional<Used> used = NextUsed();
    if (!used) return 0xff;
    if (used_len != nullptr) *used_len = used->len;
    return *guest_.Host(status);
  }

  uint64_t Counter(std::atomic<uint64_t> VhostBlkQueueCounters::*field) {
    return (queue_->counters().*field).load();
  }

  FakeGuest guest_;
  std::unique_ptr<Driver<Ring>> driver_;
  Thread* thread_ = nullptr;
  std::unique_ptr<BdevDesc> desc_;
  std::unique_ptr<VhostBlkQueue> queue_;
  int kick_fd_ = -1;
  int call_fd_ = -1;
};

using RingTypes = ::testing::Types<SplitVirtqueue, PackedVirtqueue>;
TYPED_TEST_SUITE(VhostBlkQueueTest, RingTypes);

TYPED_TEST(VhostBlkQueueTest, WritesAndReadsBackThroughAnyLayout) {
  this->Start();
  FakeGuest& g = this->guest_;
  // Data in three buffers, one of them crossing from region 0 into region 1.
  uint64_t a = g.Alloc(1024);
  uint64_t b = g.Alloc(2048, kRegion1 - 1024);
  uint64_t c = g.Alloc(1024, kRegion1 + 1024 * 1024);
  g.Fill(a, 1024, 1);
  g.Fill(b, 2048, 2);
  g.Fill(c, 1024, 3);
  EXPECT_EQ(this->Request(VIRTIO_BLK_T_OUT, 8, {{a, 1024, false}, {b, 2048, false}, {c, 1024, false}}),
            VIRTIO_BLK_S_OK);
  // Read it back into one buffer: it holds the three patterns in order.
  uint64_t r = g.Alloc(4096);
  uint32_t used_len = 0;
  EXPECT_EQ(this->Request(VIRTIO_BLK_T_IN, 8, {{r, 4096, true}}, &used_len), VIRTIO_BLK_S_OK);
  EXPECT_EQ(used_len, 4097u);  // the data and the status byte
  EXPECT_TRUE(g.Holds(r, 1024, 1));
  EXPECT_TRUE(g.Holds(r + 1024, 2048, 2));
  EXPECT_TRUE(g.Holds(r + 3072, 1024, 3));

  // VERSION_1 implies any layout: header and data in one buffer, data and status in one.
  uint64_t merged = g.Alloc(16 + 512);
  virtio_blk_outhdr h{VIRTIO_BLK_T_OUT, 0, 100};
  std::memcpy(g.Host(merged), &h, 16);
  g.Fill(merged + 16, 512, 9);
  uint64_t status = g.Status();
  this->Submit({{merged, 16 + 512, false}, {status, 1, true}});
  ASSERT_TRUE(this->NextUsed());
  EXPECT_EQ(*g.Host(status), VIRTIO_BLK_S_OK);
  uint64_t tail = g.Alloc(512 + 1);
  this->Submit({{g.Header(VIRTIO_BLK_T_IN, 100), 16, false}, {tail, 513, true}});
  ASSERT_TRUE(this->NextUsed());
  EXPECT_EQ(*g.Host(tail + 512), VIRTIO_BLK_S_OK);
  EXPECT_TRUE(g.Holds(tail, 512, 9));
  EXPECT_EQ(this->Counter(&VhostBlkQueueCounters::requests), 4u);
  EXPECT_EQ(this->Counter(&VhostBlkQueueCounters::errors), 0u);
}

TYPED_TEST(VhostBlkQueueTest, MalformedRequestsFailWithIoError) {
  this->Start();
  FakeGuest& g = this->guest_;
  uint64_t buf = g.Alloc(4096);
  // A header shorter than 16 bytes.
  uint64_t status = g.Status();
  this->Submit({{g.Header(VIRTIO_BLK_T_IN, 0), 8, false}, {buf, 512, true}, {status, 1, true}});
  ASSERT_TRUE(this->NextUsed());
  EXPECT_EQ(*g.Host(status), VIRTIO_BLK_S_IOERR);
  // A read into read-only buffers (the data is device-readable).
  EXPECT_EQ(this->Request(VIRTIO_BLK_T_IN, 0, {{buf, 512, false}}), VIRTIO_BLK_S_IOERR);
  // A write from device-writable buffers.
  EXPECT_EQ(this->Request(VIRTIO_BLK_T_OUT, 0, {{buf, 512, true}}), VIRTIO_BLK_S_IOERR);
  // Past the device's end, across it, and a sector that overflows when scaled.
  EXPECT_EQ(this->Request(VIRTIO_BLK_T_IN, kDiskBlocks, {{buf, 512, true}}), VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(this->Request(VIRTIO_BLK_T_IN, kDiskBlocks - 1, {{buf, 1024, true}}), VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(this->Request(VIRTIO_BLK_T_IN, ~uint64_t{0} / 256, {{buf, 512, true}}), VIRTIO_BLK_S_IOERR);
  // A length that is not a whole number of sectors, and none at all.
  EXPECT_EQ(this->Request(VIRTIO_BLK_T_IN, 0, {{buf, 100, true}}), VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(this->Request(VIRTIO_BLK_T_OUT, 0, {}), VIRTIO_BLK_S_IOERR);
  // Unknown request types are unsupported, not errors.
  EXPECT_EQ(this->Request(99, 0, {}), VIRTIO_BLK_S_UNSUPP);
  EXPECT_EQ(this->Request(10 /* GET_LIFETIME */, 0, {{buf, 16, true}}), VIRTIO_BLK_S_UNSUPP);
  // The queue still serves good requests.
  EXPECT_EQ(this->Request(VIRTIO_BLK_T_IN, 0, {{buf, 512, true}}), VIRTIO_BLK_S_OK);
  EXPECT_EQ(this->Counter(&VhostBlkQueueCounters::errors), 10u);
}

TYPED_TEST(VhostBlkQueueTest, DiscardAndWriteZeroesSegmentsAreChecked) {
  this->Start();
  FakeGuest& g = this->guest_;
  uint64_t data = g.Alloc(4096);
  g.Fill(data, 4096, 5);
  ASSERT_EQ(this->Request(VIRTIO_BLK_T_OUT, 16, {{data, 4096, false}}), VIRTIO_BLK_S_OK);
  auto segments = [&](std::vector<virtio_blk_discard_write_zeroes> list) {
    uint64_t gpa = g.Alloc(static_cast<uint32_t>(list.size() * 16));
    std::memcpy(g.Host(gpa), list.data(), list.size() * 16);
    return Buf{gpa, static_cast<uint32_t>(list.size() * 16), false};
  };
  // Write zeroes (with the unmap flag, allowed there) over sectors 18-19 only.
  EXPECT_EQ(this->Request(VIRTIO_BLK_T_WRITE_ZEROES, 0,
                          {segments({{18, 2, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP}})}),
            VIRTIO_BLK_S_OK);
  uint64_t back = g.Alloc(4096);
  ASSERT_EQ(this->Request(VIRTIO_BLK_T_IN, 16, {{back, 4096, true}}), VIRTIO_BLK_S_OK);
  EXPECT_TRUE(g.Holds(back, 1024, 5));
  EXPECT_TRUE(std::all_of(g.Host(back + 1024), g.Host(back + 2048), [](uint8_t v) { return v == 0; }));
  EXPECT_EQ(std::memcmp(g.Host(back + 2048), g.Host(data + 2048), 2048), 0);
  // A discard of a valid range succeeds.
  EXPECT_EQ(this->Request(VIRTIO_BLK_T_DISCARD, 0, {segments({{16, 8, 0}})}), VIRTIO_BLK_S_OK);
  // More segments than advertised (one), reserved flags, the unmap flag on a discard, a
  // payload that is not whole segments, a range past the end, an empty range.
  EXPECT_EQ(this->Request(VIRTIO_BLK_T_DISCARD, 0, {segments({{0, 1, 0}, {8, 1, 0}})}),
            VIRTIO_BLK_S_IOERR);
  // virtio 1.2, 5.2.6.2: an unknown flag is UNSUPP.
  EXPECT_EQ(this->Request(VIRTIO_BLK_T_WRITE_ZEROES, 0, {segments({{0, 1, 0x4}})}),
            VIRTIO_BLK_S_UNSUPP);
  EXPECT_EQ(this->Request(VIRTIO_BLK_T_DISCARD, 0,
                          {segments({{0, 1, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP}})}),
            VIRTIO_BLK_S_UNSUPP);
  EXPECT_EQ(this->Request(VIRTIO_BLK_T_DISCARD, 0, {{data, 8, false}}), VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(this->Request(VIRTIO_BLK_T_DISCARD, 0, {segments({{kDiskBlocks - 1, 2, 0}})}),
            VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(this->Request(VIRTIO_BLK_T_WRITE_ZEROES, 0, {segments({{0, 0, 0}})}),
            VIRTIO_BLK_S_IOERR);
}

TYPED_TEST(VhostBlkQueueTest, FlushAndGetId) {
  this->Start();
  FakeGuest& g = this->guest_;
  EXPECT_EQ(this->Request(VIRTIO_BLK_T_FLUSH, 0, {}), VIRTIO_BLK_S_OK);
  uint64_t id = g.Alloc(VIRTIO_BLK_ID_BYTES);
  uint32_t used_len = 0;
  EXPECT_EQ(this->Request(VIRTIO_BLK_T_GET_ID, 0, {{id, VIRTIO_BLK_ID_BYTES, true}}, &used_len),
            VIRTIO_BLK_S_OK);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(g.Host(id))), "Malloc0");
  EXPECT_EQ(used_len, VIRTIO_BLK_ID_BYTES + 1u);
  // A GET_ID buffer shorter than 20 bytes gets what fits.
  uint64_t small = g.Alloc(4);
  EXPECT_EQ(this->Request(VIRTIO_BLK_T_GET_ID, 0, {{small, 4, true}}), VIRTIO_BLK_S_OK);
  EXPECT_EQ(std::memcmp(g.Host(small), "Mall", 4), 0);
}

TYPED_TEST(VhostBlkQueueTest, ReadOnlyDeviceRefusesWrites) {
  this->Start(/*read_only=*/true);
  FakeGuest& g = this->guest_;
  uint64_t buf = g.Alloc(512);
  EXPECT_EQ(this->Request(VIRTIO_BLK_T_OUT, 0, {{buf, 512, false}}), VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(this->Request(VIRTIO_BLK_T_IN, 0, {{buf, 512, true}}), VIRTIO_BLK_S_OK);
}

TYPED_TEST(VhostBlkQueueTest, ChainWithoutWritableStatusStopsTheQueue) {
  this->Start();
  FakeGuest& g = this->guest_;
  uint64_t buf = g.Alloc(512);
  this->Submit({{g.Header(VIRTIO_BLK_T_OUT, 0), 16, false}, {buf, 512, false}});
  EXPECT_FALSE(this->NextUsed(std::chrono::milliseconds(200)));
  // Stopped: a good request after it is not served either, and stopping still works.
  uint64_t status = g.Status();
  this->Submit({{g.Header(VIRTIO_BLK_T_IN, 0), 16, false}, {buf, 512, true}, {status, 1, true}});
  EXPECT_FALSE(this->NextUsed(std::chrono::milliseconds(200)));
  EXPECT_EQ(*g.Host(status), 0xff);
  this->Stop();
}

TYPED_TEST(VhostBlkQueueTest, BufferOutsideGuestMemoryStopsTheQueue) {
  this->Start();
  FakeGuest& g = this->guest_;
  uint64_t status = g.Status();
  // Runs past the end of region 1 (the last guest byte is kRegion1 + kRegionBytes - 1).
  this->Submit({{g.Header(VIRTIO_BLK_T_IN, 0), 16, false},
                {kRegion1 + kRegionBytes - 256, 512, true},
                {status, 1, true}});
  EXPECT_FALSE(this->NextUsed(std::chrono::milliseconds(200)));
  EXPECT_EQ(*g.Host(status), 0xff);
  this->Stop();
}

TYPED_TEST(VhostBlkQueueTest, IdleQueueParksAndWakesOnTheNextKick) {
  this->Start();
  FakeGuest& g = this->guest_;
  uint64_t buf = g.Alloc(512);
  ASSERT_EQ(this->Request(VIRTIO_BLK_T_IN, 0, {{buf, 512, true}}), VIRTIO_BLK_S_OK);
  // Idle for a while: the queue leaves the polled set and turns kicks on.
  ASSERT_TRUE(WaitUntil([&] { return this->Counter(&VhostBlkQueueCounters::parks) == 1; }));
  const uint64_t polls = this->Counter(&VhostBlkQueueCounters::polls_idle);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(this->Counter(&VhostBlkQueueCounters::polls_idle), polls) << "a parked queue is polled";
  // The next request's kick brings it back.
  EXPECT_EQ(this->Request(VIRTIO_BLK_T_IN, 0, {{buf, 512, true}}), VIRTIO_BLK_S_OK);
  EXPECT_GE(this->Counter(&VhostBlkQueueCounters::kicks), 1u);
  EXPECT_EQ(this->Request(VIRTIO_BLK_T_IN, 0, {{buf, 512, true}}), VIRTIO_BLK_S_OK);
  // Stopping a parked queue works too.
  ASSERT_TRUE(WaitUntil([&] { return this->Counter(&VhostBlkQueueCounters::parks) == 2; }));
  this->Stop();
}

TYPED_TEST(VhostBlkQueueTest, StopReportsWhereTheRingStands) {
  this->Start();
  FakeGuest& g = this->guest_;
  uint64_t buf = g.Alloc(512);
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(this->Request(VIRTIO_BLK_T_IN, 0, {{buf, 512, true}}), VIRTIO_BLK_S_OK);
  }
  RingPosition p = this->Stop();
  if constexpr (!Driver<TypeParam>::kPacked) {
    EXPECT_EQ(p.last_avail_idx, 3u);
    EXPECT_EQ(p.last_used_idx, 3u);
  } else {
    // Three chains of three descriptors, wrap counter still 1.
    EXPECT_EQ(p.last_avail_idx, (1u << 15) | 9u);
    EXPECT_EQ(p.last_used_idx, (1u << 15) | 9u);
  }
  EXPECT_FALSE(this->queue_->running());
}

}  // namespace
}  // namespace pollux::testing
