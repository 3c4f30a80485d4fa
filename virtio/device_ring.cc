#include "device_ring.h"

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstring>

namespace pollux {
namespace {

template <typename T>
T Load(const T& field) noexcept {
  return __atomic_load_n(&field, __ATOMIC_RELAXED);
}
template <typename T>
void Store(T& field, T value) noexcept {
  __atomic_store_n(&field, value, __ATOMIC_RELAXED);
}

// One copy of a descriptor the guest may be rewriting meanwhile. Every check is made on the
// copy: the empty asm says the copy may have changed after the memcpy, so the compiler cannot
// replace a use of it by a second read of guest memory, and what was checked is what is used
// (no TOCTOU). Only the copy is fenced, not all memory (a full clobber made every pass reload
// and store the chain being built). memcpy, because an indirect table need not be aligned.
template <typename T>
T ReadOnce(const void* from) noexcept {
  T copy;
  std::memcpy(&copy, from, sizeof(T));
  asm volatile("" : "+m"(copy));
  return copy;
}

// The region holding `gpa`, or nullptr. A linear scan: a guest has a handful of regions (at
// most 8 through SET_MEM_TABLE), and the first one usually holds the buffer.
const GuestMemoryRegion* FindRegion(const std::vector<GuestMemoryRegion>& regions,
                                    uint64_t gpa) noexcept {
  for (const GuestMemoryRegion& r : regions) {
    if (gpa - r.guest_phys_addr < r.size) return &r;  // unsigned: also false below the region
  }
  return nullptr;
}

// Calls piece(host, length) for each region's part of [gpa, gpa + len), in order: a range
// continues into the next region only when that one starts where the previous ends. piece
// returns false when it can take no more (kTooManyIovecs).
template <typename Piece>
RingError ForEachPiece(const std::vector<GuestMemoryRegion>& regions, uint64_t gpa, uint64_t len,
                       Piece&& piece) noexcept {
  if (len == 0) return RingError::kAddressOutsideMemory;
  while (len > 0) {
    const GuestMemoryRegion* r = FindRegion(regions, gpa);
    if (r == nullptr) return RingError::kAddressOutsideMemory;
    const uint64_t offset = gpa - r->guest_phys_addr;
    const uint64_t part = std::min(len, r->size - offset);
    if (!piece(r->host_addr + offset, part)) return RingError::kTooManyIovecs;
    // No overflow: the constructor left out regions whose end overflows.
    gpa += part;
    len -= part;
  }
  return RingError::kNone;
}

RingError MapToIovecs(const GuestMemory& memory, uint64_t gpa, uint32_t len, iovec* iov, int max,
                      int* count) noexcept {
  // Most buffers lie in the first region: one iovec, one check.
  const std::vector<GuestMemoryRegion>& regions = memory.regions();
  if (!regions.empty() && len != 0 && *count < max) {
    const GuestMemoryRegion& r = regions.front();
    const uint64_t offset = gpa - r.guest_phys_addr;
    if (offset < r.size && len <= r.size - offset) {
      iov[*count] = iovec{r.host_addr + offset, len};
      ++*count;
      return RingError::kNone;
    }
  }
  return ForEachPiece(memory.regions(), gpa, len, [&](uint8_t* host, uint64_t part) {
    if (*count >= max) return false;
    iov[*count] = iovec{host, static_cast<size_t>(part)};
    ++*count;
    return true;
  });
}

// Fills a DescriptorChain's iovecs and counts, readable buffers before writable ones.
class ChainWriter {
 public:
  ChainWriter(const GuestMemory& memory, DescriptorChain* chain, iovec* iov, int max_iov) noexcept
      : memory_(memory), chain_(chain), iov_(iov), max_iov_(max_iov) {
    *chain_ = DescriptorChain{};
  }

