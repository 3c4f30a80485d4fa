// The device side of split rings (virtio/device_ring.h), and guest memory translation, against
// rings laid out by hand in a fake guest memory: the test plays the driver with raw writes, so
// that malformed chains can be made.
#include "device_ring_test_support.h"

namespace pollux {
namespace {

using namespace device_ring_testing;  // NOLINT: the shared fixture's names

// ---- GuestMemory ----

TEST(GuestMemoryTest, RegionsAreSortedByGuestAddress) {
  FakeGuest g;
  ASSERT_EQ(g.memory().regions().size(), 3u);
  EXPECT_EQ(g.memory().regions()[0].guest_phys_addr, kGpaA);
  EXPECT_EQ(g.memory().regions()[1].guest_phys_addr, kGpaB);
  EXPECT_EQ(g.memory().regions()[2].guest_phys_addr, kGpaC);
}

TEST(GuestMemoryTest, EmptyAndOverflowingRegionsAreLeftOut) {
  uint8_t byte = 0;
  const GuestMemoryRegion regions[] = {
      {0x1000, 0, &byte}, {UINT64_MAX - 10, 100, &byte}, {0x2000, 1, &byte}};
  GuestMemory memory(regions);
  ASSERT_EQ(memory.regions().size(), 1u);
  EXPECT_EQ(memory.regions()[0].guest_phys_addr, 0x2000u);
  EXPECT_EQ(memory.Translate(0x2000, 1), &byte);
  EXPECT_EQ(memory.Translate(UINT64_MAX - 5, 1), nullptr);
}

TEST(GuestMemoryTest, TranslatesOnlyRangesInsideOneRegion) {
  FakeGuest g;
  const GuestMemory& m = g.memory();
  EXPECT_EQ(m.Translate(kGpaA, 16), g.Host(kGpaA));
  EXPECT_EQ(m.Translate(kGpaB + 8, 8), g.Host(kGpaB + 8));
  EXPECT_EQ(m.Translate(kGpaC + 100, 50), g.Host(kGpaC + 100));
  EXPECT_EQ(m.Translate(kGpaC + kSizeC - 8, 8), g.Host(kGpaC + kSizeC - 8));
  EXPECT_EQ(m.Translate(kGpaA + kSizeA - 8, 16), nullptr);  // into B: two regions
  EXPECT_EQ(m.Translate(kGpaC + kSizeC - 4, 8), nullptr);   // past C's end
  EXPECT_EQ(m.Translate(kGpaA - 1, 1), nullptr);            // below A
  EXPECT_EQ(m.Translate(kGap, 1), nullptr);                 // in the gap
  EXPECT_EQ(m.Translate(kGpaA, 0), nullptr);                // length 0
  EXPECT_EQ(m.Translate(kGpaC + 8, UINT64_MAX), nullptr);   // gpa + len overflows
  EXPECT_EQ(m.Translate(UINT64_MAX - 3, 8), nullptr);
}

TEST(GuestMemoryTest, AppendIovecsSplitsAcrossAdjacentRegions) {
  FakeGuest g;
  std::array<iovec, 4> iov{};
  int count = 1;  // appends after what is there
  ASSERT_TRUE(g.memory().AppendIovecs(kGpaA + kSizeA - 100, 300, iov.data(), 4, &count));
  ASSERT_EQ(count, 3);
  EXPECT_EQ(iov[1].iov_base, g.Host(kGpaA + kSizeA - 100));
  EXPECT_EQ(iov[1].iov_len, 100u);
  EXPECT_EQ(iov[2].iov_base, g.Host(kGpaB));
  EXPECT_EQ(iov[2].iov_len, 200u);
}

TEST(GuestMemoryTest, AppendIovecsRefusesGapsLengthZeroAndFullArrays) {
  FakeGuest g;
  std::array<iovec, 4> iov{};
  int count = 0;
  // B's end runs into the gap: the part inside B stays appended, count says so.
  EXPECT_FALSE(g.memory().AppendIovecs(kGpaB + kSizeB - 10, 20, iov.data(), 4, &count));
  EXPECT_EQ(count, 1);
  count = 0;
  EXPECT_FALSE(g.memory().AppendIovecs(kGpaC, 0, iov.data(), 4, &count));
  EXPECT_EQ(count, 0);
  count = 3;  // room for one iovec, the range needs two
  EXPECT_FALSE(g.memory().AppendIovecs(kGpaA + kSizeA - 10, 20, iov.data(), 4, &count));
  EXPECT_EQ(count, 4);
}

TEST(RingErrorTextTest, EveryErrorHasItsOwnText) {
  std::set<std::string> texts;
  for (int e = 0; e <= static_cast<int>(RingError::kBadBufferId); ++e) {
    const std::string text = RingErrorText(static_cast<RingError>(e));
    EXPECT_FALSE(text.empty());
    EXPECT_NE(text, "unknown ring error");
    texts.insert(text);
  }
  EXPECT_EQ(texts.size(), static_cast<size_t>(RingError::kBadBufferId) + 1);
}

// ---- split ring ----

// Members public: the error cases' lay-out functions use them.
class SplitRingTest : public ::testing::Test {
 public:
  void SetUpRing(uint16_t size, bool event_idx = false, bool indirect = true, uint16_t start = 0) {
    size_ = size;
    desc_ = g_.At<vring_desc>(kDescGpa);
    avail_ = g_.At<vring_avail>(kAvailGpa);
    used_ = g_.At<vring_used>(kUsedGpa);
    avail_->idx = start;
    used_->idx = start;
    next_avail_ = start;
    device_.emplace(desc_, avail_, used_, DeviceRingConfig{size, event_idx, indirect, &g_.memory()},
                    RingPosition{start, start});
  }

