// What the virtqueue fuzz target's two ring sessions share (virtqueue_fuzz_split.cc,
// virtqueue_fuzz_packed.cc): the operations of the input format (virtqueue_fuzz.cc has the
// whole format), the checks of a popped chain, the chains in flight, and the loop that reads
// operations and calls a session's member of the same name.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "device_ring.h"
#include "fuzz_input.h"
#include "virtqueue_fuzz_guest.h"
#include "virtqueue_reference.h"

namespace pollux::fuzz {

enum Op : uint8_t {
  // The guest.
  kWriteDescriptor,  // slot u16, descriptor: a descriptor of the ring, slot % size
  kWriteEntry,       // address, descriptor: 16 bytes anywhere (indirect table entries)
  kWriteBytes,       // address, n u8, 1 + n % 64 bytes
  kMakeAvailable,    // v u16: split: head v into the avail ring, then idx + 1 (release);
                     // packed: the next 1 + v % 8 slots marked available, the first last
  kSetDriverIndex,   // v u16: split avail->idx; packed the driver's next slot and wrap counter
  kSetDriverEvent,   // flags u16, event u16: split avail flags and used_event; packed the
                     // driver event suppression structure
  kAddChain,         // shape u8, slot u8, id u8, then a len u16 per buffer: a well-formed
                     // chain made available (ChainShape; split: its head slot % size and
                     // table space; packed: its table space and buffer id)
  // The device.
  kPoll,      // budget u8: Available or HasAvailable, then up to budget Pops (0: until
              // nothing is available)
  kComplete,  // n u8, then 1 + n % 8 times pick u16, written_len u32: PushUsed of the chain in
              // flight pick % count (bit 15: the overload taking id and slots)
  kPublish,   // PublishUsed
  kEnableNotifications,
  kDisableNotifications,
  kKeepNotificationsOff,
  kReadChain,  // head u16: split ReadChain (inflight resubmission); packed nothing
  kRestart,    // a new device at the old one's position() (GET/SET_VRING_BASE)
  kSetBase,    // avail u16, used u16: a new device at any position
  kTranslate,  // buffer, count u8: GuestMemory's Translate and AppendIovecs (from iovec
               // count % max on) against the reference
  kOpCount,
};

inline constexpr size_t kMaxOps = 2048;  // per input: a run stays short
inline constexpr size_t kMaxInFlight = 1024;
inline constexpr int kIovGuard = 4;  // entries past the largest limit, to see a Pop write there
inline constexpr uint16_t kNext = VRING_DESC_F_NEXT;
inline constexpr uint16_t kWrite = VRING_DESC_F_WRITE;
inline constexpr uint16_t kIndirect = VRING_DESC_F_INDIRECT;
inline constexpr uint16_t kAvailFlag = 1u << VRING_PACKED_DESC_F_AVAIL;
inline constexpr uint16_t kUsedFlag = 1u << VRING_PACKED_DESC_F_USED;
inline constexpr uint16_t kWrapBit = 1u << 15;

struct RingSetup {
  bool packed = false;
  bool event_idx = false;
  bool indirect = false;
  uint16_t size = 0;
  uint16_t start = 0;
  int max_iov = 0;
};

struct InputDescriptor {
  uint64_t addr = 0;
  uint32_t len = 0;
  uint16_t flags = 0;
  uint16_t next_or_id = 0;
};

// A slot and wrap counter of a packed ring.
struct PackedPosition {
  uint16_t slot = 0;
  bool wrap = false;

