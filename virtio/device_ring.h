// The device side of the virtio rings (virtio 1.2, 2.7 split and 2.8 packed), as the target
// processes them: descriptor chains the guest made available become host iovecs into guest
// memory; completed chains go back through the used ring in batches, and notifications go
// both ways only when the other side asked for them.
//
// Nothing the guest writes is trusted. Every descriptor index is checked against the queue
// size, every chain is counted against it (a loop ends as an error, never a hang), every
// buffer is translated region by region and refused when a byte lies outside guest memory,
// and an available index that runs more than the queue size ahead is refused. A RingError
// means the ring is unusable: the caller stops the queue and says why, once.
//
// Threads: one thread at a time (the queue's). Private header.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <span>
#include <vector>

#include "pollux/virtio/vring.h"

namespace pollux {

// One region of guest memory as the target has it mapped.
struct GuestMemoryRegion {
  uint64_t guest_phys_addr = 0;
  uint64_t size = 0;
  uint8_t* host_addr = nullptr;
};

// Guest-physical to host translation, bounds-checked. Immutable once built; the queues of one
// device share it read-only.
class GuestMemory {
 public:
  GuestMemory() = default;
  // Regions of size 0, or whose guest or host end would overflow, are left out.
  explicit GuestMemory(std::span<const GuestMemoryRegion> regions);

  // The host address of [gpa, gpa + len) when it lies inside one region, else nullptr (also
  // when gpa + len overflows). len 0 is refused too.
  uint8_t* Translate(uint64_t gpa, uint64_t len) const noexcept;

  // Appends host iovecs covering [gpa, gpa + len) at iov[*count], advancing *count: a range
  // that crosses into an adjacent region (contiguous guest addresses) takes one iovec per
  // region. False when a byte is outside every region, len is 0, or *count would pass `max`
  // (what was appended before the failure is left, *count tells how much).
  bool AppendIovecs(uint64_t gpa, uint32_t len, iovec* iov, int max, int* count) const noexcept;

  const std::vector<GuestMemoryRegion>& regions() const { return regions_; }

 private:
  std::vector<GuestMemoryRegion> regions_;  // sorted by guest_phys_addr
};

enum class RingError : uint8_t {
  kNone = 0,
  kAvailIndexJump,         // split: avail->idx ran more than the queue size ahead
  kHeadOutOfRange,         // split: an avail ring entry >= queue size
  kNextOutOfRange,         // a descriptor's next >= queue size (or the indirect table's size)
  kChainTooLong,           // more descriptors than the queue size (or the table's): a loop
  kAddressOutsideMemory,   // a buffer (or an indirect table) not wholly inside guest memory
  kBadIndirectLength,      // an indirect table whose length is 0, not a multiple of 16, or
                           // more than max(queue size, kMaxIndirectEntries) descriptors
  kNestedIndirect,         // an indirect descriptor inside an indirect table
  kIndirectNotAllowed,     // INDIRECT not negotiated, or combined with NEXT
  kReadableAfterWritable,  // a device-readable buffer after a device-writable one
  kTooManyIovecs,          // the chain needs more iovecs than the caller's array holds
  kBadBufferId,            // packed: a buffer id >= queue size
};

// "descriptor next index out of range" and so on: for the one log line that stops a queue.
const char* RingErrorText(RingError error);

// A chain popped from a ring, as host iovecs: the device-readable buffers first, then the
// device-writable ones (virtio 1.2, 2.7.4.2: a driver places them so; a chain that does not is
// refused).
struct DescriptorChain {
  uint16_t id = 0;          // what the used entry carries: split head index, packed buffer id
  uint16_t ring_slots = 0;  // descriptors it occupies in the ring (packed: how far to advance
                            // the used index when it completes; split: always 1, unused)
  int readable_count = 0;   // iov[0, readable_count) device-readable
  int iov_count = 0;        // iov[readable_count, iov_count) device-writable
  uint64_t readable_bytes = 0;
  uint64_t writable_bytes = 0;
};

// Where a ring stands, for GET_VRING_BASE / SET_VRING_BASE (rte_vhost's vring base): split
// rings use the indexes as they are; packed rings carry the wrap counter in bit 15.
struct RingPosition {
  uint16_t last_avail_idx = 0;
  uint16_t last_used_idx = 0;
};

// An indirect table may hold as many descriptors as the queue size, and at least this many
// whatever the queue size (QEMU's VIRTQUEUE_MAX_SIZE: a guest may pair a small ring with large
// requests; Linux sizes its tables by the request, not the ring). The bound keeps the walk of
// one table short.
inline constexpr uint32_t kMaxIndirectEntries = 1024;

// The rings' addresses in the target's address space, already translated (rte_vhost gives
// them so), and the negotiated features that change how the ring is walked.
struct DeviceRingConfig {
  uint16_t size = 0;       // queue size (split: a power of two; packed: 1..32768)
  bool event_idx = false;  // VIRTIO_RING_F_EVENT_IDX
  bool indirect = false;   // VIRTIO_RING_F_INDIRECT_DESC
  const GuestMemory* memory = nullptr;
};

// The device side of a split ring. A chain may be direct descriptors, one indirect
// descriptor, or direct descriptors followed by one indirect descriptor (virtio 1.2, 2.7.5.3.2);
// zero-length descriptors are accepted and take no iovec.
class SplitRingDevice {
 public:
  // `position`: where the ring stands (0, 0 for a fresh ring). Writes nothing to the ring.
  SplitRingDevice(vring_desc* desc, vring_avail* avail, vring_used* used, DeviceRingConfig config,
                  RingPosition position) noexcept;

