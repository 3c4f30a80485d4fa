// Split virtqueues (virtio 1.2 section 2.7): the device side of the avail and used rings.
//
// Layout of the areas (num entries): descriptor table, 16 bytes each; avail ring {flags, idx,
// ring[num], used_event}; used ring {flags, idx, {id, len}[num], avail_event}. Indices run
// freely over 16 bits and are reduced modulo num (a power of two) on use.
#include <linux/virtio_ring.h>

#include <cstring>

#include "virtqueue.h"

namespace pollux::testing::vhost_backend {

namespace {

constexpr size_t kAvailFlags = 0;
constexpr size_t kAvailIdx = 2;
constexpr size_t kAvailRing = 4;
constexpr size_t kUsedFlags = 0;
constexpr size_t kUsedIdx = 2;
constexpr size_t kUsedRing = 4;

// Walks one chain through a descriptor table of `size` entries starting at `index`. The table is
// either the ring's own or an indirect one (then `size` comes from its byte length); in both,
// every `next` is checked against the table and the walk is bounded by its size, so a looping
// chain ends as an error rather than a hang (as libvhost-user's virtqueue_read_next_desc does).
bool WalkTable(const GuestMemory& memory, const uint8_t* table, uint32_t size, uint32_t index,
               bool indirect_allowed, bool in_indirect, ChainBuilder* builder, std::string* error) {
  for (uint32_t visited = 0;; ++visited) {
    if (index >= size) {
      *error = "descriptor index " + std::to_string(index) + " out of a table of " +
               std::to_string(size);
      return false;
    }
    if (visited >= size) {
      *error = "descriptor chain loops (longer than its table of " + std::to_string(size) + ")";
      return false;
    }
    vring_desc desc;
    std::memcpy(&desc, table + size_t{16} * index, sizeof(desc));
    if (desc.flags & VRING_DESC_F_INDIRECT) {
      if (!indirect_allowed) {
        *error = "indirect descriptor without VIRTIO_RING_F_INDIRECT_DESC";
        return false;
      }
      if (in_indirect) {
        *error = "indirect descriptor inside an indirect table";
        return false;
      }
      if (desc.flags & VRING_DESC_F_NEXT) {
        *error = "indirect descriptor with VRING_DESC_F_NEXT";
        return false;
      }
      if (desc.len == 0 || desc.len % sizeof(vring_desc) != 0 ||
          desc.len / sizeof(vring_desc) > kMaxChainSegments) {
        *error = "indirect table of " + std::to_string(desc.len) + " bytes";
        return false;
      }
      // The table may sit anywhere in guest memory: descriptors are memcpy'd out of it, so
      // its alignment does not matter.
      const uint8_t* indirect = memory.GpaToHost(desc.addr, desc.len);
      if (indirect == nullptr) {
        *error = "indirect table outside the memory table";
        return false;
      }
      return WalkTable(memory, indirect, desc.len / sizeof(vring_desc), 0, indirect_allowed, true,
                       builder, error);
    }
    if (!builder->Add(desc.addr, desc.len, desc.flags & VRING_DESC_F_WRITE, error)) return false;
    if (!(desc.flags & VRING_DESC_F_NEXT)) return true;
    index = desc.next;
  }
}

}  // namespace

PopResult Virtqueue::SplitPop(const GuestMemory& memory, DescriptorChain* chain,
                              std::string* error) {
  // Acquire pairs with the driver's release of avail->idx: the ring entry and the descriptors
  // it names were written before it.
  const uint16_t avail_idx = LoadAcquire16(layout_.driver + kAvailIdx);
  const uint16_t available = static_cast<uint16_t>(avail_idx - last_avail_idx_);
  if (available == 0) return PopResult::kEmpty;
  if (available > num_) {
    *error = "avail->idx " + std::to_string(avail_idx) + " is " + std::to_string(available) +
             " ahead of the last seen " + std::to_string(last_avail_idx_) + " (queue size " +
             std::to_string(num_) + ")";
    return PopResult::kBroken;
  }
  const uint16_t head = LoadRelaxed16(layout_.driver + kAvailRing + 2 * (last_avail_idx_ % num_));
  if (head >= num_) {
    *error = "avail ring entry " + std::to_string(head) + " >= queue size " + std::to_string(num_);
    return PopResult::kBroken;
  }
  ++last_avail_idx_;
  chain->id = head;
  chain->ring_slots = 1;
  ChainBuilder builder(memory, chain);
  if (!WalkTable(memory, layout_.desc, num_, head, features_.indirect, false, &builder, error)) {
    return PopResult::kBroken;
  }
  return PopResult::kChain;
}

bool Virtqueue::SplitHasAvailable() const {
  return LoadAcquire16(layout_.driver + kAvailIdx) != last_avail_idx_;
}

void Virtqueue::SplitPushUsed(const UsedEntry& entry) {
  uint8_t* elem = layout_.device + kUsedRing + size_t{8} * (used_idx_ % num_);
  StoreRelaxed32(elem, entry.id);
  StoreRelaxed32(elem + 4, entry.len);
  used_idx_ = static_cast<uint16_t>(used_idx_ + 1 + entry.extra_used_idx);
  // Release: the element is visible before the index that hands it to the driver.
  StoreRelease16(layout_.device + kUsedIdx, used_idx_);
}

bool Virtqueue::SplitShouldNotify() {
  if (!features_.event_idx) {
    return !(LoadAcquire16(layout_.driver + kAvailFlags) & VRING_AVAIL_F_NO_INTERRUPT);
  }
  // Interrupt when used_event lies in (old, new]: the driver asked to hear once the used index
  // passes it (2.7.10). The window advances on every check, interrupt or not, like the kernel's
  // vhost_notify(): an event index behind the window was already passed.
  const bool valid = signalled_used_valid_;
  const uint16_t old = signalled_used_;
  signalled_used_ = used_idx_;
  signalled_used_valid_ = true;
  const uint16_t used_event = LoadAcquire16(layout_.driver + kAvailRing + 2 * size_t{num_});
  return !valid || vring_need_event(used_event, used_idx_, old);
}

void Virtqueue::SplitSetNotification(bool enable) {
  if (features_.event_idx) {
    // With EVENT_IDX the driver ignores VRING_USED_F_NO_NOTIFY and kicks when avail->idx passes
    // avail_event. Enabling: ask for a kick at the next chain. Disabling: leave avail_event where
    // it is; the driver has moved past it, so it will not kick again.
    if (enable) {
      StoreRelease16(layout_.device + kUsedRing + size_t{8} * num_, last_avail_idx_);
    }
    return;
  }
  StoreRelease16(layout_.device + kUsedFlags, enable ? 0 : VRING_USED_F_NO_NOTIFY);
}

}  // namespace pollux::testing::vhost_backend
