#include "virtqueue_reference.h"

#include <algorithm>
#include <cstring>

namespace pollux::fuzz {
namespace {

constexpr uint32_t kDescriptorBytes = 16;

const GuestMemoryRegion* RegionHolding(std::span<const GuestMemoryRegion> regions, uint64_t gpa) {
  for (const GuestMemoryRegion& r : regions) {
    if (gpa >= r.guest_phys_addr && gpa - r.guest_phys_addr < r.size) return &r;
  }
  return nullptr;
}

// Whether every byte of [gpa, gpa + len) lies in some region, region after adjacent region.
bool Covered(std::span<const GuestMemoryRegion> regions, uint64_t gpa, uint64_t len) {
  while (len > 0) {
    const GuestMemoryRegion* r = RegionHolding(regions, gpa);
    if (r == nullptr) return false;
    const uint64_t part = std::min(len, r->guest_phys_addr + r->size - gpa);
    gpa += part;
    len -= part;
  }
  return true;
}

// Builds the expected chain as the rules say: readable buffers before writable ones, a
// zero-length buffer takes no iovec, a buffer takes one iovec per region it touches.
class ExpectedChainBuilder {
 public:
  ExpectedChainBuilder(const ReferenceRing& ring, ExpectedChain* out) : ring_(ring), out_(out) {}

  RingError Add(uint64_t gpa, uint32_t len, bool device_writes) {
    if (device_writes) {
      seen_writable_ = true;
    } else if (seen_writable_) {
      return RingError::kReadableAfterWritable;
    }
    if (len == 0) return RingError::kNone;
    DescriptorChain& c = out_->chain;
    uint64_t at = gpa;
    uint64_t left = len;
    while (left > 0) {
      const GuestMemoryRegion* r = RegionHolding(ring_.regions, at);
      if (r == nullptr) return RingError::kAddressOutsideMemory;
      if (c.iov_count == ring_.max_iov) return RingError::kTooManyIovecs;
      const uint64_t offset = at - r->guest_phys_addr;
      const uint64_t part = std::min(left, r->size - offset);
      out_->iov[c.iov_count++] = iovec{r->host_addr + offset, part};
      at += part;
      left -= part;
    }
    if (device_writes) {
      c.writable_bytes += len;
    } else {
      c.readable_bytes += len;
      c.readable_count = c.iov_count;
    }
    return RingError::kNone;
  }