  static PackedPosition From(uint16_t encoded, uint16_t size) {
    return {static_cast<uint16_t>((encoded & ~kWrapBit) % size), (encoded & kWrapBit) != 0};
  }
  uint16_t Encoded() const { return static_cast<uint16_t>(slot | (wrap ? kWrapBit : 0)); }
  void Advance(uint32_t by, uint16_t size) {
    uint32_t next = slot + by;
    if (next >= size) {
      next -= size;
      wrap = !wrap;
    }
    slot = static_cast<uint16_t>(next);
  }
};

// What both ring layouts share: the guest, the chains in flight, the checks of a popped chain,
// and the operations that only write guest memory.
class RingSession {
 public:
  RingSession(const RingSetup& setup, FuzzGuest& guest) : setup_(setup), guest_(guest) {
    const auto& regions = guest_.memory().regions();
    Require(regions.size() == guest_.kept().size(), "GuestMemory kept other regions");
    for (const GuestMemoryRegion& r : guest_.kept()) {
      bool found = false;
      for (const GuestMemoryRegion& m : regions) {
        found |= m.guest_phys_addr == r.guest_phys_addr && m.size == r.size &&
                 m.host_addr == r.host_addr;
      }
      Require(found, "GuestMemory lost a region");
    }
    for (size_t i = 1; i < regions.size(); ++i) {
      Require(regions[i - 1].guest_phys_addr < regions[i].guest_phys_addr, "regions not sorted");
    }
    guest_.SyncShadow();
  }

  bool broken() const { return broken_; }

  void WriteEntry(FuzzInput& in) {
    const uint64_t gpa = ReadAddress(in);
    const InputDescriptor d = ReadDescriptor(in);
    if (setup_.packed) {
      const vring_packed_desc e{d.addr, d.len, d.next_or_id, d.flags};
      guest_.Write(gpa, &e, sizeof(e));
    } else {
      const vring_desc e{d.addr, d.len, d.flags, d.next_or_id};
      guest_.Write(gpa, &e, sizeof(e));
    }
    guest_.SyncShadow();
  }

  void WriteBytes(FuzzInput& in) {
    const uint64_t gpa = ReadAddress(in);
    uint8_t bytes[64];
    const int n = 1 + in.U8() % 64;
    for (int i = 0; i < n; ++i) bytes[i] = in.U8();
    guest_.Write(gpa, bytes, n);
    guest_.SyncShadow();
  }

  void Translate(FuzzInput& in) {
    uint64_t gpa = 0;
    uint32_t len = 0;
    ReadBuffer(in, &gpa, &len);
    const int start = in.U8() % setup_.max_iov;
    const ExpectedChain expected = ExpectAppendIovecs(Reference(), gpa, len, start);
    // Translate takes a range inside one region: the reference's answer when it took one iovec.
    const bool one_piece =
        expected.error == RingError::kNone && expected.chain.iov_count == start + 1;
    uint8_t* host = guest_.memory().Translate(gpa, len);
    Require(host == (one_piece ? expected.iov[start].iov_base : nullptr), "Translate");
    MarkIovecs();
    int count = start;
    const bool ok = guest_.memory().AppendIovecs(gpa, len, iov_, setup_.max_iov, &count);
    Require(ok == (expected.error == RingError::kNone) && count == expected.chain.iov_count,
            "AppendIovecs differs from the reference");
    for (int i = 0; i < kMaxIovecs + kIovGuard; ++i) {
      const bool appended = i >= start && i < count;
      Require(appended ? iov_[i].iov_base == expected.iov[i].iov_base &&
                             iov_[i].iov_len == expected.iov[i].iov_len
                       : iov_[i].iov_base == Unwritten().iov_base,
              "AppendIovecs wrote another iovec");
    }
  }

