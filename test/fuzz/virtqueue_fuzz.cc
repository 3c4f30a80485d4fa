// libFuzzer target: the device side of the virtio rings (virtio/device_ring.h), the code that
// turns what a guest put in its queues into host iovecs, against a guest the input plays. The
// input lays out guest memory, writes descriptors, tables and ring indexes, and interleaves
// them with the device's calls in any order, as a guest may change its memory between any two.
//
// Every call is checked: each Pop and ReadChain against a second walk of the rules
// (virtqueue_reference.h), error for error and iovec for iovec; every iovec inside one guest
// memory region and none written past the caller's limit; no more chains popped in one poll
// than Available counted (split) or than two laps of the ring hold (packed); the ring fields each
// call writes hold what they should (used entries, indexes, notification fields), and nothing else
// in guest memory changed.
//
// Input: a 16-byte header, then operations until the input ends (missing bytes read as 0).
//   header: [0] features: bit 0 packed ring, bit 1 EVENT_IDX, bit 2 INDIRECT_DESC
//           [1] queue size: split 1 << (b % 9), packed b + 1
//           [2..3] starting position (split: both indexes; packed: slot | wrap counter << 15)
//           [4] iovecs a Pop may fill: 1 + b % kMaxIovecs
//           [5] region B, b % 4: adjacent after A, after A and a gap, adjacent before A, none
//           [6..7] region B's size: 1 + v % kMaxRegionBBytes
//           [8..15] region A's guest-physical address
//   an operation: one byte (b % kOpCount, see Op), then its arguments, little-endian.
//   an address: selector u8, then (selector % 5) A + u16, B + u16, end of A - u16, end of B -
//     u16, or any u64.
//   a buffer: an address, then len u32; with selector bit 7 the length is the distance to the
//     end of the region the address counts from (A for a u64) plus len's low byte as an int8.
//   a descriptor: a buffer, flags u16, next (split) or id (packed) u16.
// test/fuzz/make_seeds_virtqueue.py writes inputs in this format.
#include <cstddef>
#include <cstdint>

#include "fuzz_input.h"
#include "virtqueue_fuzz_guest.h"
#include "virtqueue_fuzz_session.h"

namespace pollux::fuzz {
namespace {

void RunInput(FuzzInput& in) {
  RingSetup setup;
  const uint8_t features = in.U8();
  setup.packed = (features & 1) != 0;
  setup.event_idx = (features & 2) != 0;
  setup.indirect = (features & 4) != 0;
  const uint8_t size_byte = in.U8();
  setup.size = setup.packed ? static_cast<uint16_t>(size_byte + 1)
                            : static_cast<uint16_t>(1u << (size_byte % 9));
  setup.start = in.U16();
  setup.max_iov = 1 + in.U8() % kMaxIovecs;
  const auto placement = static_cast<RegionBPlacement>(in.U8() % 4);
  const uint64_t size_b = 1 + in.U16() % kMaxRegionBBytes;
  const uint64_t gpa_a = in.U64();
  FuzzGuest guest(gpa_a, placement, size_b);
  if (setup.packed) {
    RunPackedRing(setup, guest, in);
  } else {
    RunSplitRing(setup, guest, in);
  }
}

}  // namespace
}  // namespace pollux::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pollux::fuzz::FuzzInput in(data, size);
  pollux::fuzz::RunInput(in);
  return 0;
}
