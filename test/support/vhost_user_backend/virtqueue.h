// One virtqueue seen from the device side: pops descriptor chains, writes used entries, and
// applies event suppression in both directions. Split rings (virtio 1.2 section 2.7) live in
// split_ring.cc, packed rings (2.8) in packed_ring.cc, what both share in virtqueue.cc.
//
// The rings sit in memory the front-end writes concurrently: every index and flags word the
// other side publishes is read with std::atomic_ref acquire loads, every one we publish is a
// release store, and descriptor bodies (whose alignment in an indirect table is not guaranteed)
// are copied out with memcpy. Used only with the device mutex held.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "guest_memory.h"

namespace pollux::testing::vhost_backend {

// A buffer translated into this process. data == nullptr: the buffer lay outside the memory table
// or crossed a region's end; len still says how long the front-end made it.
struct GuestSegment {
  uint8_t* data;
  uint32_t len;
};

// A request as popped from a ring: device-readable buffers first, then device-writable ones.
struct DescriptorChain {
  uint16_t id = 0;          // split: head descriptor index; packed: buffer id
  uint16_t ring_slots = 1;  // packed: ring descriptors the chain took (1 when indirect)
  std::vector<GuestSegment> readable;
  std::vector<GuestSegment> writable;
  uint64_t readable_bytes = 0;
  uint64_t writable_bytes = 0;
  bool bad_address = false;  // some segment has data == nullptr
};

enum class PopResult { kEmpty, kChain, kBroken };

// The host views of a ring's three areas (split: descriptor table, avail ring, used ring;
// packed: descriptor ring, driver and device event suppression structures).
struct RingLayout {
  uint8_t* desc = nullptr;
  uint8_t* driver = nullptr;
  uint8_t* device = nullptr;
};

// Features that change how a ring is walked, from the negotiated feature bits.
struct RingFeatures {
  bool packed = false;
  bool event_idx = false;
  bool indirect = false;
};

// One used entry to write, with the faults that can bend it.
struct UsedEntry {
  uint32_t id = 0;
  uint32_t len = 0;
  uint16_t ring_slots = 1;      // packed: how far the used position advances
  bool wrote = false;           // packed: sets VRING_DESC_F_WRITE (len is meaningful)
  uint32_t extra_used_idx = 0;  // split fault: advance used->idx this much more
};

class Virtqueue {
 public:
  // Translates the three areas of a ring of `num` entries given by front-end virtual addresses;
  // false with a reason when one lies outside the memory table or is misaligned.
  static bool MapLayout(const GuestMemory& memory, uint64_t desc_uva, uint64_t driver_uva,
                        uint64_t device_uva, uint32_t num, const RingFeatures& features,
                        RingLayout* layout, std::string* error);

  // Starts using the ring. `base` is SET_VRING_BASE's value (packed: with wrap counters, see
  // vhost_user_protocol.h); a split ring takes its used index from used->idx. False, with a
  // reason, when a packed base points past the ring.
  bool Attach(uint32_t num, const RingFeatures& features, const RingLayout& layout, uint32_t base,
              std::string* error);
  // New host views of the same ring after SET_MEM_TABLE remapped the memory.
  void Relayout(const RingLayout& layout) { layout_ = layout; }
  void Detach() { num_ = 0; }
  bool attached() const { return num_ != 0; }
  uint32_t num() const { return num_; }
  bool packed() const { return features_.packed; }
  // GET_VRING_BASE's answer: the next avail index (packed: both indices and wrap counters).
  uint32_t Base() const;

  // Takes the next available chain. kBroken, with a reason, when the ring is malformed (an index
  // out of range, a loop, a nested indirect table...): the caller stops the queue.
  PopResult Pop(const GuestMemory& memory, DescriptorChain* chain, std::string* error);
  // Whether the front-end has made a chain available that Pop() has not taken.
  bool HasAvailable() const;
  void PushUsed(const UsedEntry& entry);
  // After one or more PushUsed(): whether the driver's event suppression asks for an interrupt.
  bool ShouldNotify();
  // Asks the front-end for kicks (enable) or tells it not to bother (disable). After enabling,
  // the caller checks HasAvailable() again: a chain made available before the front-end saw the
  // change came without a kick.
  void SetNotification(bool enable);
  bool notifications_enabled() const { return notifications_enabled_; }
  // Packed: a buffer id no chain of this ring has carried yet (for the kUsedIdxJump fault).
  uint16_t UnseenBufferId() const;

 private:
  PopResult SplitPop(const GuestMemory& memory, DescriptorChain* chain, std::string* error);
  bool SplitHasAvailable() const;
  void SplitPushUsed(const UsedEntry& entry);
  bool SplitShouldNotify();
  void SplitSetNotification(bool enable);

  PopResult PackedPop(const GuestMemory& memory, DescriptorChain* chain, std::string* error);
  bool PackedHasAvailable() const;
  void PackedPushUsed(const UsedEntry& entry);
  bool PackedShouldNotify();
  void PackedSetNotification(bool enable);

  uint32_t num_ = 0;
  RingFeatures features_;
  RingLayout layout_;
  bool notifications_enabled_ = true;
  // The used index at the last ShouldNotify(): the event index test covers (old, new].
  uint16_t signalled_used_ = 0;
  bool signalled_used_valid_ = false;

  // Split state: free-running 16-bit indices.
  uint16_t last_avail_idx_ = 0;
  uint16_t used_idx_ = 0;

  // Packed state: positions in the ring and their wrap counters.
  uint16_t avail_pos_ = 0;
  bool avail_wrap_ = true;
  uint16_t used_pos_ = 0;
  bool used_wrap_ = true;
  std::vector<bool> ids_seen_;
};

// Adds descriptors to a chain in ring order, translating each and enforcing "device-readable
// before device-writable" (virtio 1.2 2.7.4.2 / 2.8.6).
class ChainBuilder {
 public:
  ChainBuilder(const GuestMemory& memory, DescriptorChain* chain);
  // False, with a reason, when a readable buffer follows a writable one or the chain has more
  // segments than any request may have.
  bool Add(uint64_t addr, uint32_t len, bool writable, std::string* error);

 private:
  const GuestMemory& memory_;
  DescriptorChain* chain_;
};

// The most segments one chain may have, whatever the queue size (indirect tables included).
inline constexpr size_t kMaxChainSegments = 4096;

// Acquire/release/relaxed access to 16- and 32-bit words in shared ring memory. The caller
// guarantees alignment (MapLayout checks the ring areas).
uint16_t LoadAcquire16(const uint8_t* p);
uint16_t LoadRelaxed16(const uint8_t* p);
void StoreRelease16(uint8_t* p, uint16_t value);
void StoreRelaxed16(uint8_t* p, uint16_t value);
void StoreRelaxed32(uint8_t* p, uint32_t value);

}  // namespace pollux::testing::vhost_backend