  void SetDesc(uint16_t i, uint64_t gpa, uint32_t len, uint16_t flags, uint16_t next = 0) {
    desc_[i] = vring_desc{gpa, len, flags, next};
  }
  static void SetEntry(vring_desc* table, uint16_t i, uint64_t gpa, uint32_t len, uint16_t flags,
                       uint16_t next = 0) {
    table[i] = vring_desc{gpa, len, flags, next};
  }
  vring_desc* Table(uint64_t gpa = kTableGpa) { return g_.At<vring_desc>(gpa); }

  // Driver: makes the chain at `head` available.
  void Publish(uint16_t head) {
    avail_->ring[next_avail_ & (size_ - 1)] = head;
    avail_->idx = ++next_avail_;
  }
  uint16_t Available() {
    RingError error = RingError::kNone;
    const uint16_t n = device_->Available(&error);
    EXPECT_EQ(error, RingError::kNone);
    return n;
  }
  RingError Pop(int max_iov = kMaxIov) { return device_->Pop(&chain_, iov_.data(), max_iov); }
  // Publishes a one-descriptor chain at `head` and pops it.
  void PopOne(uint16_t head) {
    SetDesc(head, kDataGpa + head * 0x100, 16, kWrite);
    Publish(head);
    ASSERT_EQ(Pop(), RingError::kNone);
    ASSERT_EQ(chain_.id, head);
  }
  uint16_t& used_event() { return avail_->ring[size_]; }
  uint16_t& avail_event() {
    return *reinterpret_cast<uint16_t*>(g_.Host(kUsedGpa) + offsetof(vring_used, ring) +
                                        sizeof(vring_used_elem) * size_);
  }
  // Whether a driver that just moved avail->idx from old to new would kick (2.7.10).
  bool DriverWouldKick(uint16_t old_idx, uint16_t new_idx) {
    return vring_need_event(avail_event(), new_idx, old_idx) != 0;
  }

