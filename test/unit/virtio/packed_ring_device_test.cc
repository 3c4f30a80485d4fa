// The device side of packed rings (virtio/device_ring.h) against rings laid out by hand in a fake
// guest memory, and both ring layouts against the project's own driver classes.
#include "device_ring_test_support.h"

namespace pollux {
namespace {

using namespace device_ring_testing;  // NOLINT: the shared fixture's names

struct Buffer {
  uint64_t gpa;
  uint32_t len;
  uint16_t flags;  // kWrite, kIndirect
};

class PackedRingTest : public ::testing::Test {
 public:
  void SetUpRing(uint16_t size, bool event_idx = false, bool indirect = true,
                 uint16_t start = kWrap) {
    size_ = size;
    desc_ = g_.At<vring_packed_desc>(kDescGpa);
    driver_event_ = g_.At<vring_packed_desc_event>(kAvailGpa);
    device_event_ = g_.At<vring_packed_desc_event>(kUsedGpa);
    next_ = start & ~kWrap;
    wrap_ = (start & kWrap) != 0;
    used_next_ = next_;
    used_wrap_ = wrap_;
    device_.emplace(desc_, driver_event_, device_event_,
                    DeviceRingConfig{size, event_idx, indirect, &g_.memory()},
                    RingPosition{start, start});
  }

  // Driver: a chain of consecutive descriptors, each carrying `id` (only the last one's
  // counts; the others get a decoy); the first one's flags are written last.
  void AddChain(std::initializer_list<Buffer> buffers, uint16_t id) {
    AddChain(std::span<const Buffer>(buffers.begin(), buffers.size()), id);
  }
  void AddChain(std::span<const Buffer> buffers, uint16_t id) {
    const uint16_t head = next_;
    uint16_t head_flags = 0;
    size_t k = 0;
    for (const Buffer& b : buffers) {
      const bool last = ++k == buffers.size();
      uint16_t flags = static_cast<uint16_t>(b.flags | (wrap_ ? kAvail : kUsed));
      if (!last) flags |= kNext;
      vring_packed_desc& d = desc_[next_];
      d.addr = b.gpa;
      d.len = b.len;
      d.id = last ? id : 0x7777;
      if (k == 1) {
        head_flags = flags;
      } else {
        d.flags = flags;
      }
      if (++next_ == size_) {
        next_ = 0;
        wrap_ = !wrap_;
      }
    }
    __atomic_store_n(&desc_[head].flags, head_flags, __ATOMIC_RELEASE);
  }
  vring_packed_desc* Table() { return g_.At<vring_packed_desc>(kTableGpa); }
  RingError Pop(int max_iov = kMaxIov) { return device_->Pop(&chain_, iov_.data(), max_iov); }
  // Driver: the used descriptor at its next position, if there is one, and steps over the
  // chain's slots (known to the driver from the id).
  bool DriverSeesUsed(uint16_t slots) {
    const uint16_t flags = desc_[used_next_].flags;
    if (((flags & kAvail) != 0) != used_wrap_ || ((flags & kUsed) != 0) != used_wrap_) {
      return false;
    }
    used_next_ = static_cast<uint16_t>(used_next_ + slots);
    if (used_next_ >= size_) {
      used_next_ = static_cast<uint16_t>(used_next_ - size_);
      used_wrap_ = !used_wrap_;
    }
    return true;
  }
  uint16_t UsedFlags(bool wrap, bool written) const {
    return static_cast<uint16_t>((wrap ? kAvail | kUsed : 0) | (written ? kWrite : 0));
  }