 protected:
  // An address near either end of either region, where the bounds checks are, with small
  // numbers; `end` gets the end of the region it was counted from (A's for any u64).
  uint64_t ReadAddress(FuzzInput& in, uint8_t selector, uint64_t* end) {
    const uint64_t end_a = guest_.gpa_a() + kRegionABytes;
    const uint64_t end_b = guest_.gpa_b() + guest_.size_b();
    *end = end_a;
    switch (selector % 5) {
      case 0:
        return guest_.gpa_a() + in.U16();
      case 1:
        *end = end_b;
        return guest_.gpa_b() + in.U16();
      case 2:
        return end_a - in.U16();
      case 3:
        *end = end_b;
        return end_b - in.U16();
      default:
        return in.U64();
    }
  }
  uint64_t ReadAddress(FuzzInput& in) {
    uint64_t end = 0;
    return ReadAddress(in, in.U8(), &end);
  }
  // An address and a length. Selector bit 7: the length runs to the end of the address's
  // region, give or take the length's low byte (signed), so that a buffer or table ending one
  // byte short of or past a region is one bit away.
  void ReadBuffer(FuzzInput& in, uint64_t* gpa, uint32_t* len) {
    const uint8_t selector = in.U8();
    uint64_t end = 0;
    *gpa = ReadAddress(in, selector, &end);
    *len = in.U32();
    if ((selector & 0x80) != 0) {
      *len = static_cast<uint32_t>(end - *gpa + static_cast<uint64_t>(static_cast<int8_t>(*len)));
    }
  }
  InputDescriptor ReadDescriptor(FuzzInput& in) {
    InputDescriptor d;
    ReadBuffer(in, &d.addr, &d.len);
    d.flags = in.U16();
    d.next_or_id = in.U16();
    return d;
  }

  // A well-formed chain's shape: 1 + (shape & 7) buffers, the first (shape >> 3) & 7 of them
  // device-readable; bit 6 puts them in an indirect table, bit 7 keeps the first one direct
  // before the table (2.7.5.3.2). Buffers are laid out one after the other from region A's
  // data area on, so that some cross into B.
  struct ChainShape {
    int buffers = 0;
    int readable = 0;
    bool indirect = false;
    bool first_direct = false;
    uint64_t gpa[8] = {};
    uint32_t len[8] = {};
  };
  ChainShape ReadChainShape(FuzzInput& in, uint8_t shape) {
    ChainShape s;
    s.buffers = 1 + (shape & 7);
    s.readable = (shape >> 3) & 7;
    s.indirect = (shape & 0x40) != 0;
    s.first_direct = (shape & 0x80) != 0 && s.buffers > 1;
    const uint64_t data_bytes = kRegionABytes - kDataOffset + kMaxRegionBBytes;
    for (int i = 0; i < s.buffers; ++i) {
      s.len[i] = in.U16();
      if (data_cursor_ + s.len[i] > data_bytes) data_cursor_ = 0;
      s.gpa[i] = guest_.gpa_a() + kDataOffset + data_cursor_;
      data_cursor_ += (s.len[i] + 15) & ~uint64_t{15};
    }
    return s;
  }
  uint16_t BufferFlags(const ChainShape& s, int i) const { return i < s.readable ? 0 : kWrite; }
  // Where AddChain puts the table of a chain: one of 16 spaces of 8 entries in region A.
  uint64_t TableGpa(uint8_t which) const {
    return guest_.gpa_a() + kTableOffset + (which & 15) * 0x80;
  }

  ReferenceRing Reference() const {
    return ReferenceRing{guest_.kept(), setup_.size, setup_.indirect, setup_.max_iov};
  }

  // Before a Pop or ReadChain: every entry marked, to see which ones it wrote.
  void MarkIovecs() {
    for (iovec& v : iov_) v = Unwritten();
  }
  static iovec Unwritten() { return iovec{reinterpret_cast<void*>(uintptr_t{0x5a5a5a5a}), 0xa5a5}; }

