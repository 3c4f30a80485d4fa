// The vhost-user-blk initiator: any vhost-user-blk back-end (qemu-storage-daemon, pollux-tgt,
// SPDK's vhost) becomes a pollux bdev (SPDK's bdev_virtio with trtype "user").
//
// A controller is one socket to one back-end and one bdev named after the controller. At
// attach it negotiates features, reads the configuration space (capacity, block size, segment
// and discard limits, queues, write cache), shares the process's shared I/O arena with the
// back-end (pollux/env/shared_io_memory.h) and starts `vq_count` queues. Each thread that
// opens a channel of the bdev claims a queue of its own, so nothing is shared on the data path.
//
// Threads: attach, detach and listing on the app thread (RPC). I/O on the channels' threads.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pollux/bdev/bdev_module.h"
#include "pollux/rpc/json_rpc.h"

namespace pollux {

struct VirtioBlkControllerOptions {
  std::string name;         // the controller's and its bdev's name
  std::string socket_path;  // the back-end's vhost-user socket
  uint32_t vq_count = 1;    // queues to start (at most what the back-end has)
  uint32_t vq_size = 512;   // entries per queue (a power of two for split rings)
  bool packed_ring = false; // use packed rings (the back-end must offer VIRTIO_F_RING_PACKED)
  // How long each answer of the back-end at attach and detach may take (a reply on the
  // socket, GET_ID through the ring) before it counts as hung and the call fails.
  uint32_t reply_timeout_ms = 3000;
};

class VirtioBlkModule : public BdevModule {
 public:
  VirtioBlkModule() : BdevModule("virtio_blk") {}
  static VirtioBlkModule& Get();
  size_t io_context_size() const override;
  // Detaches every controller's rings cleanly at shutdown (their bdevs are gone by then).
  void Fini() override;
};

// Connects, negotiates and registers the bdev. Every failure says what the back-end did.
// Blocks the calling thread for the handshake (bounded: a back-end that does not answer
// fails the attach after reply_timeout_ms).
absl::StatusOr<Bdev*> AttachVirtioBlkController(const VirtioBlkControllerOptions& options);

// Hot-removes the controller's bdev (open descriptors get their remove event), stops its
// rings and closes the socket; done runs on the calling thread.
void DetachVirtioBlkController(std::string_view name,
                               absl::AnyInvocable<void(absl::Status)> done);

// bdev_virtio_get_controllers: one object per controller (or only `name`'s; NotFound if none).
absl::StatusOr<rpc::Json> VirtioBlkControllersInfo(std::string_view name);

}  // namespace pollux
