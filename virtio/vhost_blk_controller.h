// A vhost-user-blk controller: one socket, the bdev it serves, the pollux threads its queues
// run on (one per core of its cpumask, queue i on thread i mod n), and at most one connected
// front-end (a session) at a time.
//
// Threads:
// - the home thread (the app thread that created it) owns the bdev descriptor and handles
//   RPC: creation, deletion, info, coalescing;
// - rte_vhost's event thread calls the On* callbacks. They gather what a queue needs and hand
//   it to the queue's thread by message; to stop a device they wait (on rte_vhost's thread,
//   never on a pollux thread) until every queue has drained and let go of guest memory;
// - each queue runs on its own thread (VhostBlkQueue).
// `mutex_` guards the session state the first two share (control path only).
// Private header.
#pragma once

#include <rte_vhost.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pollux/bdev/bdev_desc.h"
#include "pollux/rpc/json_rpc.h"
#include "pollux/virtio/vhost_blk.h"
#include "vhost_blk_queue.h"

namespace pollux {

class Thread;

// The callbacks rte_vhost calls for every controller's socket (vhost_blk_target.cc).
const rte_vhost_device_ops* VhostDeviceOps();

// The queue threads, one per core, shared by every controller with that core in its cpumask
// (a thread per controller would cost every reactor pass a Thread's bookkeeping for each idle
// controller). Reference-counted; the last release ends the thread. A scheduler may move a
// queue thread within the cores that every controller it serves allows: its cpumask is the
// intersection of theirs (`cpus`, each holding `cpu`). App thread only.
absl::StatusOr<Thread*> AcquireVhostThread(int cpu, const std::vector<int>& cpus);
void ReleaseVhostThread(Thread* thread, const std::vector<int>& cpus);

class VhostBlkController {
 public:
  // On the home thread: opens the bdev and creates the queue threads. Listen() starts the
  // socket.
  static absl::StatusOr<std::unique_ptr<VhostBlkController>> Create(
      const VhostBlkControllerOptions& options, std::string socket_path);
  ~VhostBlkController();
  VhostBlkController(const VhostBlkController&) = delete;
  VhostBlkController& operator=(const VhostBlkController&) = delete;

  const VhostBlkControllerOptions& options() const { return options_; }
  const std::string& name() const { return options_.name; }
  const std::string& socket_path() const { return socket_path_; }
  bool connected();

  // Registers the socket with rte_vhost and starts listening.
  absl::Status Listen();
  // Stops listening (a connected front-end is disconnected; its device stopped first), on a
  // helper OS thread because rte_vhost may call our callbacks from inside; then the queue
  // threads exit and the descriptor closes; done runs on the home thread.
  void Shutdown(absl::AnyInvocable<void()> done);

  void SetCoalescing(uint32_t delay_base_us, uint32_t iops_threshold);
  uint32_t coalescing_delay_us() const { return coalescing_delay_us_; }
  uint32_t coalescing_iops_threshold() const { return coalescing_iops_threshold_; }

  // SPDK's vhost_get_controllers entry, with each queue's counters (gathered on the queues'
  // threads); done on the home thread.
  void Info(absl::AnyInvocable<void(rpc::Json)> done);

  // rte_vhost's callbacks, on its event thread (dispatched by vid in vhost_blk_target.cc).
  int OnNewConnection(int vid);
  void OnDestroyConnection(int vid);
  int OnNewDevice(int vid);
  void OnDestroyDevice(int vid);
  void OnVringStateChanged(int vid, uint16_t vring, bool ready);
  rte_vhost_msg_result OnMessageBefore(int vid, void* message);
  rte_vhost_msg_result OnMessageAfter(int vid, void* message);

  static uint64_t OfferedFeatures(const VhostBlkControllerOptions& options);

 private:
  VhostBlkController(const VhostBlkControllerOptions& options, std::string socket_path);

  // The coalescing settings in a queue's units (TSC ticks, requests per rate check).
  struct QueueCoalescing {
    uint64_t delay_tsc;
    uint32_t threshold_per_interval;
  };
  QueueCoalescing queue_coalescing() const;

  // Home thread: runs `step` on every queue's thread (the step calls `next` there once it is
  // done, at once or later), then `done` on the home thread. A queue created meanwhile reads
  // the device the caller has just changed under mutex_.
  using QueueStep =
      absl::AnyInvocable<void(VhostBlkQueue& queue, absl::AnyInvocable<void()> next) const>;
  void ForEachQueue(QueueStep step, absl::AnyInvocable<void()> done);
  void OnBdevRemoved();
  // Home thread: the bdev grew. The queues take the new size, then the front-end is told the
  // config space changed (VHOST_USER_BACKEND_CONFIG_CHANGE_MSG), and QEMU tells the guest.
  void OnBdevResized(uint64_t capacity_sectors);
  void NotifyConfigChange();
  // Home thread: frees the queues on their threads, releases the threads, closes the bdev.
  void DestroyQueues(absl::AnyInvocable<void()> done);
  // With mutex_ held, on rte_vhost's thread.
  int StartDevice();
  void StopDevice();
  void FillConfig(uint8_t* config, uint32_t offset, uint32_t size);
  VhostBlkQueue& QueueAt(uint16_t vring);

  const VhostBlkControllerOptions options_;
  const std::string socket_path_;
  Thread* home_ = nullptr;
  std::vector<Thread*> threads_;
  std::vector<int> cpus_;
  std::unique_ptr<BdevDesc> desc_;  // home thread
  bool registered_ = false;         // with rte_vhost
  uint32_t coalescing_delay_us_ = 0;
  uint32_t coalescing_iops_threshold_ = 0;

  std::mutex mutex_;
  VhostBlkDevice device_;  // what new sessions see; desc nulled when the bdev goes
  int vid_ = -1;           // the connected front-end
  bool started_ = false;   // its queues run
  bool needs_restart_ = false;
  std::vector<bool> vring_ready_;
  // rte_vhost lists a vring's requests to resubmit when its kick fd is set (after a
  // reconnection); the list is taken once, at the next start, and never again.
  std::vector<bool> resubmit_pending_;
  std::vector<std::unique_ptr<VhostBlkQueue>> queues_;  // by vring index, created on first use
  std::shared_ptr<const GuestMemory> memory_;
};

}  // namespace pollux