  // How many chains the driver has made available that were not popped yet (a load of
  // avail->idx with acquire). kAvailIndexJump when it is more than the queue size.
  uint16_t Available(RingError* error) noexcept;

  // Pops the next available chain (call only when Available() > 0) into iov[0, max_iov) and
  // *chain. On an error the ring must not be used again.
  RingError Pop(DescriptorChain* chain, iovec* iov, int max_iov) noexcept;

  // Reads the chain at `head` without touching the available ring: for requests the driver
  // had in flight when the target restarted (inflight resubmission).
  RingError ReadChain(uint16_t head, DescriptorChain* chain, iovec* iov, int max_iov) noexcept;

  // Records a completed chain in the used ring, not yet visible to the driver.
  void PushUsed(const DescriptorChain& chain, uint32_t written_len) noexcept;
  void PushUsed(uint16_t id, uint16_t /*ring_slots*/, uint32_t written_len) noexcept {
    vring_used_elem& elem = used_->ring[used_idx_ & (config_.size - 1)];
    __atomic_store_n(&elem.id, uint32_t{id}, __ATOMIC_RELAXED);
    __atomic_store_n(&elem.len, written_len, __ATOMIC_RELAXED);
    ++used_idx_;
  }

  // Makes what PushUsed recorded visible (one release store of used->idx) and says whether
  // the driver asked for an interrupt for it (EVENT_IDX: used_event passed since the last
  // interrupt; otherwise unless VRING_AVAIL_F_NO_INTERRUPT). False when nothing was pushed.
  bool PublishUsed() noexcept;

  // Driver notifications (kicks): off while the queue is polled; on before the reactor sleeps.
  // EnableNotifications returns false when chains became available meanwhile (the caller
  // polls again instead of sleeping); it orders its store before that check (a full fence).
  // Without EVENT_IDX they set and clear VRING_USED_F_NO_NOTIFY; with it, disabled means an
  // avail_event that never triggers (moved behind last_avail_idx on every Pop batch through
  // KeepNotificationsOff) and enabled means avail_event = last_avail_idx.
  void DisableNotifications() noexcept;
  bool EnableNotifications() noexcept;
  // With EVENT_IDX and notifications off: keeps avail_event behind (call once per poll that
  // popped something; one store).
  void KeepNotificationsOff() noexcept;