  FakeGuest g_;
  uint16_t size_ = 0;
  vring_packed_desc* desc_ = nullptr;
  vring_packed_desc_event* driver_event_ = nullptr;
  vring_packed_desc_event* device_event_ = nullptr;
  uint16_t next_ = 0;  // driver's next available slot and wrap counter
  bool wrap_ = true;
  uint16_t used_next_ = 0;  // driver's next used slot and wrap counter
  bool used_wrap_ = true;
  std::optional<PackedRingDevice> device_;
  DescriptorChain chain_;
  std::array<iovec, kMaxIov> iov_{};
};

TEST_F(PackedRingTest, SingleDescriptorChain) {
  SetUpRing(8);
  EXPECT_FALSE(device_->HasAvailable());
  AddChain({{kDataGpa, 512, 0}}, 3);
  EXPECT_TRUE(device_->HasAvailable());
  ASSERT_EQ(Pop(), RingError::kNone);
  EXPECT_EQ(Counts(chain_), "id=3 slots=1 iov=1/1 bytes=512/0");
  EXPECT_EQ(iov_[0].iov_base, g_.Host(kDataGpa));
  EXPECT_FALSE(device_->HasAvailable());
  EXPECT_EQ(device_->position().last_avail_idx, kWrap | 1);
}

TEST_F(PackedRingTest, MultiDescriptorChainTakesIdFromLastDescriptor) {
  SetUpRing(8);
  AddChain({{kDataGpa, 16, 0}, {kDataGpa + 0x1000, 4096, kWrite}, {kDataGpa + 0x3000, 1, kWrite}},
           5);
  ASSERT_EQ(Pop(), RingError::kNone);
  EXPECT_EQ(Counts(chain_), "id=5 slots=3 iov=1/3 bytes=16/4097");
  EXPECT_EQ(iov_[2].iov_base, g_.Host(kDataGpa + 0x3000));
  EXPECT_EQ(device_->position().last_avail_idx, kWrap | 3);
}

TEST_F(PackedRingTest, ChainAcrossTheRingEndTogglesTheWrapCounter) {
  SetUpRing(4, false, true, kWrap | 3);
  AddChain({{kDataGpa, 16, 0}, {kDataGpa + 0x100, 8, kWrite}}, 2);  // slots 3 and 0
  ASSERT_EQ(Pop(), RingError::kNone);
  EXPECT_EQ(Counts(chain_), "id=2 slots=2 iov=1/2 bytes=16/8");
  EXPECT_EQ(device_->position().last_avail_idx, 1);  // index 1, wrap 0
  device_->PushUsed(chain_, 8);
  EXPECT_TRUE(device_->PublishUsed());
  EXPECT_EQ(desc_[3].id, 2);
  EXPECT_EQ(desc_[3].len, 8u);
  EXPECT_EQ(desc_[3].flags, UsedFlags(true, true));
  EXPECT_EQ(device_->position().last_used_idx, 1);
  EXPECT_TRUE(DriverSeesUsed(2));
}

TEST_F(PackedRingTest, WrapCounterTogglesRoundAfterRound) {
  SetUpRing(4);
  bool wrap = true;
  for (int round = 0; round < 3; ++round) {
    for (uint16_t id = 0; id < 4; ++id) AddChain({{kDataGpa + id * 0x100, 64, kWrite}}, id);
    for (uint16_t id = 0; id < 4; ++id) {
      ASSERT_TRUE(device_->HasAvailable());
      ASSERT_EQ(Pop(), RingError::kNone);
      EXPECT_EQ(chain_.id, id);
    }
    // The ring's descriptors are this round's, in the previous wrap for the device now.
    EXPECT_FALSE(device_->HasAvailable());
    for (uint16_t id : {2, 0, 3, 1}) device_->PushUsed(id, 1, 10u + id);
    EXPECT_TRUE(device_->PublishUsed());
    const uint16_t order[] = {2, 0, 3, 1};
    for (int slot = 0; slot < 4; ++slot) {
      EXPECT_EQ(desc_[slot].id, order[slot]);
      EXPECT_EQ(desc_[slot].len, 10u + order[slot]);
      EXPECT_EQ(desc_[slot].flags, UsedFlags(wrap, true));
      EXPECT_TRUE(DriverSeesUsed(1));
    }
    EXPECT_FALSE(device_->HasAvailable());  // used descriptors are not available ones
    wrap = !wrap;
    EXPECT_EQ(device_->position().last_avail_idx, wrap ? kWrap : 0);
    EXPECT_EQ(device_->position().last_used_idx, wrap ? kWrap : 0);
  }
}

TEST_F(PackedRingTest, OutOfOrderBatchIsVisibleFromItsFirstDescriptor) {
  SetUpRing(8);
  AddChain({{kDataGpa, 16, 0}, {kDataGpa + 0x100, 1, kWrite}}, 5);                  // slots 0-1
  AddChain({{kDataGpa + 0x200, 16, 0}}, 2);                                         // slot 2
  AddChain({{kDataGpa + 0x300, 16, 0}, {kDataGpa + 0x400, 8, 0}, {0x0, 0, 0}}, 7);  // slots 3-5
  DescriptorChain chains[3];
  for (DescriptorChain& c : chains) {
    ASSERT_EQ(device_->Pop(&c, iov_.data(), kMaxIov), RingError::kNone);
  }
  EXPECT_EQ(chains[2].ring_slots, 3);
  const uint16_t head_flags_before = desc_[0].flags;
  device_->PushUsed(chains[2], 100);  // id 7 at slot 0
  device_->PushUsed(chains[0], 0);    // id 5 at slot 3
  device_->PushUsed(chains[1], 4);    // id 2 at slot 5
  // Before PublishUsed the first used descriptor still reads as the driver left it.
  EXPECT_EQ(desc_[0].flags, head_flags_before);
  EXPECT_FALSE(DriverSeesUsed(3));
  EXPECT_EQ(desc_[3].flags, UsedFlags(true, false));  // no WRITE: nothing written
  EXPECT_EQ(desc_[5].flags, UsedFlags(true, true));
  EXPECT_TRUE(device_->PublishUsed());
  EXPECT_EQ(desc_[0].flags, UsedFlags(true, true));
  EXPECT_EQ(desc_[0].id, 7);
  EXPECT_EQ(desc_[0].len, 100u);
  EXPECT_EQ(desc_[3].id, 5);
  EXPECT_EQ(desc_[3].len, 0u);
  EXPECT_EQ(desc_[5].id, 2);
  EXPECT_EQ(desc_[5].len, 4u);
  EXPECT_TRUE(DriverSeesUsed(3));
  EXPECT_TRUE(DriverSeesUsed(2));
  EXPECT_TRUE(DriverSeesUsed(1));
  EXPECT_EQ(device_->position().last_used_idx, kWrap | 6);
  EXPECT_FALSE(device_->PublishUsed());  // nothing new
}

TEST_F(PackedRingTest, IndirectTable) {
  SetUpRing(8);
  vring_packed_desc* t = Table();
  t[0] = vring_packed_desc{kDataGpa, 16, 0, 0};
  t[1] = vring_packed_desc{kDataGpa + 0x1000, 4096, 0, kWrite};
  t[2] = vring_packed_desc{kDataGpa + 0x3000, 1, 0, kWrite};
  AddChain({{kTableGpa, 3 * sizeof(vring_packed_desc), kIndirect}}, 4);
  ASSERT_EQ(Pop(), RingError::kNone);
  EXPECT_EQ(Counts(chain_), "id=4 slots=1 iov=1/3 bytes=16/4097");
  EXPECT_EQ(iov_[1].iov_base, g_.Host(kDataGpa + 0x1000));
}

TEST_F(PackedRingTest, InterruptsFollowDriverEventFlagsWithoutEventIdx) {
  SetUpRing(8);
  auto complete = [this](uint16_t id) {
    AddChain({{kDataGpa, 8, kWrite}}, id);
    EXPECT_EQ(Pop(), RingError::kNone);
    device_->PushUsed(chain_, 8);
    return device_->PublishUsed();
  };
  driver_event_->flags = VRING_PACKED_EVENT_FLAG_DISABLE;
  EXPECT_FALSE(complete(0));
  driver_event_->flags = VRING_PACKED_EVENT_FLAG_ENABLE;
  EXPECT_TRUE(complete(1));
  driver_event_->flags = VRING_PACKED_EVENT_FLAG_DESC;  // not negotiated: as ENABLE
  driver_event_->off_wrap = kWrap | 7;
  EXPECT_TRUE(complete(2));
}

TEST_F(PackedRingTest, EventIdxInterruptsAtTheDriversDescriptor) {
  SetUpRing(4, /*event_idx=*/true);
  auto complete = [this](std::initializer_list<uint16_t> ids) {
    for (uint16_t id : ids) AddChain({{kDataGpa, 8, kWrite}}, id);
    for (uint16_t id : ids) {
      EXPECT_EQ(Pop(), RingError::kNone);
      device_->PushUsed(id, 1, 8);
    }
    return device_->PublishUsed();
  };
  driver_event_->flags = VRING_PACKED_EVENT_FLAG_DESC;
  driver_event_->off_wrap = kWrap | 3;
  EXPECT_TRUE(complete({0}));  // slot 0: the first decision always interrupts
  driver_event_->off_wrap = kWrap | 2;
  EXPECT_FALSE(complete({1}));  // slot 1
  EXPECT_TRUE(complete({2}));   // slot 2: the one asked for
  driver_event_->off_wrap = 0;  // slot 0 of the next wrap
  EXPECT_FALSE(complete({3}));  // slot 3; the used index wraps
  EXPECT_TRUE(complete({0}));   // slot 0, wrap 0
  driver_event_->off_wrap = 3;  // inside a batch that wraps again: slots 1, 2, 3
  EXPECT_TRUE(complete({1, 2, 3}));
  driver_event_->off_wrap = kWrap | 3;  // slot 3 of wrap 1, not reached by slots 0-1
  EXPECT_FALSE(complete({0, 1}));
  driver_event_->flags = VRING_PACKED_EVENT_FLAG_DISABLE;
  EXPECT_FALSE(complete({2}));
  driver_event_->flags = VRING_PACKED_EVENT_FLAG_ENABLE;
  EXPECT_TRUE(complete({3}));
}

TEST_F(PackedRingTest, NotificationsUseTheDeviceEventStructure) {
  SetUpRing(8);
  device_->DisableNotifications();
  EXPECT_EQ(device_event_->flags, VRING_PACKED_EVENT_FLAG_DISABLE);
  EXPECT_TRUE(device_->EnableNotifications());
  EXPECT_EQ(device_event_->flags, VRING_PACKED_EVENT_FLAG_ENABLE);
  AddChain({{kDataGpa, 8, 0}}, 0);
  EXPECT_FALSE(device_->EnableNotifications());  // a chain arrived: poll again
  device_->DisableNotifications();
  device_->KeepNotificationsOff();
  EXPECT_EQ(device_event_->flags, VRING_PACKED_EVENT_FLAG_DISABLE);
  ASSERT_EQ(Pop(), RingError::kNone);
  EXPECT_TRUE(device_->EnableNotifications());
}

// Packed ring errors, as for the split ring.
struct PackedCase {
  const char* name;
  std::vector<Buffer> chain;  // made available with NEXT on all but the last
  uint16_t id;
  std::vector<vring_packed_desc> table;  // an indirect table at kTableGpa
  RingError error;
  int max_iov = kMaxIov;
  bool indirect = true;
  uint16_t size = 8;
};
void PrintTo(const PackedCase& c, std::ostream* os) { *os << c.name; }

class PackedMalformedChainTest : public PackedRingTest,
                                 public ::testing::WithParamInterface<PackedCase> {};

TEST_P(PackedMalformedChainTest, PopRefusesIt) {
  const PackedCase& c = GetParam();
  SetUpRing(c.size, false, c.indirect);
  for (size_t i = 0; i < c.table.size(); ++i) Table()[i] = c.table[i];
  AddChain(c.chain, c.id);
  ASSERT_TRUE(device_->HasAvailable());
  EXPECT_EQ(Pop(c.max_iov), c.error);
  EXPECT_EQ(device_->position().last_avail_idx, kWrap);
  EXPECT_TRUE(device_->HasAvailable());
}

const Buffer kIn = {kDataGpa, 8, 0};
const Buffer kOut = {kDataGpa, 8, kWrite};
const vring_packed_desc kPackedReadable = {kDataGpa, 8, 0, 0};

const PackedCase kPackedCases[] = {
    {"BadBufferId", {kIn, kOut}, 8, {}, RingError::kBadBufferId},
    // The last descriptor links on too: back to the first.
    {"ChainLongerThanTheRing",
     {kIn, kIn, kIn, {kDataGpa, 8, kNext}},
     1,
     {},
     RingError::kChainTooLong,
     kMaxIov,
     true,
     /*size=*/4},
    // B's end runs into the gap.
    {"BufferOutsideMemory",
     {kIn, {kGpaB + kSizeB - 4, 8, kWrite}},
     1,
     {},
     RingError::kAddressOutsideMemory},
    {"IndirectTableOutsideMemory",
     {{kGap, 32, kIndirect}},
     1,
     {},
     RingError::kAddressOutsideMemory},
    {"IndirectNotNegotiated",
     {{kTableGpa, 16, kIndirect}},
     1,
     {kPackedReadable},
     RingError::kIndirectNotAllowed,
     kMaxIov,
     /*indirect=*/false},
    {"IndirectWithNext",
     {{kTableGpa, 16, kIndirect}, kOut},
     1,
     {kPackedReadable},
     RingError::kIndirectNotAllowed},
    {"IndirectLengthZero", {{kTableGpa, 0, kIndirect}}, 1, {}, RingError::kBadIndirectLength},
    {"IndirectLengthNotMultipleOf16",
     {{kTableGpa, 20, kIndirect}},
     1,
     {},
     RingError::kBadIndirectLength},
    {"IndirectTableLongerThanTheBound",
     {{kTableGpa, kTooLong, kIndirect}},
     1,
     {},
     RingError::kBadIndirectLength},
    {"NestedIndirect",
     {{kTableGpa, 32, kIndirect}},
     1,
     {kPackedReadable, {kTableGpa, 16, 0, kIndirect}},
     RingError::kNestedIndirect},
    {"ReadableAfterWritable", {kOut, kIn}, 1, {}, RingError::kReadableAfterWritable},
    {"ReadableAfterWritableInIndirectTable",
     {{kTableGpa, 32, kIndirect}},
     1,
     {{kDataGpa, 8, 0, kWrite}, kPackedReadable},
     RingError::kReadableAfterWritable},
    {"TooManyIovecs", {kIn, kOut, kOut}, 1, {}, RingError::kTooManyIovecs, /*max_iov=*/2},
};

INSTANTIATE_TEST_SUITE_P(Errors, PackedMalformedChainTest, ::testing::ValuesIn(kPackedCases),
                         [](const auto& info) { return std::string(info.param.name); });

// ---- against the project's driver classes ----

TEST(DeviceRingInteropTest, SplitVirtqueueDriver) {
  FakeGuest g;
  constexpr uint32_t kSize = 16;
  ASSERT_LE(SplitVirtqueue::MemoryBytes(kSize), 0x8000u);
  SplitVirtqueue driver(g.Host(kDescGpa), kSize, /*event_idx=*/true);
  SplitRingDevice device(reinterpret_cast<vring_desc*>(driver.desc_address()),
                         reinterpret_cast<vring_avail*>(driver.avail_address()),
                         reinterpret_cast<vring_used*>(driver.used_address()),
                         DeviceRingConfig{kSize, true, true, &g.memory()}, RingPosition{});
  device.DisableNotifications();
  const uint16_t a = driver.AddChain(3, [](auto push) {
    push(kDataGpa, 16, false);
    push(kDataGpa + 0x1000, 4096, true);
    push(kDataGpa + 0x2000, 1, true);
  });
  const uint16_t b = driver.AddChain(1, [](auto push) { push(kDataGpa + 0x3000, 512, true); });
  EXPECT_FALSE(driver.NeedsKick());  // the device polls
  RingError error = RingError::kNone;
  ASSERT_EQ(device.Available(&error), 2);
  std::array<iovec, kMaxIov> iov{};
  DescriptorChain ca, cb;
  ASSERT_EQ(device.Pop(&ca, iov.data(), kMaxIov), RingError::kNone);
  ASSERT_EQ(device.Pop(&cb, iov.data(), kMaxIov), RingError::kNone);
  EXPECT_EQ(ca.id, a);
  EXPECT_EQ(ca.iov_count, 3);
  EXPECT_EQ(cb.id, b);
  EXPECT_EQ(cb.writable_bytes, 512u);
  device.KeepNotificationsOff();
  device.PushUsed(cb, 512);
  device.PushUsed(ca, 4097);
  EXPECT_TRUE(device.PublishUsed());  // first decision
  uint16_t id = 0;
  uint32_t length = 0;
  const char* what = nullptr;
  ASSERT_EQ(driver.NextUsed(id, length, what), UsedResult::kUsed);
  EXPECT_EQ(id, b);
  EXPECT_EQ(length, 512u);
  ASSERT_EQ(driver.NextUsed(id, length, what), UsedResult::kUsed);
  EXPECT_EQ(id, a);
  EXPECT_EQ(length, 4097u);
  EXPECT_EQ(driver.NextUsed(id, length, what), UsedResult::kNone);
  // The device sleeps; the driver's next chain kicks it, and its completion interrupts once
  // the driver asked for interrupts.
  EXPECT_TRUE(device.EnableNotifications());
  EXPECT_TRUE(driver.EnableInterrupts());
  driver.AddChain(1, [](auto push) { push(kDataGpa, 8, true); });
  EXPECT_TRUE(driver.NeedsKick());
  ASSERT_EQ(device.Pop(&ca, iov.data(), kMaxIov), RingError::kNone);
  device.PushUsed(ca, 8);
  EXPECT_TRUE(device.PublishUsed());
  ASSERT_EQ(driver.NextUsed(id, length, what), UsedResult::kUsed);
  EXPECT_EQ(length, 8u);
  EXPECT_EQ(device.position().last_avail_idx, 3);
  EXPECT_EQ(device.position().last_used_idx, 3);
}

TEST(DeviceRingInteropTest, PackedVirtqueueDriver) {
  FakeGuest g;
  constexpr uint32_t kSize = 8;
  ASSERT_LE(PackedVirtqueue::MemoryBytes(kSize), 0x8000u);
  PackedVirtqueue driver(g.Host(kDescGpa), kSize, /*event_idx=*/true);
  const auto base = static_cast<uint16_t>(PackedVirtqueue::initial_base());
  PackedRingDevice device(reinterpret_cast<vring_packed_desc*>(driver.desc_address()),
                          reinterpret_cast<vring_packed_desc_event*>(driver.avail_address()),
                          reinterpret_cast<vring_packed_desc_event*>(driver.used_address()),
                          DeviceRingConfig{kSize, true, true, &g.memory()},
                          RingPosition{base, base});
  device.DisableNotifications();
  std::array<iovec, kMaxIov> iov{};
  uint16_t id = 0;
  uint32_t length = 0;
  const char* what = nullptr;
  // Four rounds of two 3-descriptor chains on an 8-slot ring: chains start at every other
  // position and two of them run across the ring's end.
  for (int round = 0; round < 4; ++round) {
    uint16_t ids[2];
    for (uint16_t& i : ids) {
      i = driver.AddChain(3, [](auto push) {
        push(kDataGpa, 16, false);
        push(kDataGpa + 0x1000, 4096, true);
        push(kDataGpa + 0x2000, 1, true);
      });
    }
    EXPECT_FALSE(driver.NeedsKick());
    DescriptorChain chains[2];
    for (int k = 0; k < 2; ++k) {
      ASSERT_TRUE(device.HasAvailable());
      ASSERT_EQ(device.Pop(&chains[k], iov.data(), kMaxIov), RingError::kNone);
      EXPECT_EQ(chains[k].id, ids[k]);
      EXPECT_EQ(chains[k].ring_slots, 3);
    }
    EXPECT_FALSE(device.HasAvailable());
    for (int k : {1, 0}) device.PushUsed(chains[k], 100u + k);
    EXPECT_FALSE(device.PublishUsed());  // the driver disabled interrupts
    for (int k : {1, 0}) {
      ASSERT_EQ(driver.NextUsed(id, length, what), UsedResult::kUsed);
      EXPECT_EQ(id, ids[k]);
      EXPECT_EQ(length, 100u + k);
    }
    EXPECT_EQ(driver.NextUsed(id, length, what), UsedResult::kNone);
  }
  // 24 slots on an 8-slot ring: index 0, the wrap counter toggled 3 times (1 -> 0).
  EXPECT_EQ(device.position().last_avail_idx, 0);
  EXPECT_EQ(device.position().last_used_idx, 0);
  EXPECT_TRUE(device.EnableNotifications());
  driver.AddChain(1, [](auto push) { push(kDataGpa, 8, true); });
  EXPECT_TRUE(driver.NeedsKick());
}

}  // namespace
}  // namespace pollux
