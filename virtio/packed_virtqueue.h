// The driver side of a packed virtqueue (virtio 1.2, 2.8): one descriptor ring both sides
// write, with wrap counters instead of indexes, and two event suppression structures (the
// driver's, which we write, and the device's).
//
// Nothing the device writes is trusted: buffer ids in flight and the length of each id's
// chain are kept privately, so an id that was never made available is caught.
//
// Threads: one thread at a time (the channel's). Private header.
#pragma once

#include "pollux/virtio/vring.h"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "virtqueue_used.h"

namespace pollux {

class PackedVirtqueue {
 public:
  static size_t MemoryBytes(uint32_t size) { return DeviceEventOffset(size) + 64; }

  // `memory`: MemoryBytes(size) zeroed bytes the device maps; `size` 1 to 32768.
  PackedVirtqueue(void* memory, uint32_t size, bool event_idx)
      : size_(size),
        event_idx_(event_idx),
        desc_(static_cast<vring_packed_desc*>(memory)),
        driver_event_(reinterpret_cast<vring_packed_desc_event*>(static_cast<uint8_t*>(memory) +
                                                                  DriverEventOffset(size))),
        device_event_(reinterpret_cast<vring_packed_desc_event*>(static_cast<uint8_t*>(memory) +
                                                                  DeviceEventOffset(size))),
        free_ids_(std::make_unique<uint16_t[]>(size)),
        chain_length_(std::make_unique<uint16_t[]>(size)),
        free_count_(size),
        free_id_count_(size) {
    // Ids handed out lowest first.
    for (uint32_t i = 0; i < size; ++i) free_ids_[i] = static_cast<uint16_t>(size - 1 - i);
    DisableInterrupts();
  }

  // SET_VRING_ADDR: the descriptor ring, the driver area (our event suppression) and the
  // device area (the device's).
  uint64_t desc_address() const { return reinterpret_cast<uint64_t>(desc_); }
  uint64_t avail_address() const { return reinterpret_cast<uint64_t>(driver_event_); }
  uint64_t used_address() const { return reinterpret_cast<uint64_t>(device_event_); }
  uint32_t size() const { return size_; }
  uint32_t free_descriptors() const { return free_id_count_ == 0 ? 0 : free_count_; }
  uint32_t in_flight() const { return size_ - free_id_count_; }
  uint16_t next_id() const { return free_ids_[free_id_count_ - 1]; }
  static uint32_t initial_base();

  // Makes a chain of `count` descriptors (1 to free_descriptors()) available; returns its id.
  // `fill(push)` calls push(address, length, device_writes) `count` times.
  template <typename Fill>
  uint16_t AddChain(int count, Fill&& fill) noexcept {
    const uint16_t id = TakeId(count);
    const uint16_t head = next_avail_;
    uint16_t head_flags = 0;
    int k = 0;
    fill([&](uint64_t address, uint32_t length, bool device_writes) {
      vring_packed_desc& d = desc_[next_avail_];
      d.addr = address;
      d.len = length;
      d.id = id;
      uint16_t flags = AvailUsedBits(avail_wrap_);
      if (device_writes) flags |= VRING_DESC_F_WRITE;
      if (++k < count) flags |= VRING_DESC_F_NEXT;
      if (k == 1) {
        head_flags = flags;
      } else {
        __atomic_store_n(&d.flags, flags, __ATOMIC_RELAXED);
      }
      Advance(next_avail_, avail_wrap_, 1);
    });
    // The head's flags last, with release: the device sees the whole chain or none of it.
    __atomic_store_n(&desc_[head].flags, head_flags, __ATOMIC_RELEASE);
    added_since_check_ += static_cast<uint16_t>(count);
    return id;
  }


  uint16_t AddIndirect(uint64_t table_address, int count) noexcept {
    const uint16_t id = TakeId(1);
    vring_packed_desc& d = desc_[next_avail_];
    d.addr = table_address;
    d.len = static_cast<uint32_t>(count) * sizeof(vring_packed_desc);
    d.id = id;
    const uint16_t flags = AvailUsedBits(avail_wrap_) | VRING_DESC_F_INDIRECT;
    __atomic_store_n(&d.flags, flags, __ATOMIC_RELEASE);
    Advance(next_avail_, avail_wrap_, 1);
    added_since_check_ += 1;
    return id;
  }

  // An indirect table in the packed layout: descriptors in order, no NEXT flags.
  template <typename Fill>
  static void FillIndirect(void* table, int /*count*/, Fill&& fill) noexcept {
    auto* d = static_cast<vring_packed_desc*>(table);
    int k = 0;
    fill([&](uint64_t address, uint32_t length, bool device_writes) {
      d[k].addr = address;
      d[k].len = length;
      d[k].id = 0;
      d[k].flags = device_writes ? VRING_DESC_F_WRITE : 0;
      ++k;
    });
  }

