// Executes one virtio-blk request (virtio 1.2 section 5.2.6) against the RAM disk.
#pragma once

#include <cstdint>

#include "backend_device.h"

namespace pollux::testing::vhost_backend {

struct BlkOutcome {
  uint32_t used_len = 0;  // bytes written into the chain's writable buffers (status included)
};

// Reads the request header from the chain's readable bytes, moves the data, writes the status
// byte (the last writable byte) and counts the request. Called with device.mu held. A chain with
// no writable byte (nowhere to put a status) is logged and completes with used_len 0.
BlkOutcome ExecuteBlkRequest(Device& device, const DescriptorChain& chain);

}  // namespace pollux::testing::vhost_backend
