// The vhost-user-blk target: a pollux bdev served to a guest (QEMU's vhost-user-blk-pci) or
// any vhost-user front-end over a Unix socket. rte_vhost speaks the protocol; pollux threads
// process the virtqueues (virtio/README.md has the design and which thread owns what).
//
// Threads: every function here runs on a pollux Thread (the app thread for RPC and config),
// and never blocks on rte_vhost's thread.
#pragma once

#include <cstdint>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pollux/rpc/json_rpc.h"

namespace pollux {

struct VhostBlkControllerOptions {
  std::string name;       // "ctrlr": the socket's file name in the socket folder
  std::string bdev_name;  // "dev_name"
  std::string cpumask;    // cores whose reactors serve the queues; empty: every reactor
  bool readonly = false;
  bool packed_ring = false;     // offer VIRTIO_F_RING_PACKED
  uint32_t socket_mode = 0600;  // permissions of the socket file
};

// The folder sockets are created in (pollux-tgt -S, SPDK's -S); empty: the working directory.
// Before the first controller is created.
void SetVhostSocketFolder(std::string folder);
const std::string& VhostSocketFolder();

// Opens the bdev, creates the queue threads on the cpumask's reactors and listens on the
// socket. Fails with a clear reason: no such bdev, a name taken, a bad cpumask, a path in use
// by something that is not a socket.
absl::Status CreateVhostBlkController(const VhostBlkControllerOptions& options);

// Stops listening and frees the controller, then calls done on the calling thread. Refused
// (FailedPrecondition) while a front-end is connected.
void DeleteVhostBlkController(const std::string& name, absl::AnyInvocable<void(absl::Status)> done);

// SPDK's vhost_controller_set_coalescing: above `iops_threshold` requests per second on a
// queue, guest interrupts are delayed by up to delay_base_us scaled by the excess. 0 disables.
absl::Status SetVhostCoalescing(const std::string& name, uint32_t delay_base_us,
                                uint32_t iops_threshold);

// vhost_get_controllers' answer (one controller when `name` is not empty), with per-queue
// counters gathered on the queues' threads; done runs on the calling thread.
void GetVhostControllers(const std::string& name,
                         absl::AnyInvocable<void(absl::StatusOr<rpc::Json>)> done);

// The vhost_create_blk_controller (and coalescing) calls that recreate every controller.
void WriteVhostBlkConfig(rpc::Json& config);

// Deletes every controller (at shutdown: connected front-ends are disconnected), then done.
void DeleteAllVhostControllers(absl::AnyInvocable<void()> done);

}  // namespace pollux