  RingError Add(uint64_t gpa, uint32_t len, bool device_writes) noexcept {
    if (device_writes) {
      seen_writable_ = true;
    } else if (seen_writable_) {
      return RingError::kReadableAfterWritable;  // 2.7.4.2: readable ones come first
    }
    // A zero-length buffer carries nothing: no iovec (QEMU refuses it; nothing here needs to).
    if (len == 0) return RingError::kNone;
    const RingError error = MapToIovecs(memory_, gpa, len, iov_, max_iov_, &chain_->iov_count);
    if (error != RingError::kNone) return error;
    if (device_writes) {
      chain_->writable_bytes += len;
    } else {
      chain_->readable_bytes += len;
      chain_->readable_count = chain_->iov_count;
    }
    return RingError::kNone;
  }

 private:
  const GuestMemory& memory_;
  DescriptorChain* chain_;
  iovec* iov_;
  int max_iov_;
  bool seen_writable_ = false;
};

// An indirect table in guest memory, its descriptors read one at a time. A table inside one
// region is read in place; one that crosses into an adjacent region is translated entry by
// entry (no copy, no allocation).
class IndirectTable {
 public:
  // kIndirectNotAllowed, kBadIndirectLength or kAddressOutsideMemory when the table is unusable.
  // `flags` is the indirect descriptor's: INDIRECT with NEXT is forbidden (2.7.5.3.1, 2.8.7).
  RingError Open(const DeviceRingConfig& config, uint64_t gpa, uint32_t len,
                 uint16_t flags) noexcept {
    if (!config.indirect || (flags & VRING_DESC_F_NEXT) != 0) {
      return RingError::kIndirectNotAllowed;
    }
    const uint32_t max_entries = std::max<uint32_t>(config.size, kMaxIndirectEntries);
    if (len == 0 || len % kEntryBytes != 0 || len / kEntryBytes > max_entries) {
      return RingError::kBadIndirectLength;
    }
    memory_ = config.memory;
    gpa_ = gpa;
    entries_ = len / kEntryBytes;
    in_place_ = memory_->Translate(gpa, len);
    if (in_place_ == nullptr) {
      const RingError error =
          ForEachPiece(memory_->regions(), gpa, len, [](uint8_t*, uint64_t) { return true; });
      if (error != RingError::kNone) return error;
    }
    return RingError::kNone;
  }

  uint32_t entries() const noexcept { return entries_; }

  // False when entry `i` straddles two regions (a region boundary not on 16 bytes).
  template <typename Desc>
  bool Read(uint32_t i, Desc* desc) const noexcept {
    static_assert(sizeof(Desc) == kEntryBytes);
    const uint64_t offset = uint64_t{i} * kEntryBytes;
    const uint8_t* at =
        in_place_ != nullptr ? in_place_ + offset : memory_->Translate(gpa_ + offset, kEntryBytes);
    if (at == nullptr) return false;
    *desc = ReadOnce<Desc>(at);
    return true;
  }