 private:
  const ReferenceRing& ring_;
  ExpectedChain* out_;
  bool seen_writable_ = false;
};

// An indirect table that passed the checks of 2.7.5.3.1 and 2.8.7 as device_ring.h states them.
struct IndirectTableView {
  uint64_t gpa = 0;
  uint32_t entries = 0;
};

RingError CheckIndirect(const ReferenceRing& ring, uint64_t gpa, uint32_t len, uint16_t flags,
                        IndirectTableView* table) {
  if (!ring.indirect || (flags & VRING_DESC_F_NEXT) != 0) return RingError::kIndirectNotAllowed;
  const uint32_t limit = std::max<uint32_t>(ring.size, kMaxIndirectEntries);
  if (len == 0 || len % kDescriptorBytes != 0 || len / kDescriptorBytes > limit) {
    return RingError::kBadIndirectLength;
  }
  if (!Covered(ring.regions, gpa, len)) return RingError::kAddressOutsideMemory;
  *table = IndirectTableView{gpa, len / kDescriptorBytes};
  return RingError::kNone;
}

// Entry `i` of an indirect table, when its 16 bytes lie in one region.
template <typename Desc>
bool ReadEntry(const ReferenceRing& ring, const IndirectTableView& table, uint32_t i, Desc* out) {
  const uint64_t gpa = table.gpa + uint64_t{i} * kDescriptorBytes;
  const GuestMemoryRegion* r = RegionHolding(ring.regions, gpa);
  if (r == nullptr || r->size - (gpa - r->guest_phys_addr) < kDescriptorBytes) return false;
  std::memcpy(out, r->host_addr + (gpa - r->guest_phys_addr), sizeof(Desc));
  return true;
}

// A table of split descriptors: the ring's own, or an indirect table in guest memory.
struct SplitTable {
  const vring_desc* ring = nullptr;  // the descriptor ring, or nullptr for `indirect`
  IndirectTableView indirect;
  uint32_t entries = 0;
};

bool ReadSplit(const ReferenceRing& ring, const SplitTable& table, uint16_t i, vring_desc* d) {
  if (table.ring == nullptr) return ReadEntry(ring, table.indirect, i, d);
  std::memcpy(d, &table.ring[i], sizeof(*d));
  return true;
}

// The split walk through `next` links from `first`. In the ring an INDIRECT descriptor ends the
// chain through its table (2.7.5.3.2); inside a table it is refused.
RingError WalkSplit(const ReferenceRing& ring, const SplitTable& table, uint16_t first,
                    ExpectedChainBuilder& builder) {
  uint16_t i = first;
  for (uint32_t taken = 0; taken < table.entries; ++taken) {
    vring_desc d;
    if (!ReadSplit(ring, table, i, &d)) return RingError::kAddressOutsideMemory;
    if ((d.flags & VRING_DESC_F_INDIRECT) != 0) {
      if (table.ring == nullptr) return RingError::kNestedIndirect;
      SplitTable inner;
      const RingError error = CheckIndirect(ring, d.addr, d.len, d.flags, &inner.indirect);
      if (error != RingError::kNone) return error;
      inner.entries = inner.indirect.entries;
      return WalkSplit(ring, inner, 0, builder);
    }
    const RingError error = builder.Add(d.addr, d.len, (d.flags & VRING_DESC_F_WRITE) != 0);
    if (error != RingError::kNone) return error;
    if ((d.flags & VRING_DESC_F_NEXT) == 0) return RingError::kNone;
    if (d.next >= table.entries) return RingError::kNextOutOfRange;
    i = d.next;
  }
  return RingError::kChainTooLong;
}

}  // namespace

ExpectedChain ExpectSplitChain(const ReferenceRing& ring, const vring_desc* desc, uint16_t head) {
  ExpectedChain out;
  if (head >= ring.size) {
    out.error = RingError::kHeadOutOfRange;
    return out;
  }
  ExpectedChainBuilder builder(ring, &out);
  out.error = WalkSplit(ring, SplitTable{desc, {}, ring.size}, head, builder);
  out.chain.id = head;
  out.chain.ring_slots = 1;
  return out;
}

ExpectedChain ExpectPackedChain(const ReferenceRing& ring, const vring_packed_desc* desc,
                                uint16_t* index, bool* wrap) {
  ExpectedChain out;
  ExpectedChainBuilder builder(ring, &out);
  uint16_t at = *index;
  bool at_wrap = *wrap;
  uint16_t id = 0;
  uint32_t slots = 0;
  bool more = true;
  while (more) {
    if (slots == ring.size) {
      out.error = RingError::kChainTooLong;
      return out;
    }
    vring_packed_desc d;
    std::memcpy(&d, &desc[at], sizeof(d));
    ++slots;
    if (++at == ring.size) {
      at = 0;
      at_wrap = !at_wrap;
    }
    id = d.id;
    more = (d.flags & VRING_DESC_F_NEXT) != 0;
    RingError error = RingError::kNone;
    if ((d.flags & VRING_DESC_F_INDIRECT) != 0) {
      IndirectTableView table;
      error = CheckIndirect(ring, d.addr, d.len, d.flags, &table);
      // A packed table is read in order, its NEXT flags meaningless (2.8.7).
      for (uint32_t k = 0; error == RingError::kNone && k < table.entries; ++k) {
        vring_packed_desc e;
        if (!ReadEntry(ring, table, k, &e)) {
          error = RingError::kAddressOutsideMemory;
        } else if ((e.flags & VRING_DESC_F_INDIRECT) != 0) {
          error = RingError::kNestedIndirect;
        } else {
          error = builder.Add(e.addr, e.len, (e.flags & VRING_DESC_F_WRITE) != 0);
        }
      }
    } else {
      error = builder.Add(d.addr, d.len, (d.flags & VRING_DESC_F_WRITE) != 0);
    }
    if (error != RingError::kNone) {
      out.error = error;
      return out;
    }
  }
  if (id >= ring.size) {
    out.error = RingError::kBadBufferId;
    return out;
  }
  out.chain.id = id;
  out.chain.ring_slots = static_cast<uint16_t>(slots);
  *index = at;
  *wrap = at_wrap;
  return out;
}

ExpectedChain ExpectAppendIovecs(const ReferenceRing& ring, uint64_t gpa, uint32_t len, int count) {
  ExpectedChain out;
  out.chain.iov_count = count;
  ExpectedChainBuilder builder(ring, &out);
  out.error = len == 0 ? RingError::kAddressOutsideMemory : builder.Add(gpa, len, true);
  return out;
}

}  // namespace pollux::fuzz
