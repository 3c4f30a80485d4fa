// Packed virtqueues (virtio 1.2 section 2.8): one descriptor ring both sides write, plus the
// driver and device event suppression structures.
//
// A descriptor is available when its AVAIL bit equals the driver's wrap counter and its USED bit
// does not; the device marks it used by writing both bits equal to its own used wrap counter.
// Descriptor layout: addr (u64, 0), len (u32, 8), id (u16, 12), flags (u16, 14).
#include <linux/virtio_ring.h>

#include <cstring>

#include "virtqueue.h"

namespace pollux::testing::vhost_backend {

namespace {

constexpr size_t kDescSize = 16;
constexpr size_t kDescLen = 8;
constexpr size_t kDescId = 12;
constexpr size_t kDescFlags = 14;
constexpr uint16_t kAvailBit = 1u << VRING_PACKED_DESC_F_AVAIL;
constexpr uint16_t kUsedBit = 1u << VRING_PACKED_DESC_F_USED;
// vring_packed_desc_event: off_wrap (u16, 0), flags (u16, 2).
constexpr size_t kEventOffWrap = 0;
constexpr size_t kEventFlags = 2;

bool IsAvailable(uint16_t flags, bool wrap) {
  const bool avail = flags & kAvailBit;
  const bool used = flags & kUsedBit;
  return avail == wrap && used != wrap;
}

}  // namespace

PopResult Virtqueue::PackedPop(const GuestMemory& memory, DescriptorChain* chain,
                               std::string* error) {
  // Acquire on the head's flags pairs with the driver's release: the driver writes the flags of
  // a chain's first descriptor last (2.8.21), so every descriptor of the chain is visible now.
  const uint16_t head_flags = LoadAcquire16(layout_.desc + kDescSize * avail_pos_ + kDescFlags);
  if (!IsAvailable(head_flags, avail_wrap_)) return PopResult::kEmpty;

  ChainBuilder builder(memory, chain);
  uint16_t pos = avail_pos_;
  bool wrap = avail_wrap_;
  uint16_t id = 0;
  uint32_t count = 0;
  for (;;) {
    // A chain longer than the ring would come back to its own head: an error, not a hang.
    if (++count > num_) {
      *error = "descriptor chain longer than the ring (" + std::to_string(num_) + ")";
      return PopResult::kBroken;
    }
    vring_packed_desc desc;
    std::memcpy(&desc, layout_.desc + kDescSize * pos, sizeof(desc));
    if (++pos == num_) {
      pos = 0;
      wrap = !wrap;
    }
    id = desc.id;  // the buffer id is the one in the chain's last descriptor
    if (desc.flags & VRING_DESC_F_INDIRECT) {
      if (!features_.indirect) {
        *error = "indirect descriptor without VIRTIO_RING_F_INDIRECT_DESC";
        return PopResult::kBroken;
      }
      if (count != 1 || (desc.flags & VRING_DESC_F_NEXT)) {
        *error = "indirect descriptor inside a chain (2.8.19: it must be alone)";
        return PopResult::kBroken;
      }
      if (desc.len == 0 || desc.len % kDescSize != 0 || desc.len / kDescSize > kMaxChainSegments) {
        *error = "indirect table of " + std::to_string(desc.len) + " bytes";
        return PopResult::kBroken;
      }
      const uint8_t* table = memory.GpaToHost(desc.addr, desc.len);
      if (table == nullptr) {
        *error = "indirect table outside the memory table";
        return PopResult::kBroken;
      }
      // Every entry of a packed indirect table belongs to the chain, in order; NEXT is not
      // used there (QEMU and DPDK walk len / 16 entries the same way).
      for (uint32_t i = 0; i < desc.len / kDescSize; ++i) {
        vring_packed_desc entry;
        std::memcpy(&entry, table + kDescSize * i, sizeof(entry));
        if (entry.flags & VRING_DESC_F_INDIRECT) {
          *error = "indirect descriptor inside an indirect table";
          return PopResult::kBroken;
        }
        if (!builder.Add(entry.addr, entry.len, entry.flags & VRING_DESC_F_WRITE, error)) {
          return PopResult::kBroken;
        }
      }
      break;
    }
    if (!builder.Add(desc.addr, desc.len, desc.flags & VRING_DESC_F_WRITE, error)) {
      return PopResult::kBroken;
    }
    if (!(desc.flags & VRING_DESC_F_NEXT)) break;
  }
  avail_pos_ = pos;
  avail_wrap_ = wrap;
  chain->id = id;
  chain->ring_slots = static_cast<uint16_t>(count);
  ids_seen_[id] = true;
  return PopResult::kChain;
}

bool Virtqueue::PackedHasAvailable() const {
  return IsAvailable(LoadAcquire16(layout_.desc + kDescSize * avail_pos_ + kDescFlags),
                     avail_wrap_);
}

void Virtqueue::PackedPushUsed(const UsedEntry& entry) {
  uint8_t* desc = layout_.desc + kDescSize * used_pos_;
  StoreRelaxed32(desc + kDescLen, entry.len);
  StoreRelaxed16(desc + kDescId, static_cast<uint16_t>(entry.id));
  uint16_t flags = used_wrap_ ? (kAvailBit | kUsedBit) : 0;
  if (entry.wrote) flags |= VRING_DESC_F_WRITE;
  // Release: id and len are visible before the flags that hand the descriptor back (2.8.22).
  StoreRelease16(desc + kDescFlags, flags);
  // The used position skips the whole chain the buffer occupied (2.8.7).
  uint32_t next = uint32_t{used_pos_} + entry.ring_slots;
  if (next >= num_) {
    next -= num_;
    used_wrap_ = !used_wrap_;
  }
  used_pos_ = static_cast<uint16_t>(next);
}

bool Virtqueue::PackedShouldNotify() {
  const bool valid = signalled_used_valid_;
  const uint16_t old_pos = signalled_used_;
  signalled_used_ = used_pos_;
  signalled_used_valid_ = true;

  // Acquire pairs with the driver's release of flags after it wrote off_wrap.
  const uint16_t flags = LoadAcquire16(layout_.driver + kEventFlags);
  if (flags == VRING_PACKED_EVENT_FLAG_DISABLE) return false;
  if (flags != VRING_PACKED_EVENT_FLAG_DESC || !features_.event_idx) return true;
  if (!valid) return true;
  // DESC mode (2.8.10): interrupt once the used descriptor at off_wrap has been written. Put
  // the event offset and the old position on the same lap as the new position, then use the
  // split ring's (old, new] window test, as DPDK's vhost_vring_call_packed does.
  const uint16_t off_wrap = LoadRelaxed16(layout_.driver + kEventOffWrap);
  int event = off_wrap & 0x7fff;
  if (static_cast<bool>(off_wrap >> 15) != used_wrap_) event -= static_cast<int>(num_);
  int old = old_pos;
  const int now = used_pos_;
  if (now <= old) old -= static_cast<int>(num_);
  return vring_need_event(static_cast<uint16_t>(event), static_cast<uint16_t>(now),
                          static_cast<uint16_t>(old));
}

void Virtqueue::PackedSetNotification(bool enable) {
  uint8_t* area = layout_.device;
  if (!enable) {
    StoreRelease16(area + kEventFlags, VRING_PACKED_EVENT_FLAG_DISABLE);
    return;
  }
  if (features_.event_idx) {
    // Kick me when the descriptor at the next avail position becomes available; off_wrap goes
    // out before the flags that make the driver read it.
    StoreRelaxed16(area + kEventOffWrap,
                   static_cast<uint16_t>(avail_pos_ | (uint16_t{avail_wrap_} << 15)));
    StoreRelease16(area + kEventFlags, VRING_PACKED_EVENT_FLAG_DESC);
    return;
  }
  StoreRelease16(area + kEventFlags, VRING_PACKED_EVENT_FLAG_ENABLE);
}

}  // namespace pollux::testing::vhost_backend
