// libFuzzer target: the vhost-user initiator's side of the rings (virtio/split_virtqueue.h,
// virtio/packed_virtqueue.h), where pollux is the driver and reads what a back-end wrote in
// memory it maps: used entries, used descriptors, event suppression fields. The input plays
// the back-end, completing requests properly or writing any bytes anywhere in the ring
// memory, interleaved with the driver's calls as the initiator's queue makes them.
//
// Checked after every call: a completion NextUsed returns was in flight and is returned once;
// the driver's counts (in flight, free descriptors) match the requests it added and took back;
// an id handed out is one not in flight; once NextUsed says kBroken the queue is not used again.
//
// Input: a 2-byte header, then operations until the input ends (missing bytes read as 0).
//   header: [0] bit 0 packed ring, bit 1 EVENT_IDX; [1] queue size: split 1 << (b % 9),
//           packed b + 1
//   an operation: one byte, b % kOpCount (see Op), then its arguments, little-endian.
// test/fuzz/make_seeds_virtio_initiator.py writes inputs in this format.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

#include "fuzz_input.h"
#include "packed_virtqueue.h"
#include "split_virtqueue.h"

namespace pollux::fuzz {
namespace {

enum Op : uint8_t {
  kAddChain,         // n u8: a chain of 1 + n % 8 descriptors, when that many are free
  kAddIndirect,      // n u8: one descriptor for an indirect table of 1 + n % 16 entries
  kBackendComplete,  // pick u16, len u32: a proper used entry for the request in flight
                     // pick % count (none in flight: for id pick, which is a protocol error)
  kBackendWrite,     // offset u16, n u8, 1 + n % 32 bytes: anywhere in the ring memory
  kNextUsed,         // n u8: up to 1 + n % 8 calls, until one finds nothing
  kNeedsKick,
  kEnableInterrupts,
  kDisableInterrupts,
  kOpCount,
};

constexpr size_t kMaxOps = 4096;
constexpr uint16_t kAvailFlag = 1u << VRING_PACKED_DESC_F_AVAIL;
constexpr uint16_t kUsedFlag = 1u << VRING_PACKED_DESC_F_USED;

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "virtio_initiator_fuzz: %s\n", what);
  std::abort();
}
void Require(bool ok, const char* what) {
  if (!ok) Fail(what);
}

// The driver ring in its memory, the model of what it has in flight, and a back-end that
// completes requests the way the protocol says (its own used position).
template <typename Ring>
class InitiatorSession {
 public:
  static constexpr bool kPacked = std::is_same_v<Ring, PackedVirtqueue>;

  InitiatorSession(uint32_t size, bool event_idx)
      : bytes_(Ring::MemoryBytes(size)),
        memory_(new uint8_t[bytes_]()),
        ring_(memory_.get(), size, event_idx),
        size_(size),
        chain_length_(size, 0) {}

  void Run(FuzzInput& in) {
    for (size_t n = 0; n < kMaxOps && !in.empty() && !broken_; ++n) {
      switch (in.U8() % kOpCount) {
        case kAddChain:
          AddChain(1 + in.U8() % 8);
          break;
        case kAddIndirect:
          AddIndirect(1 + in.U8() % 16);
          break;
        case kBackendComplete: {
          const uint16_t pick = in.U16();
          const uint32_t len = in.U32();
          BackendComplete(pick, len);
          break;
        }
        case kBackendWrite:
          BackendWrite(in);
          break;
        case kNextUsed:
          for (int i = 1 + in.U8() % 8; i > 0 && !broken_ && NextUsed(); --i) {
          }
          break;
        case kNeedsKick:
          ring_.NeedsKick();
          break;
        case kEnableInterrupts:
          ring_.EnableInterrupts();
          break;
        case kDisableInterrupts:
          ring_.DisableInterrupts();
          break;
      }
      CheckCounts();
    }
  }

 private:
  void AddChain(int count) {
    if (static_cast<uint32_t>(count) > ring_.free_descriptors()) return;
    const uint16_t expected_id = ring_.next_id();
    int pushes = 0;
    const uint16_t id = ring_.AddChain(count, [&](auto push) {
      for (int i = 0; i < count; ++i) {
        push(0x1000u * static_cast<uint64_t>(i + 1), 512, i != 0);
        ++pushes;
      }
    });
    Require(pushes == count, "AddChain");
    Took(id, expected_id, static_cast<uint16_t>(count));
  }

  void AddIndirect(int entries) {
    if (ring_.free_descriptors() == 0) return;
    const uint16_t expected_id = ring_.next_id();
    const uint16_t id = ring_.AddIndirect(0x100000, entries);
    Took(id, expected_id, 1);
  }

