// The virtqueue fuzz target's oracle: a second walk of the chain rules that device_ring.h
// documents, written to be read rather than to be fast (one translation path, no fast cases),
// so that every Pop and ReadChain of SplitRingDevice and PackedRingDevice can be compared with
// it iovec by iovec and error by error.
#pragma once

#include <sys/uio.h>

#include <array>
#include <cstdint>
#include <span>

#include "device_ring.h"

namespace pollux::fuzz {

// The most iovecs a Pop may be given (the vhost-blk target gives 134).
inline constexpr int kMaxIovecs = 160;

// What a Pop should return: the error, and on success the chain and its iovecs.
struct ExpectedChain {
  RingError error = RingError::kNone;
  DescriptorChain chain;
  std::array<iovec, kMaxIovecs> iov{};
};

// The ring as the oracle sees it: the regions GuestMemory should have kept (sorted or not),
// the negotiated features, and the iovec limit of the call.
struct ReferenceRing {
  std::span<const GuestMemoryRegion> regions;
  uint16_t size = 0;
  bool indirect = false;
  int max_iov = 0;
};

// The split chain at `head` of the descriptor table `desc` (Pop and ReadChain alike).
ExpectedChain ExpectSplitChain(const ReferenceRing& ring, const vring_desc* desc, uint16_t head);

// The packed chain starting at slot `*index` with wrap counter `*wrap` (HasAvailable true);
// advances both past it when it is taken.
ExpectedChain ExpectPackedChain(const ReferenceRing& ring, const vring_packed_desc* desc,
                                uint16_t* index, bool* wrap);

// GuestMemory::AppendIovecs(gpa, len, ..., max_iov, &count) from `count` on: chain.iov_count
// is the count it must leave (also after a failure), error kNone when it must succeed.
ExpectedChain ExpectAppendIovecs(const ReferenceRing& ring, uint64_t gpa, uint32_t len, int count);

}  // namespace pollux::fuzz