 private:
  static constexpr uint32_t kEntryBytes = 16;  // vring_desc and vring_packed_desc alike
  const GuestMemory* memory_ = nullptr;
  uint64_t gpa_ = 0;
  uint32_t entries_ = 0;
  const uint8_t* in_place_ = nullptr;
};

// Follows a split chain through its `next` links from `first` in a table of `entries`
// descriptors; read(i, &desc) copies descriptor i once (false: outside guest memory). An
// INDIRECT descriptor ends the chain through on_indirect(desc).
template <typename Read, typename OnIndirect>
RingError FollowSplitChain(uint32_t entries, uint16_t first, Read&& read, OnIndirect&& on_indirect,
                           ChainWriter& out) noexcept {
  uint16_t i = first;
  // More descriptors than the table holds: the links loop (2.7.5.2 forbids loops).
  for (uint32_t count = 1; count <= entries; ++count) {
    vring_desc d;
    if (!read(i, &d)) return RingError::kAddressOutsideMemory;
    if ((d.flags & VRING_DESC_F_INDIRECT) != 0) return on_indirect(d);
    const RingError error = out.Add(d.addr, d.len, (d.flags & VRING_DESC_F_WRITE) != 0);
    if (error != RingError::kNone) return error;
    if ((d.flags & VRING_DESC_F_NEXT) == 0) return RingError::kNone;
    if (d.next >= entries) return RingError::kNextOutOfRange;
    i = d.next;
  }
  return RingError::kChainTooLong;
}

// A packed indirect table: its descriptors in order, no links (2.8.7).
RingError ReadPackedIndirect(const DeviceRingConfig& config, const vring_packed_desc& d,
                             ChainWriter& out) noexcept {
  IndirectTable table;
  RingError error = table.Open(config, d.addr, d.len, d.flags);
  if (error != RingError::kNone) return error;
  for (uint32_t i = 0; i < table.entries(); ++i) {
    vring_packed_desc entry;
    if (!table.Read(i, &entry)) return RingError::kAddressOutsideMemory;
    if ((entry.flags & VRING_DESC_F_INDIRECT) != 0) return RingError::kNestedIndirect;
    error = out.Add(entry.addr, entry.len, (entry.flags & VRING_DESC_F_WRITE) != 0);
    if (error != RingError::kNone) return error;
  }
  return RingError::kNone;
}

}  // namespace

GuestMemory::GuestMemory(std::span<const GuestMemoryRegion> regions) {
  for (const GuestMemoryRegion& r : regions) {
    const auto host = reinterpret_cast<uintptr_t>(r.host_addr);
    if (r.size == 0 || r.guest_phys_addr + r.size < r.guest_phys_addr || host + r.size < host) {
      continue;
    }
    regions_.push_back(r);
  }
  std::sort(regions_.begin(), regions_.end(),
            [](const GuestMemoryRegion& a, const GuestMemoryRegion& b) {
              return a.guest_phys_addr < b.guest_phys_addr;
            });
}

uint8_t* GuestMemory::Translate(uint64_t gpa, uint64_t len) const noexcept {
  if (len == 0) return nullptr;
  const GuestMemoryRegion* r = FindRegion(regions_, gpa);
  if (r == nullptr) return nullptr;
  const uint64_t offset = gpa - r->guest_phys_addr;
  // Compared as what is left of the region: gpa + len is never computed, so cannot overflow.
  if (len > r->size - offset) return nullptr;
  return r->host_addr + offset;
}

bool GuestMemory::AppendIovecs(uint64_t gpa, uint32_t len, iovec* iov, int max,
                               int* count) const noexcept {
  return MapToIovecs(*this, gpa, len, iov, max, count) == RingError::kNone;
}

const char* RingErrorText(RingError error) {
  switch (error) {
    case RingError::kNone:
      return "no error";
    case RingError::kAvailIndexJump:
      return "available index ran more than the queue size ahead";
    case RingError::kHeadOutOfRange:
      return "available ring entry out of range";
    case RingError::kNextOutOfRange:
      return "descriptor next index out of range";
    case RingError::kChainTooLong:
      return "descriptor chain longer than the queue (a loop)";
    case RingError::kAddressOutsideMemory:
      return "buffer outside guest memory";
    case RingError::kBadIndirectLength:
      return "indirect table length is 0, not a multiple of 16, or too long";
    case RingError::kNestedIndirect:
      return "indirect descriptor inside an indirect table";
    case RingError::kIndirectNotAllowed:
      return "indirect descriptor not negotiated or chained with NEXT";
    case RingError::kReadableAfterWritable:
      return "device-readable descriptor after a device-writable one";
    case RingError::kTooManyIovecs:
      return "descriptor chain needs more iovecs than the request holds";
    case RingError::kBadBufferId:
      return "buffer id out of range";
  }
  return "unknown ring error";
}

// ---- split ----

SplitRingDevice::SplitRingDevice(vring_desc* desc, vring_avail* avail, vring_used* used,
                                 DeviceRingConfig config, RingPosition position) noexcept
    : desc_(desc),
      avail_(avail),
      used_(used),
      config_(config),
      last_avail_idx_(position.last_avail_idx),
      used_idx_(position.last_used_idx),
      published_used_idx_(position.last_used_idx) {}

uint16_t* SplitRingDevice::avail_event() noexcept {
  // Computed in bytes: the field is not a vring_used_elem, only placed like one.
  return reinterpret_cast<uint16_t*>(reinterpret_cast<uint8_t*>(used_) +
                                     offsetof(vring_used, ring) +
                                     sizeof(vring_used_elem) * config_.size);
}

uint16_t* SplitRingDevice::used_event() noexcept { return &avail_->ring[config_.size]; }

uint16_t SplitRingDevice::Available(RingError* error) noexcept {
  // Acquire: the ring entries and descriptors the driver wrote before the index are visible
  // to the Pops that follow.
  const uint16_t idx = __atomic_load_n(&avail_->idx, __ATOMIC_ACQUIRE);
  const uint16_t count = static_cast<uint16_t>(idx - last_avail_idx_);
  if (count > config_.size) {
    *error = RingError::kAvailIndexJump;
    return 0;
  }
  *error = RingError::kNone;
  return count;
}

// Inlined into Pop: the hot path of every request.
[[gnu::always_inline]] inline RingError SplitRingDevice::ReadDirectChain(uint16_t head,
                                                                         DescriptorChain* chain,
                                                                         iovec* iov, int max_iov,
                                                                         bool* fallback) noexcept {
  const std::vector<GuestMemoryRegion>& regions = config_.memory->regions();
  if (regions.empty()) {
    *fallback = true;
    return RingError::kNone;
  }
  const GuestMemoryRegion region = regions.front();
  uint16_t i = head;
  int count = 0;
  int readable_count = 0;
  uint64_t readable_bytes = 0;
  uint64_t writable_bytes = 0;
  for (uint32_t n = 1; n <= config_.size; ++n) {
    const vring_desc d = ReadOnce<vring_desc>(&desc_[i]);
    const uint64_t offset = d.addr - region.guest_phys_addr;
    if ((d.flags & VRING_DESC_F_INDIRECT) != 0 || count == max_iov || d.len == 0 ||
        offset >= region.size || d.len > region.size - offset) {
      *fallback = true;
      return RingError::kNone;
    }
    iov[count++] = iovec{region.host_addr + offset, d.len};
    if ((d.flags & VRING_DESC_F_WRITE) != 0) {
      writable_bytes += d.len;
    } else {
      if (writable_bytes != 0) return RingError::kReadableAfterWritable;  // 2.7.4.2
      readable_bytes += d.len;
      readable_count = count;
    }
    if ((d.flags & VRING_DESC_F_NEXT) == 0) {
      *chain = DescriptorChain{head, 1, readable_count, count, readable_bytes, writable_bytes};
      return RingError::kNone;
    }
    if (d.next >= config_.size) return RingError::kNextOutOfRange;
    i = d.next;
  }
  return RingError::kChainTooLong;  // the links loop (2.7.5.2)
}

// Inlined into Pop and ReadChain (this file only): the direct walk first, the general one
// only for what it does not take.
[[gnu::always_inline]] inline RingError SplitRingDevice::ReadAnyChain(uint16_t head,
                                                                      DescriptorChain* chain,
                                                                      iovec* iov,
                                                                      int max_iov) noexcept {
  if (head >= config_.size) return RingError::kHeadOutOfRange;
  bool fallback = false;
  const RingError direct = ReadDirectChain(head, chain, iov, max_iov, &fallback);
  return fallback ? ReadGeneralChain(head, chain, iov, max_iov) : direct;
}

RingError SplitRingDevice::Pop(DescriptorChain* chain, iovec* iov, int max_iov) noexcept {
  const uint16_t head = Load(avail_->ring[last_avail_idx_ & (config_.size - 1)]);
  const RingError error = ReadAnyChain(head, chain, iov, max_iov);
  if (error != RingError::kNone) return error;
  ++last_avail_idx_;
  // Notifications on: avail_event follows what was taken, as QEMU's vu_queue_pop does, so
  // that the next chain the driver adds kicks.
  if (config_.event_idx && notifications_enabled_) Store(*avail_event(), last_avail_idx_);
  return RingError::kNone;
}

RingError SplitRingDevice::ReadChain(uint16_t head, DescriptorChain* chain, iovec* iov,
                                     int max_iov) noexcept {
  return ReadAnyChain(head, chain, iov, max_iov);
}

RingError SplitRingDevice::ReadGeneralChain(uint16_t head, DescriptorChain* chain, iovec* iov,
                                            int max_iov) noexcept {
  ChainWriter out(*config_.memory, chain, iov, max_iov);
  chain->id = head;
  chain->ring_slots = 1;
  // Zero or more direct descriptors, then at most one indirect one (2.7.5.3.2).
  const auto read_ring = [this](uint16_t i, vring_desc* d) {
    *d = ReadOnce<vring_desc>(&desc_[i]);
    return true;
  };
  const auto on_indirect = [this, &out](const vring_desc& d) {
    IndirectTable table;
    const RingError error = table.Open(config_, d.addr, d.len, d.flags);
    if (error != RingError::kNone) return error;
    return FollowSplitChain(
        table.entries(), 0, [&table](uint16_t i, vring_desc* e) { return table.Read(i, e); },
        [](const vring_desc&) { return RingError::kNestedIndirect; }, out);
  };
  return FollowSplitChain(config_.size, head, read_ring, on_indirect, out);
}

void SplitRingDevice::PushUsed(const DescriptorChain& chain, uint32_t written_len) noexcept {
  PushUsed(chain.id, chain.ring_slots, written_len);
}

bool SplitRingDevice::PublishUsed() noexcept {
  if (used_idx_ == published_used_idx_) return false;
  const uint16_t old_idx = published_used_idx_;
  // Release: the entries are visible before the index that hands them over.
  __atomic_store_n(&used_->idx, used_idx_, __ATOMIC_RELEASE);
  published_used_idx_ = used_idx_;
  // The index store must be visible before the driver's wish is read: the driver stores its
  // wish (flags or used_event), then reads used->idx before sleeping. Without a full fence
  // both sides can read the other's old value, and the driver sleeps on a completion nobody
  // signals (QEMU's virtio_should_notify has the same smp_mb).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (!config_.event_idx) return (Load(avail_->flags) & VRING_AVAIL_F_NO_INTERRUPT) == 0;
  // EVENT_IDX (2.7.10): interrupt when used_event lies in [old_idx, used_idx_). The first
  // decision after (re)start always interrupts: what the driver was told before is unknown.
  const bool valid = signalled_used_valid_;
  signalled_used_valid_ = true;
  return !valid || vring_need_event(Load(*used_event()), used_idx_, old_idx) != 0;
}

void SplitRingDevice::DisableNotifications() noexcept {
  notifications_enabled_ = false;
  if (config_.event_idx) {
    KeepNotificationsOff();
  } else {
    Store(used_->flags, static_cast<uint16_t>(VRING_USED_F_NO_NOTIFY));
  }
}

bool SplitRingDevice::EnableNotifications() noexcept {
  notifications_enabled_ = true;
  if (config_.event_idx) {
    Store(*avail_event(), last_avail_idx_);
  } else {
    Store(used_->flags, uint16_t{0});
  }
  // Our store must be visible before we read the index: the driver stores the index, then
  // reads our wish. Without a full fence a chain added meanwhile is neither seen here nor
  // kicked.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return __atomic_load_n(&avail_->idx, __ATOMIC_ACQUIRE) == last_avail_idx_;
}

void SplitRingDevice::KeepNotificationsOff() noexcept {
  // The driver kicks when avail_event lies between the index it last checked and its new one
  // (vring_need_event). Both are within a queue size of what we took, on either side (we may
  // have taken part of a batch it has not checked yet): half the index space away from
  // last_avail_idx is in no such window, while we keep moving it.
  if (config_.event_idx) Store(*avail_event(), static_cast<uint16_t>(last_avail_idx_ + 0x8000));
}

RingPosition SplitRingDevice::position() const noexcept {
  return RingPosition{last_avail_idx_, published_used_idx_};
}

// ---- packed ----

namespace {

constexpr uint16_t kWrapBit = uint16_t{1} << 15;  // in a RingPosition index and in off_wrap
constexpr uint16_t kAvailFlag = uint16_t{1} << VRING_PACKED_DESC_F_AVAIL;
constexpr uint16_t kUsedFlag = uint16_t{1} << VRING_PACKED_DESC_F_USED;

// A position's index (below the queue size: a larger one from a broken SET_VRING_BASE is
// reduced so that the ring is never indexed out of bounds) and its wrap counter.
uint16_t PositionIndex(uint16_t position, uint16_t size) noexcept {
  return static_cast<uint16_t>((position & ~kWrapBit) % size);
}
bool PositionWrap(uint16_t position) noexcept { return (position & kWrapBit) != 0; }

}  // namespace

PackedRingDevice::PackedRingDevice(vring_packed_desc* desc, vring_packed_desc_event* driver_event,
                                   vring_packed_desc_event* device_event, DeviceRingConfig config,
                                   RingPosition position) noexcept
    : desc_(desc),
      driver_event_(driver_event),
      device_event_(device_event),
      config_(config),
      last_avail_idx_(PositionIndex(position.last_avail_idx, config.size)),
      avail_wrap_(PositionWrap(position.last_avail_idx)),
      used_idx_(PositionIndex(position.last_used_idx, config.size)),
      used_wrap_(PositionWrap(position.last_used_idx)),
      published_used_idx_(used_idx_),
      published_used_wrap_(used_wrap_) {}

void PackedRingDevice::Advance(uint16_t& index, bool& wrap, uint32_t by) const noexcept {
  uint32_t next = index + by;
  if (next >= config_.size) {
    next -= config_.size;
    wrap = !wrap;
  }
  index = static_cast<uint16_t>(next);
}

bool PackedRingDevice::HasAvailable() const noexcept {
  // Acquire: the driver stores a chain's first flags last, with release; what it
  // wrote before is visible to the Pop that follows.
  const uint16_t flags = __atomic_load_n(&desc_[last_avail_idx_].flags, __ATOMIC_ACQUIRE);
  // Available in our wrap: AVAIL equal to the wrap counter, USED not (2.8.1).
  return ((flags & kAvailFlag) != 0) == avail_wrap_ && ((flags & kUsedFlag) != 0) != avail_wrap_;
}

RingError PackedRingDevice::Pop(DescriptorChain* chain, iovec* iov, int max_iov) noexcept {
  ChainWriter out(*config_.memory, chain, iov, max_iov);
  uint16_t index = last_avail_idx_;
  bool wrap = avail_wrap_;
  uint16_t id = 0;
  uint32_t count = 0;
  // The chain: consecutive descriptors, wrapping at the ring's end, while NEXT is set. The
  // driver made them all available before the first (whose flags HasAvailable read).
  for (bool more = true; more;) {
    if (++count > config_.size) return RingError::kChainTooLong;
    const auto d = ReadOnce<vring_packed_desc>(&desc_[index]);
    Advance(index, wrap, 1);
    id = d.id;  // the buffer id is the last descriptor's (2.8.6)
    more = (d.flags & VRING_DESC_F_NEXT) != 0;
    const RingError error = (d.flags & VRING_DESC_F_INDIRECT) != 0
                                ? ReadPackedIndirect(config_, d, out)
                                : out.Add(d.addr, d.len, (d.flags & VRING_DESC_F_WRITE) != 0);
    if (error != RingError::kNone) return error;
  }
  if (id >= config_.size) return RingError::kBadBufferId;
  chain->id = id;
  chain->ring_slots = static_cast<uint16_t>(count);
  last_avail_idx_ = index;
  avail_wrap_ = wrap;
  return RingError::kNone;
}

void PackedRingDevice::PushUsed(const DescriptorChain& chain, uint32_t written_len) noexcept {
  PushUsed(chain.id, chain.ring_slots, written_len);
}

void PackedRingDevice::PushUsed(uint16_t id, uint16_t ring_slots, uint32_t written_len) noexcept {
  vring_packed_desc& d = desc_[used_idx_];
  Store(d.id, id);
  Store(d.len, written_len);
  // Used in our wrap: AVAIL and USED both equal to the wrap counter (2.8.1). WRITE says len is
  // meaningful (2.8.4; DPDK sets it exactly when something was written).
  uint16_t flags = used_wrap_ ? static_cast<uint16_t>(kAvailFlag | kUsedFlag) : uint16_t{0};
  if (written_len != 0) flags |= VRING_DESC_F_WRITE;
  if (batch_count_ == 0) {
    // The batch's first: its flags are stored in PublishUsed, after all the others.
    batch_head_ = used_idx_;
    batch_head_flags_ = flags;
  } else {
    Store(d.flags, flags);
  }
  ++batch_count_;
  // One used descriptor per chain, then as many slots skipped as the chain took (2.8.6).
  Advance(used_idx_, used_wrap_, ring_slots);
}

bool PackedRingDevice::PublishUsed() noexcept {
  if (batch_count_ == 0) return false;
  // Release: the driver reads used descriptors in order from the batch's first; once that one
  // shows used, the whole batch (ids, lengths, the others' flags) is visible.
  __atomic_store_n(&desc_[batch_head_].flags, batch_head_flags_, __ATOMIC_RELEASE);
  batch_count_ = 0;
  uint16_t old_idx = published_used_idx_;
  published_used_idx_ = used_idx_;
  published_used_wrap_ = used_wrap_;
  // As in the split ring: the used flags must be visible before the driver's event structure
  // is read, or both sides miss each other.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  const uint16_t event_flags = Load(driver_event_->flags);
  const bool valid = signalled_used_valid_;
  signalled_used_valid_ = true;
  if (!config_.event_idx || event_flags != VRING_PACKED_EVENT_FLAG_DESC) {
    return event_flags != VRING_PACKED_EVENT_FLAG_DISABLE;
  }
  if (!valid) return true;  // first decision after (re)start: what the driver was told is unknown
  // EVENT_IDX with DESC (2.8.10): interrupt when the descriptor at off_wrap was among those
  // just written. Offsets are put in the frame of the current wrap, as DPDK's
  // vhost_vring_call_packed does: a batch never spans more than one ring's worth of slots.
  const uint16_t off_wrap = Load(driver_event_->off_wrap);
  uint16_t event = off_wrap & static_cast<uint16_t>(~kWrapBit);
  if (PositionWrap(off_wrap) != used_wrap_) event = static_cast<uint16_t>(event - config_.size);
  const uint16_t new_idx = used_idx_;
  if (new_idx <= old_idx) old_idx = static_cast<uint16_t>(old_idx - config_.size);
  return vring_need_event(event, new_idx, old_idx) != 0;
}

void PackedRingDevice::DisableNotifications() noexcept {
  Store(device_event_->flags, static_cast<uint16_t>(VRING_PACKED_EVENT_FLAG_DISABLE));
}

bool PackedRingDevice::EnableNotifications() noexcept {
  // ENABLE, not DESC: a kick for any chain is what a sleeping poller wants.
  Store(device_event_->flags, static_cast<uint16_t>(VRING_PACKED_EVENT_FLAG_ENABLE));
  // As in the split ring: our flags visible before we look at the next descriptor.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return !HasAvailable();
}

RingPosition PackedRingDevice::position() const noexcept {
  return RingPosition{
      static_cast<uint16_t>(last_avail_idx_ | (avail_wrap_ ? kWrapBit : 0)),
      static_cast<uint16_t>(published_used_idx_ | (published_used_wrap_ ? kWrapBit : 0))};
}

}  // namespace pollux