  // {last_avail_idx, used index as published}: entries pushed but not published yet are not
  // counted (the driver never saw them).
  RingPosition position() const noexcept;
  uint16_t size() const { return config_.size; }

 private:
  // ReadChain for the usual chain: direct descriptors, each buffer inside the first memory
  // region. kNone when it took the chain; `fallback` set when the chain needs the general
  // walk (an indirect table, another region, more iovecs than fit), which reads it again.
  RingError ReadDirectChain(uint16_t head, DescriptorChain* chain, iovec* iov, int max_iov,
                            bool* fallback) noexcept;
  // Any chain at a head below the queue size (through an indirect table, across regions).
  RingError ReadGeneralChain(uint16_t head, DescriptorChain* chain, iovec* iov,
                             int max_iov) noexcept;
  // The head checked, then ReadDirectChain, then ReadGeneralChain when it must.
  RingError ReadAnyChain(uint16_t head, DescriptorChain* chain, iovec* iov, int max_iov) noexcept;
  uint16_t* avail_event() noexcept;  // after the used ring's `size` entries (EVENT_IDX)
  uint16_t* used_event() noexcept;   // after the available ring's `size` entries (EVENT_IDX)

  vring_desc* desc_;
  vring_avail* avail_;
  vring_used* used_;
  DeviceRingConfig config_;
  uint16_t last_avail_idx_;
  uint16_t used_idx_;                  // next used entry to write (private copy)
  uint16_t published_used_idx_;        // used->idx as last stored; also the index at the last
                                       // interrupt decision (QEMU's signalled_used)
  bool signalled_used_valid_ = false;  // false until the first decision: interrupt then
  bool notifications_enabled_ = true;
};

// The device side of a packed ring: descriptors are read in place, chains are recognised by
// the AVAIL/USED bits against the device's wrap counter, used descriptors are written back in
// place (the first of a batch last, with release), and the two event suppression structures
// decide kicks (the device's, which we write) and interrupts (the driver's, which we read).
class PackedRingDevice {
 public:
  // `position`: indexes below the queue size with the wrap counter in bit 15 (fresh ring:
  // 1 << 15 for both). Writes nothing to the ring.
  PackedRingDevice(vring_packed_desc* desc, vring_packed_desc_event* driver_event,
                   vring_packed_desc_event* device_event, DeviceRingConfig config,
                   RingPosition position) noexcept;

  // Whether the next descriptor is available (acquire).
  bool HasAvailable() const noexcept;
  // Pops the next available chain; a chain's buffer id is in its last descriptor.
  RingError Pop(DescriptorChain* chain, iovec* iov, int max_iov) noexcept;

  void PushUsed(const DescriptorChain& chain, uint32_t written_len) noexcept;
  void PushUsed(uint16_t id, uint16_t ring_slots, uint32_t written_len) noexcept;
  bool PublishUsed() noexcept;

  void DisableNotifications() noexcept;
  bool EnableNotifications() noexcept;
  void KeepNotificationsOff() noexcept {}

  // Indexes with the wrap counter in bit 15; the used one as published (see SplitRingDevice).
  RingPosition position() const noexcept;
  uint16_t size() const { return config_.size; }

 private:
  void Advance(uint16_t& index, bool& wrap, uint32_t by) const noexcept;

  vring_packed_desc* desc_;
  vring_packed_desc_event* driver_event_;
  vring_packed_desc_event* device_event_;
  DeviceRingConfig config_;
  uint16_t last_avail_idx_;
  bool avail_wrap_;
  uint16_t used_idx_;  // where the next used descriptor goes
  bool used_wrap_;
  // The batch since the last PublishUsed: its first descriptor's flags are stored last.
  uint16_t batch_count_ = 0;
  uint16_t batch_head_ = 0;
  uint16_t batch_head_flags_ = 0;
  uint16_t published_used_idx_;  // used position as the driver can see it, and at the last
  bool published_used_wrap_;     // interrupt decision
  bool signalled_used_valid_ = false;
};

}  // namespace pollux
