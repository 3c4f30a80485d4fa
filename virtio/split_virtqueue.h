// The driver side of a split virtqueue (virtio 1.2, 2.7): descriptor table, available ring
// (ours to write) and used ring (the device's), in memory the device maps.
//
// Nothing the device can write is trusted: the free descriptor list and each chain's length
// live in private arrays, so a device that scribbles on the descriptor table or returns a
// wrong id is caught (an id out of range or not in flight, a used index that runs ahead of
// what was made available) instead of corrupting the driver's state.
//
// Threads: one thread at a time (the channel's). Private header.
#pragma once

#include "pollux/virtio/vring.h"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

#include "virtqueue_used.h"

namespace pollux {

class SplitVirtqueue {
 public:
  // Bytes of device-visible memory a queue of `size` entries needs (64-byte aligned parts).
  static size_t MemoryBytes(uint32_t size) {
    return UsedOffset(size) + Align64(6 + 8 * static_cast<size_t>(size));
  }

  // `memory`: MemoryBytes(size) zeroed bytes the device maps; `size` a power of two.
  SplitVirtqueue(void* memory, uint32_t size, bool event_idx)
      : size_(size),
        mask_(static_cast<uint16_t>(size - 1)),
        event_idx_(event_idx),
        desc_(static_cast<vring_desc*>(memory)),
        avail_(reinterpret_cast<vring_avail*>(static_cast<uint8_t*>(memory) + 16 * size)),
        used_(reinterpret_cast<vring_used*>(static_cast<uint8_t*>(memory) + UsedOffset(size))),
        next_free_(std::make_unique<uint16_t[]>(size)),
        chain_length_(std::make_unique<uint16_t[]>(size)),
        chain_tail_(std::make_unique<uint16_t[]>(size)),
        free_count_(size) {
    for (uint32_t i = 0; i < size; ++i) next_free_[i] = static_cast<uint16_t>(i + 1);
    DisableInterrupts();
  }

  uint64_t desc_address() const { return reinterpret_cast<uint64_t>(desc_); }
  uint64_t avail_address() const { return reinterpret_cast<uint64_t>(avail_); }
  uint64_t used_address() const { return reinterpret_cast<uint64_t>(used_); }
  uint32_t size() const { return size_; }
  uint32_t free_descriptors() const { return free_count_; }
  uint32_t in_flight() const { return in_flight_; }
  // The id the next Add returns (valid while a descriptor is free): per-request memory is
  // indexed by it, and is filled in before Add.
  uint16_t next_id() const { return free_head_; }
  // SET_VRING_BASE's value for a fresh ring.
  static uint32_t initial_base() { return 0; }

  // Makes a chain of `count` descriptors (1 to free_descriptors()) available; returns its id.
  // `fill(push)` calls push(address, length, device_writes) `count` times, writing each
  // descriptor in place (no staging copy on the data path).
  template <typename Fill>
  uint16_t AddChain(int count, Fill&& fill) noexcept {
    const uint16_t head = free_head_;
    uint16_t index = head;
    uint16_t tail = head;
    int left = count;
    fill([&](uint64_t address, uint32_t length, bool device_writes) {
      const uint16_t next = next_free_[index];
      const uint16_t flags = static_cast<uint16_t>((device_writes ? VRING_DESC_F_WRITE : 0) |
                                                   (--left != 0 ? VRING_DESC_F_NEXT : 0));
      // Two stores for the 16 bytes; `next` is written on the last descriptor too, where
      // the device ignores it without NEXT.
      WriteDescriptor(desc_[index], address, length, flags, next);
      tail = index;
      index = next;
    });
    free_head_ = index;
    free_count_ -= static_cast<uint32_t>(count);
    chain_length_[head] = static_cast<uint16_t>(count);
    chain_tail_[head] = tail;
    Publish(head);
    return head;
  }


  // One descriptor pointing at an indirect table of `count` descriptors the caller filled
  // (FillIndirect) at `table_address`; returns its id.
  uint16_t AddIndirect(uint64_t table_address, int count) noexcept {
    const uint16_t head = free_head_;
    vring_desc& d = desc_[head];
    d.addr = table_address;
    d.len = static_cast<uint32_t>(count) * sizeof(vring_desc);
    d.flags = VRING_DESC_F_INDIRECT;
    free_head_ = next_free_[head];
    free_count_ -= 1;
    chain_length_[head] = 1;
    chain_tail_[head] = head;
    Publish(head);
    return head;
  }

  // Writes an indirect table of `count` descriptors (split layout: chained through `next`),
  // each from a push(address, length, device_writes) of `fill`.
  template <typename Fill>
  static void FillIndirect(void* table, int count, Fill&& fill) noexcept {
    auto* d = static_cast<vring_desc*>(table);
    int k = 0;
    fill([&](uint64_t address, uint32_t length, bool device_writes) {
      d[k].addr = address;
      d[k].len = length;
      uint16_t flags = device_writes ? VRING_DESC_F_WRITE : 0;
      if (k + 1 < count) flags |= VRING_DESC_F_NEXT;
      d[k].flags = flags;
      d[k].next = static_cast<uint16_t>(k + 1);
      ++k;
    });
  }

