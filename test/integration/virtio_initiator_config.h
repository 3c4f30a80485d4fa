// The config that makes pollux-perf (or pollux-tgt) attach a vhost-user-blk socket as bdev
// VirtioBlk0 through the initiator: shared by the integration tests that drive a back-end.
#pragma once

#include <string>

namespace pollux::testing {

inline std::string VirtioInitiatorConfig(const std::string& socket, int vq_count, bool packed) {
  return R"({"subsystems": [{"subsystem": "bdev", "config": [
    {"method": "bdev_virtio_attach_controller",
     "params": {"name": "VirtioBlk0", "trtype": "user", "traddr": ")" +
         socket + R"(", "dev_type": "blk", "vq_count": )" + std::to_string(vq_count) +
         R"(, "vq_size": 128, "packed_ring": )" + (packed ? "true" : "false") + "}}]}]}";
}

}  // namespace pollux::testing