  FakeGuest g_;
  uint16_t size_ = 0;
  vring_desc* desc_ = nullptr;
  vring_avail* avail_ = nullptr;
  vring_used* used_ = nullptr;
  uint16_t next_avail_ = 0;
  std::optional<SplitRingDevice> device_;
  DescriptorChain chain_;
  std::array<iovec, kMaxIov> iov_{};
};

TEST_F(SplitRingTest, SingleReadableDescriptor) {
  SetUpRing(8);
  EXPECT_EQ(Available(), 0);
  SetDesc(3, kDataGpa, 512, 0);
  Publish(3);
  EXPECT_EQ(Available(), 1);
  ASSERT_EQ(Pop(), RingError::kNone);
  EXPECT_EQ(Counts(chain_), "id=3 slots=1 iov=1/1 bytes=512/0");
  EXPECT_EQ(iov_[0].iov_base, g_.Host(kDataGpa));
  EXPECT_EQ(iov_[0].iov_len, 512u);
  EXPECT_EQ(Available(), 0);
  EXPECT_EQ(device_->position().last_avail_idx, 1);
}

TEST_F(SplitRingTest, ReadableThenWritableChainInAnyTableOrder) {
  SetUpRing(8);
  // A blk request: header (readable), data (writable), status (writable); links 5 -> 2 -> 7.
  SetDesc(5, kDataGpa, 16, kNext, 2);
  SetDesc(2, kDataGpa + 0x1000, 4096, kNext | kWrite, 7);
  SetDesc(7, kDataGpa + 0x3000, 1, kWrite);
  Publish(5);
  ASSERT_EQ(Pop(), RingError::kNone);
  EXPECT_EQ(Counts(chain_), "id=5 slots=1 iov=1/3 bytes=16/4097");
  EXPECT_EQ(iov_[0].iov_base, g_.Host(kDataGpa));
  EXPECT_EQ(iov_[1].iov_base, g_.Host(kDataGpa + 0x1000));
  EXPECT_EQ(iov_[1].iov_len, 4096u);
  EXPECT_EQ(iov_[2].iov_base, g_.Host(kDataGpa + 0x3000));
  EXPECT_EQ(iov_[2].iov_len, 1u);
}

TEST_F(SplitRingTest, BufferAcrossAdjacentRegionsTakesTwoIovecs) {
  SetUpRing(8);
  SetDesc(0, kGpaA + kSizeA - 0x200, 0x1000, kWrite);
  Publish(0);
  ASSERT_EQ(Pop(), RingError::kNone);
  EXPECT_EQ(Counts(chain_), "id=0 slots=1 iov=0/2 bytes=0/4096");
  EXPECT_EQ(iov_[0].iov_base, g_.Host(kGpaA + kSizeA - 0x200));
  EXPECT_EQ(iov_[0].iov_len, 0x200u);
  EXPECT_EQ(iov_[1].iov_base, g_.Host(kGpaB));
  EXPECT_EQ(iov_[1].iov_len, 0xe00u);
}

TEST_F(SplitRingTest, ZeroLengthDescriptorTakesNoIovec) {
  SetUpRing(8);
  SetDesc(0, kDataGpa, 16, kNext, 1);
  SetDesc(1, kGap, 0, kNext | kWrite, 2);  // length 0: not even its address is looked at
  SetDesc(2, kDataGpa + 0x100, 1, kWrite);
  Publish(0);
  ASSERT_EQ(Pop(), RingError::kNone);
  EXPECT_EQ(Counts(chain_), "id=0 slots=1 iov=1/2 bytes=16/1");
  EXPECT_EQ(iov_[1].iov_base, g_.Host(kDataGpa + 0x100));
}

TEST_F(SplitRingTest, ChainOfExactlyQueueSizeDescriptors) {
  SetUpRing(4);
  for (uint16_t i = 0; i < 4; ++i) {
    SetDesc(i, kDataGpa + i * 0x100, 8, i < 3 ? kNext : 0, static_cast<uint16_t>(i + 1));
  }
  Publish(0);
  ASSERT_EQ(Pop(), RingError::kNone);
  EXPECT_EQ(Counts(chain_), "id=0 slots=1 iov=4/4 bytes=32/0");
}

TEST_F(SplitRingTest, IndirectTable) {
  SetUpRing(8);
  vring_desc* t = Table();
  SetEntry(t, 0, kDataGpa, 16, kNext, 1);
  SetEntry(t, 1, kDataGpa + 0x1000, 8192, kNext | kWrite, 2);
  SetEntry(t, 2, kDataGpa + 0x4000, 1, kWrite);
  SetDesc(6, kTableGpa, 3 * sizeof(vring_desc), kIndirect | kWrite);  // WRITE here is ignored
  Publish(6);
  ASSERT_EQ(Pop(), RingError::kNone);
  EXPECT_EQ(Counts(chain_), "id=6 slots=1 iov=1/3 bytes=16/8193");
  EXPECT_EQ(iov_[1].iov_base, g_.Host(kDataGpa + 0x1000));
}

TEST_F(SplitRingTest, DirectDescriptorsThenIndirectTable) {
  // 2.7.5.3.2: zero or more direct descriptors followed by one indirect one is valid.
  SetUpRing(8);
  vring_desc* t = Table();
  SetEntry(t, 0, kDataGpa + 0x1000, 512, kWrite, 1);  // next without NEXT: ignored
  SetDesc(1, kDataGpa, 16, kNext, 4);
  SetDesc(4, kTableGpa, sizeof(vring_desc), kIndirect);
  Publish(1);
  ASSERT_EQ(Pop(), RingError::kNone);
  EXPECT_EQ(Counts(chain_), "id=1 slots=1 iov=1/2 bytes=16/512");
  EXPECT_EQ(iov_[1].iov_base, g_.Host(kDataGpa + 0x1000));
}

TEST_F(SplitRingTest, IndirectTableAcrossAdjacentRegions) {
  SetUpRing(8);
  const uint64_t table = kGpaA + kSizeA - 2 * sizeof(vring_desc);  // two entries in A, two in B
  ASSERT_EQ(g_.memory().Translate(table, 4 * sizeof(vring_desc)), nullptr);
  for (uint16_t i = 0; i < 4; ++i) {
    const uint64_t gpa = table + i * sizeof(vring_desc);
    *g_.At<vring_desc>(gpa) =
        vring_desc{kDataGpa + i * 0x100, 100u + i, static_cast<uint16_t>(i < 3 ? kNext : 0),
                   static_cast<uint16_t>(i + 1)};
  }
  SetDesc(0, table, 4 * sizeof(vring_desc), kIndirect);
  Publish(0);
  ASSERT_EQ(Pop(), RingError::kNone);
  EXPECT_EQ(Counts(chain_), "id=0 slots=1 iov=4/4 bytes=406/0");
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(iov_[i].iov_base, g_.Host(kDataGpa + i * 0x100));
    EXPECT_EQ(iov_[i].iov_len, 100u + i);
  }
}

TEST_F(SplitRingTest, IndirectTableOfMaxEntriesOnASmallRing) {
  // A small ring still takes a table of kMaxIndirectEntries (a guest sizes tables by request).
  SetUpRing(8);
  Table()[0] = vring_desc{kDataGpa, 64, 0, 0};
  SetDesc(0, kTableGpa, kMaxIndirectEntries * sizeof(vring_desc), kIndirect);
  Publish(0);
  ASSERT_EQ(Pop(), RingError::kNone);
  EXPECT_EQ(Counts(chain_), "id=0 slots=1 iov=1/1 bytes=64/0");
}

TEST_F(SplitRingTest, IndexesWrapPast65535) {
  SetUpRing(8, false, true, 65530);
  uint16_t used = 65530;
  for (int round = 0; round < 3; ++round) {
    for (uint16_t head = 0; head < 5; ++head) {
      SetDesc(head, kDataGpa + head * 0x100, 32, kWrite);
      Publish(head);
    }
    EXPECT_EQ(Available(), 5);
    for (uint16_t head = 0; head < 5; ++head) {
      ASSERT_EQ(Pop(), RingError::kNone);
      EXPECT_EQ(chain_.id, head);
    }
    EXPECT_EQ(Available(), 0);
    for (int k = 4; k >= 0; --k) device_->PushUsed(static_cast<uint16_t>(k), 1, 10u + k);
    EXPECT_TRUE(device_->PublishUsed());
    for (int k = 0; k < 5; ++k) {
      const vring_used_elem& e = used_->ring[static_cast<uint16_t>(used + k) & 7];
      EXPECT_EQ(e.id, 4u - k);
      EXPECT_EQ(e.len, 14u - k);
    }
    used = static_cast<uint16_t>(used + 5);
    EXPECT_EQ(used_->idx, used);
  }
  EXPECT_EQ(used_->idx, 9);  // 65530 + 15 - 65536
  EXPECT_EQ(device_->position().last_avail_idx, 9);
  EXPECT_EQ(device_->position().last_used_idx, 9);
}

TEST_F(SplitRingTest, OutOfOrderCompletionsInOneBatch) {
  SetUpRing(8);
  for (uint16_t head : {4, 1, 6}) PopOne(head);
  device_->PushUsed(6, 1, 600);
  device_->PushUsed(4, 1, 400);
  // Not visible before PublishUsed.
  EXPECT_EQ(used_->idx, 0);
  EXPECT_EQ(device_->position().last_used_idx, 0);
  DescriptorChain one;
  one.id = 1;
  one.ring_slots = 1;
  device_->PushUsed(one, 100);
  EXPECT_TRUE(device_->PublishUsed());
  EXPECT_EQ(used_->idx, 3);
  EXPECT_EQ(used_->ring[0].id, 6u);
  EXPECT_EQ(used_->ring[0].len, 600u);
  EXPECT_EQ(used_->ring[1].id, 4u);
  EXPECT_EQ(used_->ring[1].len, 400u);
  EXPECT_EQ(used_->ring[2].id, 1u);
  EXPECT_EQ(used_->ring[2].len, 100u);
  EXPECT_EQ(device_->position().last_used_idx, 3);
  // Nothing pushed since: nothing to publish, no interrupt.
  EXPECT_FALSE(device_->PublishUsed());
  EXPECT_EQ(used_->idx, 3);
}

TEST_F(SplitRingTest, InterruptUnlessNoInterruptFlagWithoutEventIdx) {
  SetUpRing(8);
  avail_->flags = VRING_AVAIL_F_NO_INTERRUPT;
  PopOne(0);
  device_->PushUsed(chain_, 0);
  EXPECT_FALSE(device_->PublishUsed());
  EXPECT_EQ(used_->idx, 1);  // published all the same
  avail_->flags = 0;
  PopOne(1);
  device_->PushUsed(chain_, 0);
  EXPECT_TRUE(device_->PublishUsed());
}

TEST_F(SplitRingTest, EventIdxInterruptsWhenUsedEventIsPassed) {
  SetUpRing(8, /*event_idx=*/true);
  auto complete = [this](std::initializer_list<uint16_t> heads) {
    for (uint16_t h : heads) PopOne(h);
    for (uint16_t h : heads) device_->PushUsed(h, 1, 1);
    return device_->PublishUsed();
  };
  used_event() = 100;           // far away
  EXPECT_TRUE(complete({0}));   // the first decision always interrupts (used idx 1)
  used_event() = 2;             // the driver wants one when entry 2 is used
  EXPECT_FALSE(complete({1}));  // used idx 2: entry 1 written
  EXPECT_TRUE(complete({2}));   // used idx 3: entry 2 written
  used_event() = 4;
  EXPECT_TRUE(complete({3, 4, 5}));  // used idx 6: entries 3..5 in one batch pass 4
  used_event() = 5;                  // behind: the driver does not want one
  EXPECT_FALSE(complete({6, 7}));
  EXPECT_EQ(used_->idx, 8);
}

TEST_F(SplitRingTest, NotificationsWithoutEventIdxUseNoNotifyFlag) {
  SetUpRing(8);
  device_->DisableNotifications();
  EXPECT_EQ(used_->flags, VRING_USED_F_NO_NOTIFY);
  EXPECT_TRUE(device_->EnableNotifications());  // nothing available: may sleep
  EXPECT_EQ(used_->flags, 0);
  SetDesc(0, kDataGpa, 8, 0);
  Publish(0);
  EXPECT_FALSE(device_->EnableNotifications());  // a chain arrived: poll again
  device_->DisableNotifications();
  EXPECT_EQ(used_->flags, VRING_USED_F_NO_NOTIFY);
  ASSERT_EQ(Pop(), RingError::kNone);
  EXPECT_TRUE(device_->EnableNotifications());
}

TEST_F(SplitRingTest, NotificationsWithEventIdxUseAvailEvent) {
  SetUpRing(8, /*event_idx=*/true);
  used_->flags = 0;
  device_->DisableNotifications();
  EXPECT_EQ(avail_event(), 0x8000);  // half the index space away from last_avail_idx
  EXPECT_EQ(used_->flags, 0);        // the flag is not the EVENT_IDX mechanism
  for (uint16_t head : {0, 1}) {
    SetDesc(head, kDataGpa, 8, 0);
    Publish(head);
  }
  EXPECT_FALSE(DriverWouldKick(0, 2));
  ASSERT_EQ(Pop(), RingError::kNone);
  ASSERT_EQ(Pop(), RingError::kNone);
  EXPECT_EQ(avail_event(), 0x8000);  // Pop leaves it while off
  device_->KeepNotificationsOff();
  EXPECT_EQ(avail_event(), 0x8002);
  // A driver that checks after the device took part of its batch does not kick either (one
  // behind what was taken would be inside its window).
  EXPECT_FALSE(DriverWouldKick(1, 2));
  EXPECT_FALSE(DriverWouldKick(0, 2));
  EXPECT_TRUE(device_->EnableNotifications());
  EXPECT_EQ(avail_event(), 2);
  SetDesc(2, kDataGpa, 8, 0);
  Publish(2);
  EXPECT_TRUE(DriverWouldKick(2, 3));
  EXPECT_FALSE(device_->EnableNotifications());  // a chain is there
  ASSERT_EQ(Pop(), RingError::kNone);
  EXPECT_EQ(avail_event(), 3);  // on: follows what was taken, so the next chain kicks
  SetDesc(3, kDataGpa, 8, 0);
  Publish(3);
  EXPECT_TRUE(DriverWouldKick(3, 4));
}

TEST_F(SplitRingTest, ReadChainLeavesTheAvailRingAlone) {
  SetUpRing(8);
  SetDesc(2, kDataGpa, 16, kNext, 3);
  SetDesc(3, kDataGpa + 0x100, 1, kWrite);
  // The chain was popped by an earlier target process: it is not in the avail ring any more.
  ASSERT_EQ(device_->ReadChain(2, &chain_, iov_.data(), kMaxIov), RingError::kNone);
  EXPECT_EQ(Counts(chain_), "id=2 slots=1 iov=1/2 bytes=16/1");
  EXPECT_EQ(Available(), 0);
  EXPECT_EQ(device_->position().last_avail_idx, 0);
  device_->PushUsed(chain_, 1);
  EXPECT_TRUE(device_->PublishUsed());
  EXPECT_EQ(used_->ring[0].id, 2u);
  EXPECT_EQ(device_->ReadChain(8, &chain_, iov_.data(), kMaxIov), RingError::kHeadOutOfRange);
}

TEST_F(SplitRingTest, AvailIndexJump) {
  SetUpRing(8, false, true, 100);
  RingError error = RingError::kNone;
  avail_->idx = 108;  // exactly the queue size ahead: fine
  EXPECT_EQ(device_->Available(&error), 8);
  EXPECT_EQ(error, RingError::kNone);
  avail_->idx = 109;
  EXPECT_EQ(device_->Available(&error), 0);
  EXPECT_EQ(error, RingError::kAvailIndexJump);
  avail_->idx = 99;  // behind: 65535 ahead
  EXPECT_EQ(device_->Available(&error), 0);
  EXPECT_EQ(error, RingError::kAvailIndexJump);
}

// Split ring errors: each malformed chain is refused with its own error, and a failed Pop takes
// nothing from the ring.
struct SplitCase {
  const char* name;
  std::vector<vring_desc> descs;  // descriptors 0, 1, ... (links and all); the chain at `head`
  std::vector<vring_desc> table;  // an indirect table at `table_gpa`
  RingError error;
  int max_iov = kMaxIov;
  bool indirect = true;  // negotiated
  uint16_t head = 0;
  uint64_t table_gpa = kTableGpa;
};
void PrintTo(const SplitCase& c, std::ostream* os) { *os << c.name; }

class SplitMalformedChainTest : public SplitRingTest,
                                public ::testing::WithParamInterface<SplitCase> {};

TEST_P(SplitMalformedChainTest, PopRefusesIt) {
  const SplitCase& c = GetParam();
  SetUpRing(8, false, c.indirect);
  for (size_t i = 0; i < c.table.size(); ++i) *Table(c.table_gpa + 16 * i) = c.table[i];
  for (size_t i = 0; i < c.descs.size(); ++i) desc_[i] = c.descs[i];
  Publish(c.head);
  ASSERT_EQ(Available(), 1);
  EXPECT_EQ(Pop(c.max_iov), c.error);
  EXPECT_EQ(device_->position().last_avail_idx, 0);
  EXPECT_EQ(Available(), 1);
}

constexpr uint64_t kStraddling = kGpaA + kSizeA - 24;  // its entry 1: 8 bytes in A, 8 in B
const vring_desc kReadable = {kDataGpa, 8, 0, 0};
const vring_desc kIndirectOf1 = {kTableGpa, 16, kIndirect, 0};
const vring_desc kIndirectOf2 = {kTableGpa, 32, kIndirect, 0};

const SplitCase kSplitCases[] = {
    {"HeadOutOfRange", {}, {}, RingError::kHeadOutOfRange, kMaxIov, true, /*head=*/8},
    {"BufferInTheGap", {{kGap, 16, 0, 0}}, {}, RingError::kAddressOutsideMemory},
    {"BufferPastItsRegionsEnd",
     {{kDataGpa, 8, kNext, 1}, {kGpaC + kSizeC - 8, 16, kWrite, 0}},
     {},
     RingError::kAddressOutsideMemory},
    {"BufferWhoseEndOverflows", {{UINT64_MAX - 7, 16, 0, 0}}, {}, RingError::kAddressOutsideMemory},
    {"Loop", {{kDataGpa, 8, kNext, 1}, {kDataGpa, 8, kNext, 0}}, {}, RingError::kChainTooLong},
    // No iovec taken: only the count ends it.
    {"LoopOfZeroLengthDescriptors", {{0, 0, kNext, 0}}, {}, RingError::kChainTooLong},
    {"LoopInIndirectTable",
     {kIndirectOf2},
     {{kDataGpa, 8, kNext, 1}, {kDataGpa, 8, kNext, 0}},
     RingError::kChainTooLong},
    {"NextOutOfRange", {{kDataGpa, 8, kNext, 8}}, {}, RingError::kNextOutOfRange},
    // The table has 2 entries, the ring 8.
    {"NextOutOfRangeOfIndirectTable",
     {kIndirectOf2},
     {{kDataGpa, 8, kNext, 1}, {kDataGpa, 8, kNext, 2}},
     RingError::kNextOutOfRange},
    {"IndirectLengthZero", {{kTableGpa, 0, kIndirect, 0}}, {}, RingError::kBadIndirectLength},
    {"IndirectLengthNotMultipleOf16",
     {{kTableGpa, 24, kIndirect, 0}},
     {},
     RingError::kBadIndirectLength},
    {"IndirectTableLongerThanTheBound",
     {{kTableGpa, kTooLong, kIndirect, 0}},
     {},
     RingError::kBadIndirectLength},
    {"IndirectTableOutsideMemory",
     {{kGpaC + kSizeC - 16, 32, kIndirect, 0}},
     {},
     RingError::kAddressOutsideMemory},
    // Both regions hold the table, but an entry that neither holds whole is refused, not torn.
    {"IndirectEntryStraddlingTwoRegions",
     {{kStraddling, 32, kIndirect, 0}},
     {{kDataGpa, 8, kNext, 1}},
     RingError::kAddressOutsideMemory,
     kMaxIov,
     true,
     0,
     kStraddling},
    {"NestedIndirect",
     {kIndirectOf2},
     {{kDataGpa, 8, kNext, 1}, kIndirectOf1},
     RingError::kNestedIndirect},
    {"IndirectWithNext",
     {{kTableGpa, 16, kIndirect | kNext, 1}, kReadable},
     {kReadable},
     RingError::kIndirectNotAllowed},
    {"IndirectNotNegotiated",
     {kIndirectOf1},
     {kReadable},
     RingError::kIndirectNotAllowed,
     kMaxIov,
     /*indirect=*/false},
    {"ReadableAfterWritable",
     {{kDataGpa, 8, kNext | kWrite, 1}, kReadable},
     {},
     RingError::kReadableAfterWritable},
    {"ReadableAfterWritableInIndirectTable",
     {kIndirectOf2},
     {{kDataGpa, 8, kNext | kWrite, 1}, kReadable},
     RingError::kReadableAfterWritable},
    {"TooManyIovecsForTheDescriptors",
     {{kDataGpa, 8, kNext, 1}, {kDataGpa, 8, kNext | kWrite, 2}, {kDataGpa, 1, kWrite, 0}},
     {},
     RingError::kTooManyIovecs,
     /*max_iov=*/2},
    // One descriptor, two iovecs.
    {"TooManyIovecsForABufferAcrossRegions",
     {{kGpaA + kSizeA - 8, 16, 0, 0}},
     {},
     RingError::kTooManyIovecs,
     /*max_iov=*/1},
};

INSTANTIATE_TEST_SUITE_P(Errors, SplitMalformedChainTest, ::testing::ValuesIn(kSplitCases),
                         [](const auto& info) { return std::string(info.param.name); });

// ---- packed ring ----

}  // namespace
}  // namespace pollux