  // After a batch of Adds: whether the device asked to be notified of it (EVENT_IDX's
  // avail_event, or the used ring's NO_NOTIFY flag). Each call covers what was added since
  // the previous one.
  bool NeedsKick() noexcept {
    const uint16_t added = static_cast<uint16_t>(avail_idx_ - checked_idx_);
    if (added == 0) return false;
    const uint16_t old_idx = checked_idx_;
    checked_idx_ = avail_idx_;
    // Our index store must be visible before we read the device's wish, or both sides can
    // miss each other (the device re-enables notifications, checks the index, sleeps).
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (event_idx_) {
      const uint16_t event = Load(AvailEvent());
      return static_cast<uint16_t>(avail_idx_ - event - 1) <
             static_cast<uint16_t>(avail_idx_ - old_idx);
    }
    return (Load(used_->flags) & VRING_USED_F_NO_NOTIFY) == 0;
  }

  // Takes the next used element, if any. kBroken: the device returned something that was
  // never made available (`error` says what); the queue must not be used any more.
  UsedResult NextUsed(uint16_t& id, uint32_t& length, const char*& error) noexcept {
    // The device's index is read again only once the entries seen last time are taken.
    if (seen_used_idx_ == last_used_) {
      seen_used_idx_ = __atomic_load_n(&used_->idx, __ATOMIC_ACQUIRE);
      if (seen_used_idx_ == last_used_) return UsedResult::kNone;
    }
    if (static_cast<uint16_t>(seen_used_idx_ - last_used_) > in_flight_) {
      error = "the used index ran ahead of the requests in flight";
      return UsedResult::kBroken;
    }
    const vring_used_elem& elem = used_->ring[last_used_ & mask_];
    const uint32_t raw_id = Load(elem.id);
    length = Load(elem.len);
    if (raw_id >= size_ || chain_length_[raw_id] == 0) {
      error = "a used id is out of range or not in flight";
      return UsedResult::kBroken;
    }
    id = static_cast<uint16_t>(raw_id);
    ++last_used_;
    --in_flight_;
    next_free_[chain_tail_[id]] = free_head_;
    free_head_ = id;
    free_count_ += chain_length_[id];
    chain_length_[id] = 0;
    return UsedResult::kUsed;
  }

  // While polling: the device need not interrupt. With EVENT_IDX the used_event is moved
  // behind the last used entry, so it is not reached until 65536 more completions.
  void DisableInterrupts() noexcept {
    if (event_idx_) {
      Store(UsedEvent(), static_cast<uint16_t>(last_used_ - 1));
    } else {
      Store(avail_->flags, static_cast<uint16_t>(VRING_AVAIL_F_NO_INTERRUPT));
    }
  }
  // Before sleeping: interrupt on the next completion. Returns false when one is already
  // there (then the caller must not sleep).
  bool EnableInterrupts() noexcept {
    if (event_idx_) {
      Store(UsedEvent(), last_used_);
    } else {
      Store(avail_->flags, static_cast<uint16_t>(0));
    }
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return __atomic_load_n(&used_->idx, __ATOMIC_ACQUIRE) == last_used_;
  }

 private:
  static size_t Align64(size_t n) { return (n + 63) & ~size_t{63}; }
  static size_t UsedOffset(uint32_t size) {
    return Align64(16 * static_cast<size_t>(size)) + Align64(6 + 2 * static_cast<size_t>(size));
  }
  template <typename T>
  static T Load(const T& field) {
    return __atomic_load_n(&field, __ATOMIC_RELAXED);
  }
  template <typename T>
  static void Store(T& field, T value) {
    __atomic_store_n(&field, value, __ATOMIC_RELAXED);
  }
  uint16_t& UsedEvent() { return avail_->ring[size_]; }
  // The used ring's trailing avail_event, after its `size_` elements.
  uint16_t& AvailEvent() {
    return *reinterpret_cast<uint16_t*>(reinterpret_cast<uint8_t*>(used_) +
                                        offsetof(vring_used, ring) +
                                        sizeof(vring_used_elem) * size_);
  }

  static void WriteDescriptor(vring_desc& d, uint64_t address, uint32_t length, uint16_t flags,
                              uint16_t next) noexcept {
    const uint64_t rest = length | (uint64_t{flags} << 32) | (uint64_t{next} << 48);
    static_assert(offsetof(vring_desc, len) == 8 && offsetof(vring_desc, flags) == 12 &&
                  offsetof(vring_desc, next) == 14);
    auto* bytes = reinterpret_cast<uint8_t*>(&d);
    std::memcpy(bytes, &address, 8);
    std::memcpy(bytes + 8, &rest, 8);
  }

  void Publish(uint16_t head) noexcept {
    avail_->ring[avail_idx_ & mask_] = head;
    ++avail_idx_;
    ++in_flight_;
    // Release: the descriptors and the ring entry are visible before the index that hands
    // them over (a plain store on x86).
    __atomic_store_n(&avail_->idx, avail_idx_, __ATOMIC_RELEASE);
  }

  const uint32_t size_;
  const uint16_t mask_;
  const bool event_idx_;
  vring_desc* const desc_;
  vring_avail* const avail_;
  vring_used* const used_;
  // Private state (the device cannot touch it).
  std::unique_ptr<uint16_t[]> next_free_;     // free list, and the links of chains in flight
  std::unique_ptr<uint16_t[]> chain_length_;  // by head: descriptors in its chain; 0 = free
  std::unique_ptr<uint16_t[]> chain_tail_;    // by head: its last descriptor
  uint16_t free_head_ = 0;
  uint32_t free_count_;
  uint32_t in_flight_ = 0;
  uint16_t avail_idx_ = 0;
  uint16_t checked_idx_ = 0;  // avail index at the last NeedsKick
  uint16_t last_used_ = 0;
  uint16_t seen_used_idx_ = 0;  // the device's used index as last read
};

}  // namespace pollux