  bool NeedsKick() noexcept {
    const uint16_t added = added_since_check_;
    if (added == 0) return false;
    added_since_check_ = 0;
    std::atomic_thread_fence(std::memory_order_seq_cst);
    const uint16_t flags = __atomic_load_n(&device_event_->flags, __ATOMIC_RELAXED);
    if (flags != VRING_PACKED_EVENT_FLAG_DESC || !event_idx_) {
      return flags != VRING_PACKED_EVENT_FLAG_DISABLE;
    }
    // EVENT_IDX: kick when the device's event offset lies among the descriptors just made
    // available (virtio 1.2, 2.8.10), offsets compared in one wrap's frame.
    const uint16_t off_wrap = __atomic_load_n(&device_event_->off_wrap, __ATOMIC_RELAXED);
    const bool event_wrap = (off_wrap >> VRING_PACKED_EVENT_F_WRAP_CTR) != 0;
    uint16_t event = off_wrap & static_cast<uint16_t>(~(1u << VRING_PACKED_EVENT_F_WRAP_CTR));
    if (event_wrap != avail_wrap_) event = static_cast<uint16_t>(event - size_);
    const uint16_t new_idx = next_avail_;
    const uint16_t old_idx = static_cast<uint16_t>(new_idx - added);
    return static_cast<uint16_t>(new_idx - event - 1) < static_cast<uint16_t>(new_idx - old_idx);
  }

  UsedResult NextUsed(uint16_t& id, uint32_t& length, const char*& error) noexcept {
    const vring_packed_desc& d = desc_[next_used_];
    const uint16_t flags = __atomic_load_n(&d.flags, __ATOMIC_ACQUIRE);
    const bool avail = (flags & (1u << VRING_PACKED_DESC_F_AVAIL)) != 0;
    const bool used = (flags & (1u << VRING_PACKED_DESC_F_USED)) != 0;
    if (avail != used_wrap_ || used != used_wrap_) return UsedResult::kNone;
    if (in_flight() == 0) {
      error = "a descriptor was marked used with no request in flight";
      return UsedResult::kBroken;
    }
    const uint16_t raw_id = __atomic_load_n(&d.id, __ATOMIC_RELAXED);
    length = __atomic_load_n(&d.len, __ATOMIC_RELAXED);
    if (raw_id >= size_ || chain_length_[raw_id] == 0) {
      error = "a used buffer id is out of range or not in flight";
      return UsedResult::kBroken;
    }
    id = raw_id;
    // The device writes one used descriptor per chain, at the chain's first slot position in
    // its own order; the chain's descriptors are free again from here.
    Advance(next_used_, used_wrap_, chain_length_[id]);
    free_count_ += chain_length_[id];
    chain_length_[id] = 0;
    free_ids_[free_id_count_++] = id;
    return UsedResult::kUsed;
  }

  void DisableInterrupts() noexcept {
    __atomic_store_n(&driver_event_->flags, static_cast<uint16_t>(VRING_PACKED_EVENT_FLAG_DISABLE),
                     __ATOMIC_RELAXED);
  }
  bool EnableInterrupts() noexcept {
    __atomic_store_n(&driver_event_->flags, static_cast<uint16_t>(VRING_PACKED_EVENT_FLAG_ENABLE),
                     __ATOMIC_RELAXED);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    const uint16_t flags = __atomic_load_n(&desc_[next_used_].flags, __ATOMIC_ACQUIRE);
    const bool avail = (flags & (1u << VRING_PACKED_DESC_F_AVAIL)) != 0;
    const bool used = (flags & (1u << VRING_PACKED_DESC_F_USED)) != 0;
    return !(avail == used_wrap_ && used == used_wrap_);
  }

 private:
  static size_t DriverEventOffset(uint32_t size) { return (16 * static_cast<size_t>(size) + 63) & ~size_t{63}; }
  static size_t DeviceEventOffset(uint32_t size) { return DriverEventOffset(size) + 64; }

  // A descriptor made available in wrap `wrap`: AVAIL equal to it, USED its inverse.
  static uint16_t AvailUsedBits(bool wrap) {
    return wrap ? static_cast<uint16_t>(1u << VRING_PACKED_DESC_F_AVAIL)
                : static_cast<uint16_t>(1u << VRING_PACKED_DESC_F_USED);
  }

  void Advance(uint16_t& position, bool& wrap, uint32_t by) const {
    uint32_t next = position + by;
    if (next >= size_) {
      next -= size_;
      wrap = !wrap;
    }
    position = static_cast<uint16_t>(next);
  }

  uint16_t TakeId(int count) {
    const uint16_t id = free_ids_[--free_id_count_];
    chain_length_[id] = static_cast<uint16_t>(count);
    free_count_ -= static_cast<uint32_t>(count);
    return id;
  }

  const uint32_t size_;
  const bool event_idx_;
  vring_packed_desc* const desc_;
  vring_packed_desc_event* const driver_event_;
  vring_packed_desc_event* const device_event_;
  std::unique_ptr<uint16_t[]> free_ids_;      // a stack of ids not in flight
  std::unique_ptr<uint16_t[]> chain_length_;  // by id: descriptors its chain took; 0 = free
  uint32_t free_count_;                       // descriptors not in flight
  uint32_t free_id_count_;
  uint16_t next_avail_ = 0;
  bool avail_wrap_ = true;
  uint16_t next_used_ = 0;
  bool used_wrap_ = true;
  uint16_t added_since_check_ = 0;
};

inline uint32_t PackedVirtqueue::initial_base() { return (1u << 15) | (1u << 31); }

}  // namespace pollux