  void Took(uint16_t id, uint16_t expected_id, uint16_t slots) {
    Require(id == expected_id, "the id added is not next_id()");
    Require(id < size_ && chain_length_[id] == 0, "an id handed out twice");
    chain_length_[id] = slots;
    in_flight_.push_back(id);
    slots_in_flight_ += slots;
  }

  // A well-behaved back-end's completion: a used entry for a request in flight, in order of
  // its own used position.
  void BackendComplete(uint16_t pick, uint32_t len) {
    const uint16_t id = in_flight_.empty() ? pick : in_flight_[pick % in_flight_.size()];
    if constexpr (kPacked) {
      auto* desc = reinterpret_cast<vring_packed_desc*>(memory_.get());
      const uint16_t slot = backend_used_ % size_;
      desc[slot].id = id;
      desc[slot].len = len;
      __atomic_store_n(&desc[slot].flags,
                       static_cast<uint16_t>(backend_wrap_ ? kAvailFlag | kUsedFlag : 0),
                       __ATOMIC_RELEASE);
      const uint32_t slots = id < size_ && chain_length_[id] != 0 ? chain_length_[id] : 1;
      uint32_t next = slot + slots;
      if (next >= size_) {
        next -= size_;
        backend_wrap_ = !backend_wrap_;
      }
      backend_used_ = static_cast<uint16_t>(next);
    } else {
      auto* used = reinterpret_cast<vring_used*>(ring_.used_address());
      used->ring[backend_used_ & (size_ - 1)] = vring_used_elem{id, len};
      __atomic_store_n(&used->idx, ++backend_used_, __ATOMIC_RELEASE);
    }
  }

  void BackendWrite(FuzzInput& in) {
    const size_t offset = in.U16() % bytes_;
    const size_t n = std::min<size_t>(1 + in.U8() % 32, bytes_ - offset);
    for (size_t i = 0; i < n; ++i) memory_[offset + i] = in.U8();
  }

  // One NextUsed; false when it found nothing (or the queue broke).
  bool NextUsed() {
    uint16_t id = 0;
    uint32_t length = 0;
    const char* error = nullptr;
    const UsedResult result = ring_.NextUsed(id, length, error);
    if (result == UsedResult::kNone) return false;
    if (result == UsedResult::kBroken) {
      Require(error != nullptr && error[0] != '\0', "kBroken without a reason");
      broken_ = true;
      return false;
    }
    Require(id < size_ && chain_length_[id] != 0, "a completion for an id not in flight");
    slots_in_flight_ -= chain_length_[id];
    chain_length_[id] = 0;
    for (size_t i = 0; i < in_flight_.size(); ++i) {
      if (in_flight_[i] == id) {
        in_flight_[i] = in_flight_.back();
        in_flight_.pop_back();
        break;
      }
    }
    return true;
  }

  void CheckCounts() {
    Require(ring_.in_flight() == in_flight_.size(), "in_flight() differs from the requests");
    const uint32_t free_slots = size_ - slots_in_flight_;
    // A packed ring with every id in flight has no descriptor to give, whatever slots remain.
    const bool ids_left = !kPacked || in_flight_.size() < size_;
    Require(ring_.free_descriptors() == (ids_left ? free_slots : 0),
            "free_descriptors() differs from the requests");
  }

  size_t bytes_;
  std::unique_ptr<uint8_t[]> memory_;
  Ring ring_;
  uint32_t size_;
  std::vector<uint16_t> chain_length_;  // by id: descriptors in flight, 0 when free
  std::vector<uint16_t> in_flight_;
  uint32_t slots_in_flight_ = 0;
  bool broken_ = false;
  // The back-end's used position: split used index; packed slot and wrap counter.
  uint16_t backend_used_ = 0;
  bool backend_wrap_ = true;
};

void RunInput(FuzzInput& in) {
  const uint8_t features = in.U8();
  const uint8_t size_byte = in.U8();
  const bool event_idx = (features & 2) != 0;
  if ((features & 1) != 0) {
    InitiatorSession<PackedVirtqueue> session(size_byte + 1u, event_idx);
    session.Run(in);
  } else {
    InitiatorSession<SplitVirtqueue> session(1u << (size_byte % 9), event_idx);
    session.Run(in);
  }
}

}  // namespace
}  // namespace pollux::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pollux::fuzz::FuzzInput in(data, size);
  pollux::fuzz::RunInput(in);
  return 0;
}
