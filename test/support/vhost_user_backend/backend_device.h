// The state one back-end shares between its protocol thread and its data-path thread: the disk,
// what the current front-end negotiated and configured, its memory, the queues with their
// pending requests, and the fault bookkeeping. Everything below `mu` is guarded by it; the
// counters are atomics of their own.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <vector>

#include "guest_memory.h"
#include "owned_resources.h"
#include "pollux/virtio/vhost_user_protocol.h"
#include "vhost_user_test_backend.h"
#include "virtqueue.h"

namespace pollux::testing::vhost_backend {

using Clock = std::chrono::steady_clock;

// A request popped from a ring and not completed yet (options.completion_delay_us).
struct PendingRequest {
  DescriptorChain chain;
  Clock::time_point due;
};

// One queue as the front-end configured it, with its ring and its requests in flight.
struct QueueSlot {
  uint32_t num = 0;   // SET_VRING_NUM
  uint32_t base = 0;  // SET_VRING_BASE
  bool base_set = false;
  vhost_user::VringAddress addr{};  // SET_VRING_ADDR
  bool addr_set = false;
  UniqueFd kick;  // invalid with kVringNoFd: we poll anyway
  UniqueFd call;  // invalid: the front-end polls, no interrupts
  UniqueFd err;
  uint64_t kick_generation = 0;  // bumped whenever `kick` changes (see DataPath)
  bool started = false;          // SET_VRING_KICK .. GET_VRING_BASE
  bool enabled = false;          // SET_VRING_ENABLE (or started without the protocol
                                 // features feature)
  bool broken = false;           // malformed ring seen: not polled any more
  Virtqueue ring;
  std::deque<PendingRequest> pending;  // in pop order; all have the same delay
  bool need_notify = false;            // used entries written since the last ShouldNotify()
};

struct Device {
  Device(const VhostUserTestBackendOptions& options, VhostUserTestBackendCounters* counters);

  // The features offered in GET_FEATURES / GET_PROTOCOL_FEATURES.
  uint64_t OfferedFeatures() const;
  uint64_t OfferedProtocolFeatures() const;
  bool Negotiated(int bit) const { return (features >> bit) & 1; }
  RingFeatures NegotiatedRingFeatures() const;

  // Forgets the front-end: drops pending requests without completing them (their memory goes
  // away), closes its fds, unmaps its memory and clears what it negotiated. Keeps the disk.
  void ResetConnectionState();

  // Whether `fault` is the configured one and fires now, `count` events having gone right
  // before. Fires at most once per back-end.
  bool FaultFires(VhostUserTestFault fault, uint64_t count);

  const VhostUserTestBackendOptions options;
  VhostUserTestBackendCounters& counters;
  std::atomic<bool> fault_fired{false};

  mutable std::mutex mu;
  std::vector<uint8_t> disk;
  bool write_cache_enabled;
  uint64_t features = 0;
  uint64_t protocol_features = 0;
  GuestMemory memory;
  std::vector<QueueSlot> queues;
  int connection_fd = -1;          // for kCloseMidIo's shutdown(); owned by the protocol thread
  bool io_frozen = false;          // kCloseMidIo fired: no queue is processed until the disconnect
  uint64_t requests_received = 0;  // lifetime counts for the request faults
  uint64_t requests_completed = 0;
};

}  // namespace pollux::testing::vhost_backend
