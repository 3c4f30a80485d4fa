#include "backend_device.h"

#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

namespace pollux::testing::vhost_backend {

Device::Device(const VhostUserTestBackendOptions& opts, VhostUserTestBackendCounters* ctrs)
    : options(opts),
      counters(*ctrs),
      disk(opts.num_blocks * opts.block_size),
      write_cache_enabled(opts.write_cache),
      queues(opts.num_queues) {}

uint64_t Device::OfferedFeatures() const {
  uint64_t f = (1ull << VIRTIO_F_VERSION_1) | (1ull << vhost_user::kFProtocolFeatures) |
               (1ull << VIRTIO_BLK_F_BLK_SIZE) | (1ull << VIRTIO_BLK_F_SEG_MAX) |
               (1ull << VIRTIO_BLK_F_SIZE_MAX) | (1ull << VIRTIO_BLK_F_MQ) |
               (1ull << VIRTIO_BLK_F_FLUSH) | (1ull << VIRTIO_BLK_F_DISCARD) |
               (1ull << VIRTIO_BLK_F_WRITE_ZEROES) | (1ull << VIRTIO_BLK_F_TOPOLOGY);
  if (options.offer_indirect) f |= 1ull << VIRTIO_RING_F_INDIRECT_DESC;
  if (options.offer_event_idx) f |= 1ull << VIRTIO_RING_F_EVENT_IDX;
  if (options.offer_packed_ring) f |= 1ull << VIRTIO_F_RING_PACKED;
  if (options.write_cache) f |= 1ull << VIRTIO_BLK_F_CONFIG_WCE;
  if (options.read_only) f |= 1ull << VIRTIO_BLK_F_RO;
  return f;
}

uint64_t Device::OfferedProtocolFeatures() const {
  return (1ull << vhost_user::kProtocolMq) | (1ull << vhost_user::kProtocolReplyAck) |
         (1ull << vhost_user::kProtocolConfig) | (1ull << vhost_user::kProtocolResetDevice);
}

RingFeatures Device::NegotiatedRingFeatures() const {
  return RingFeatures{Negotiated(VIRTIO_F_RING_PACKED), Negotiated(VIRTIO_RING_F_EVENT_IDX),
                      Negotiated(VIRTIO_RING_F_INDIRECT_DESC)};
}

void Device::ResetConnectionState() {
  for (QueueSlot& q : queues) {
    const uint64_t generation = q.kick_generation;
    q = QueueSlot{};
    q.kick_generation = generation + 1;
  }
  memory.Clear();
  features = 0;
  protocol_features = 0;
  io_frozen = false;
  write_cache_enabled = options.write_cache;
}

bool Device::FaultFires(VhostUserTestFault fault, uint64_t count) {
  if (options.fault != fault || count < options.fault_after) return false;
  bool expected = false;
  if (!fault_fired.compare_exchange_strong(expected, true)) return false;
  VHOST_TEST_LOG("injecting fault %s (after %llu)", VhostUserTestFaultName(fault),
                 static_cast<unsigned long long>(options.fault_after));
  return true;
}

}  // namespace pollux::testing::vhost_backend