  // A Pop or ReadChain's result against the reference walk's.
  void CheckChain(const ExpectedChain& expected, RingError got, const DescriptorChain& chain) {
    for (int i = setup_.max_iov; i < kMaxIovecs + kIovGuard; ++i) {
      Require(iov_[i].iov_base == Unwritten().iov_base && iov_[i].iov_len == Unwritten().iov_len,
              "iovec written past the limit the caller gave");
    }
    Require(got == expected.error, "ring error differs from the reference walk's");
    Require(RingErrorText(got) != nullptr, "an error without text");
    if (got != RingError::kNone) return;
    Require(chain.iov_count <= setup_.max_iov, "more iovecs than the limit");
    Require(chain.readable_count >= 0 && chain.readable_count <= chain.iov_count,
            "readable iovecs out of range");
    uint64_t readable = 0;
    uint64_t writable = 0;
    for (int i = 0; i < chain.iov_count; ++i) {
      Require(guest_.Holds(iov_[i]), "iovec outside guest memory");
      (i < chain.readable_count ? readable : writable) += iov_[i].iov_len;
    }
    Require(readable == chain.readable_bytes && writable == chain.writable_bytes,
            "byte counts differ from the iovecs");
    const DescriptorChain& e = expected.chain;
    Require(chain.id == e.id && chain.ring_slots == e.ring_slots &&
                chain.readable_count == e.readable_count && chain.iov_count == e.iov_count &&
                chain.readable_bytes == e.readable_bytes &&
                chain.writable_bytes == e.writable_bytes,
            "chain differs from the reference walk's");
    for (int i = 0; i < chain.iov_count; ++i) {
      Require(iov_[i].iov_base == expected.iov[i].iov_base &&
                  iov_[i].iov_len == expected.iov[i].iov_len,
              "iovec differs from the reference walk's");
    }
  }

  void AddInFlight(const DescriptorChain& chain) {
    if (in_flight_.size() < kMaxInFlight) in_flight_.push_back(chain);
  }
  // Takes a chain in flight picked by the input, or nothing when none is.
  std::optional<DescriptorChain> TakeInFlight(uint16_t pick) {
    if (in_flight_.empty()) return std::nullopt;
    const size_t i = pick % in_flight_.size();
    const DescriptorChain chain = in_flight_[i];
    in_flight_[i] = in_flight_.back();
    in_flight_.pop_back();
    return chain;
  }

  RingSetup setup_;
  FuzzGuest& guest_;
  bool broken_ = false;  // a Pop or ReadChain failed: the ring is not used again
  iovec iov_[kMaxIovecs + kIovGuard] = {};
  std::vector<DescriptorChain> in_flight_;
  uint64_t data_cursor_ = 0;
};

// Reads operations until the input ends, the ring breaks or kMaxOps ran, and calls the
// session's member for each.
template <typename Session>
void RunOps(Session& s, FuzzInput& in) {
  for (size_t n = 0; n < kMaxOps && !in.empty() && !s.broken(); ++n) {
    switch (in.U8() % kOpCount) {
      case kWriteDescriptor:
        s.WriteDescriptor(in);
        break;
      case kWriteEntry:
        s.WriteEntry(in);
        break;
      case kWriteBytes:
        s.WriteBytes(in);
        break;
      case kMakeAvailable:
        s.MakeAvailable(in);
        break;
      case kSetDriverIndex:
        s.SetDriverIndex(in);
        break;
      case kSetDriverEvent:
        s.SetDriverEvent(in);
        break;
      case kAddChain:
        s.AddChain(in);
        break;
      case kPoll:
        s.Poll(in);
        break;
      case kComplete:
        s.Complete(in);
        break;
      case kPublish:
        s.Publish();
        break;
      case kEnableNotifications:
        s.EnableNotifications();
        break;
      case kDisableNotifications:
        s.DisableNotifications();
        break;
      case kKeepNotificationsOff:
        s.KeepNotificationsOff();
        break;
      case kReadChain:
        s.ReadChain(in);
        break;
      case kRestart:
        s.Restart();
        break;
      case kSetBase:
        s.SetBase(in);
        break;
      case kTranslate:
        s.Translate(in);
        break;
    }
  }
}

// One input's run on each ring layout (the header already read).
void RunSplitRing(const RingSetup& setup, FuzzGuest& guest, FuzzInput& in);
void RunPackedRing(const RingSetup& setup, FuzzGuest& guest, FuzzInput& in);

}  // namespace pollux::fuzz
