#include "virtqueue.h"

#include <linux/virtio_ring.h>

#include <atomic>
#include <cstring>

namespace pollux::testing::vhost_backend {

uint16_t LoadAcquire16(const uint8_t* p) {
  // atomic_ref needs a non-const object; the load does not write it.
  auto* word = reinterpret_cast<uint16_t*>(const_cast<uint8_t*>(p));
  return std::atomic_ref<uint16_t>(*word).load(std::memory_order_acquire);
}

uint16_t LoadRelaxed16(const uint8_t* p) {
  auto* word = reinterpret_cast<uint16_t*>(const_cast<uint8_t*>(p));
  return std::atomic_ref<uint16_t>(*word).load(std::memory_order_relaxed);
}

void StoreRelease16(uint8_t* p, uint16_t value) {
  std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t*>(p))
      .store(value, std::memory_order_release);
}

void StoreRelaxed16(uint8_t* p, uint16_t value) {
  std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t*>(p))
      .store(value, std::memory_order_relaxed);
}

void StoreRelaxed32(uint8_t* p, uint32_t value) {
  std::atomic_ref<uint32_t>(*reinterpret_cast<uint32_t*>(p))
      .store(value, std::memory_order_relaxed);
}

namespace {

// Translates one ring area and checks the alignment virtio 1.2 2.7 / 2.8.10 require of it, which
// the atomic accesses also rely on.
bool MapArea(const GuestMemory& memory, const char* what, uint64_t uva, uint64_t bytes,
             uintptr_t align, uint8_t** host, std::string* error) {
  if (uva % align != 0) {
    *error = std::string(what) + " address " + std::to_string(uva) + " is not " +
             std::to_string(align) + "-byte aligned";
    return false;
  }
  *host = memory.UvaToHost(uva, bytes);
  if (*host == nullptr) {
    *error = std::string(what) + " [" + std::to_string(uva) + ", +" + std::to_string(bytes) +
             ") is not inside one memory region";
    return false;
  }
  if (reinterpret_cast<uintptr_t>(*host) % align != 0) {
    *error = std::string(what) + " maps to a misaligned host address (region offset)";
    return false;
  }
  return true;
}

}  // namespace

bool Virtqueue::MapLayout(const GuestMemory& memory, uint64_t desc_uva, uint64_t driver_uva,
                          uint64_t device_uva, uint32_t num, const RingFeatures& features,
                          RingLayout* layout, std::string* error) {
  const uint64_t n = num;
  if (features.packed) {
    return MapArea(memory, "descriptor ring", desc_uva, 16 * n, 16, &layout->desc, error) &&
           MapArea(memory, "driver event area", driver_uva, 4, 4, &layout->driver, error) &&
           MapArea(memory, "device event area", device_uva, 4, 4, &layout->device, error);
  }
  // The event index words after the avail and used rings exist only with EVENT_IDX.
  const uint64_t event = features.event_idx ? 2 : 0;
  return MapArea(memory, "descriptor table", desc_uva, 16 * n, 16, &layout->desc, error) &&
         MapArea(memory, "avail ring", driver_uva, 4 + 2 * n + event, 2, &layout->driver, error) &&
         MapArea(memory, "used ring", device_uva, 4 + 8 * n + event, 4, &layout->device, error);
}

bool Virtqueue::Attach(uint32_t num, const RingFeatures& features, const RingLayout& layout,
                       uint32_t base, std::string* error) {
  if (features.packed) {
    const uint16_t avail_pos = base & 0x7fff;
    const uint16_t used_pos = (base >> 16) & 0x7fff;
    if (avail_pos >= num || used_pos >= num) {
      *error = "packed ring base " + std::to_string(base) + " points past a ring of " +
               std::to_string(num);
      return false;
    }
    avail_pos_ = avail_pos;
    avail_wrap_ = (base >> 15) & 1;
    used_pos_ = used_pos;
    used_wrap_ = (base >> 31) & 1;
    ids_seen_.assign(1u << 16, false);
  } else {
    last_avail_idx_ = static_cast<uint16_t>(base);
    // The used ring is the front-end's memory: after a reconnect it holds the truth about what
    // was completed, which SET_VRING_BASE does not carry for split rings.
    used_idx_ = LoadAcquire16(layout.device + 2);
  }
  num_ = num;
  features_ = features;
  layout_ = layout;
  signalled_used_valid_ = false;
  notifications_enabled_ = false;  // so that the caller's SetNotification(true) publishes
  return true;
}

uint32_t Virtqueue::Base() const {
  if (!features_.packed) return last_avail_idx_;
  return uint32_t{avail_pos_} | (uint32_t{avail_wrap_} << 15) | (uint32_t{used_pos_} << 16) |
         (uint32_t{used_wrap_} << 31);
}

PopResult Virtqueue::Pop(const GuestMemory& memory, DescriptorChain* chain, std::string* error) {
  *chain = DescriptorChain{};
  return features_.packed ? PackedPop(memory, chain, error) : SplitPop(memory, chain, error);
}

bool Virtqueue::HasAvailable() const {
  return features_.packed ? PackedHasAvailable() : SplitHasAvailable();
}

void Virtqueue::PushUsed(const UsedEntry& entry) {
  features_.packed ? PackedPushUsed(entry) : SplitPushUsed(entry);
}

bool Virtqueue::ShouldNotify() {
  // The used entries must be visible before we read the driver's suppression state, and the
  // driver writes that state before re-reading our used index (virtio 1.2 2.7.7.1 / 2.8.21.3):
  // only a full fence orders our stores before our loads, otherwise both sides may miss the
  // other's update and the interrupt is lost.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return features_.packed ? PackedShouldNotify() : SplitShouldNotify();
}

void Virtqueue::SetNotification(bool enable) {
  if (enable == notifications_enabled_) return;
  notifications_enabled_ = enable;
  features_.packed ? PackedSetNotification(enable) : SplitSetNotification(enable);
  // Mirror of ShouldNotify(): our "kick me" store must be visible before the caller re-reads the
  // ring, or a chain published in between is neither seen now nor kicked.
  if (enable) std::atomic_thread_fence(std::memory_order_seq_cst);
}

uint16_t Virtqueue::UnseenBufferId() const {
  for (uint32_t id = 0; id < ids_seen_.size(); ++id) {
    if (!ids_seen_[id]) return static_cast<uint16_t>(id);
  }
  return 0xffff;
}

ChainBuilder::ChainBuilder(const GuestMemory& memory, DescriptorChain* chain)
    : memory_(memory), chain_(chain) {}

bool ChainBuilder::Add(uint64_t addr, uint32_t len, bool writable, std::string* error) {
  if (chain_->readable.size() + chain_->writable.size() >= kMaxChainSegments) {
    *error = "chain has more than " + std::to_string(kMaxChainSegments) + " descriptors";
    return false;
  }
  if (!writable && !chain_->writable.empty()) {
    *error = "device-readable descriptor after a device-writable one";
    return false;
  }
  GuestSegment segment{memory_.GpaToHost(addr, len), len};
  if (segment.data == nullptr) chain_->bad_address = true;
  if (writable) {
    chain_->writable.push_back(segment);
    chain_->writable_bytes += len;
  } else {
    chain_->readable.push_back(segment);
    chain_->readable_bytes += len;
  }
  return true;
}

}  // namespace pollux::testing::vhost_backend
