// One virtqueue of a vhost-user-blk controller, served by a poller on one pollux Thread: it
// pops the guest's descriptor chains, turns each into a bdev request whose iovecs point
// straight into guest memory, and returns completions through the used ring in batches.
//
// Notifications: while the poller finds work, guest kicks stay off; they are enabled only in
// the poller's arm hook, before the reactor sleeps (the kick fd is the poller's wake fd), and
// the reactor polls once more after arming. Guest interrupts go once per published batch, and
// only when the guest asked for one.
//
// Life cycle: the controller Starts a queue when rte_vhost reports the device running and
// Stops it (on the queue's thread) before rte_vhost may unmap guest memory: Stop stops
// popping, waits for the bdev requests in flight, publishes their completions, and reports the
// ring position. Counters outlive sessions.
//
// Threads: every member runs on the queue's thread, except where said. Private header.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "device_ring.h"
#include "pollux/bdev/bdev_desc.h"
#include "pollux/reactor/io_channel.h"
#include "pollux/reactor/poller.h"
#include "pollux/rpc/json_rpc.h"

namespace pollux {

// What the guest sees of the device, and the descriptor its requests go to. Fixed for the life
// of a session (the controller's bdev cannot change under a running guest).
struct VhostBlkDevice {
  BdevDesc* desc = nullptr;  // nullptr once the bdev is gone: requests fail with IOERR
  uint32_t block_size = 512;
  uint64_t capacity_sectors = 0;  // in 512-byte sectors
  bool read_only = false;
  bool write_cache = false;
  bool discard = false;
  bool write_zeroes = false;
  uint32_t max_discard_sectors = 0;
  uint32_t max_write_zeroes_sectors = 0;
  // At most 1: the decoder submits one segment per request (vhost_blk_request.h).
  uint32_t max_discard_segments = 1;
  uint32_t max_write_zeroes_segments = 1;
  char id[20] = {};  // GET_ID's answer (VIRTIO_BLK_ID_BYTES)
};

// Everything a queue needs to start, gathered by the controller on rte_vhost's thread.
struct VhostBlkQueueSetup {
  std::string name;  // "ctrlr0 queue 1", for log lines
  int vid = -1;
  uint16_t vring_index = 0;
  bool packed = false;
  void* desc = nullptr;
  void* driver_area = nullptr;  // split: avail ring; packed: driver event suppression
  void* device_area = nullptr;  // split: used ring; packed: device event suppression
  DeviceRingConfig ring;
  RingPosition position;
  int kick_fd = -1;
  int call_fd = -1;
  std::shared_ptr<const GuestMemory> memory;
  // Split rings with VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD: requests are tracked in the shared
  // inflight region, and `resubmit` lists the heads that were in flight when the previous
  // target went away, oldest first.
  bool track_inflight = false;
  std::vector<uint16_t> resubmit;
  VhostBlkDevice device;
};

// Per-queue counters: written by the queue's thread, read by RPC from any thread.
struct VhostBlkQueueCounters {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> kicks{0};       // guest notifications received (read from the kick fd)
  std::atomic<uint64_t> interrupts{0};  // call fd writes
  std::atomic<uint64_t> in_flight{0};
  std::atomic<uint64_t> polls_busy{0};
  std::atomic<uint64_t> polls_idle{0};
  std::atomic<uint64_t> errors{0};      // requests completed with IOERR or UNSUPP
  std::atomic<uint64_t> parks{0};       // times the queue left the polled set, idle
};

// The ring-specific engine behind a queue (VhostBlkQueueOn<Ring> in vhost_blk_queue.cc).
class VhostBlkQueueEngine {
 public:
  virtual ~VhostBlkQueueEngine() = default;
  // Stops popping; calls done(position) on the queue's thread once every request in flight
  // has completed and been published.
  virtual void Stop(absl::AnyInvocable<void(RingPosition)> done) = 0;
  // The bdev is going away: fail new requests, and call done() once nothing is in flight on
  // the bdev any more (the channel is released then).
  virtual void DetachBdev(absl::AnyInvocable<void()> done) = 0;
  // The bdev grew: requests up to the new end pass the range check.
  virtual void SetCapacity(uint64_t sectors) = 0;
  virtual void SetCoalescing(uint64_t delay_tsc, uint32_t threshold_per_interval) = 0;
  // Reads and clears the kick fd's count into the counters (control path).
  virtual void CollectKicks() = 0;
};

// A queue: its thread, its counters, and the engine while a session runs.
class VhostBlkQueue {
 public:
  VhostBlkQueue(std::string name, Thread* thread) : name_(std::move(name)), thread_(thread) {}

  const std::string& name() const { return name_; }
  Thread* thread() const { return thread_; }
  VhostBlkQueueCounters& counters() { return counters_; }
  bool running() const { return engine_ != nullptr; }

  // On the queue's thread.
  absl::Status Start(VhostBlkQueueSetup setup);
  void Stop(absl::AnyInvocable<void(RingPosition)> done);
  void DetachBdev(absl::AnyInvocable<void()> done);
  void SetCapacity(uint64_t sectors);
  void SetCoalescing(uint64_t delay_tsc, uint32_t threshold_per_interval);
  // {"queue":..,"thread":..,"requests":..,...}. On the queue's thread.
  rpc::Json Info();

 private:
  std::string name_;
  Thread* thread_;
  VhostBlkQueueCounters counters_;
  std::unique_ptr<VhostBlkQueueEngine> engine_;
  std::unique_ptr<VhostBlkQueueEngine> retired_engine_;  // stopped, freed at the next Start
  uint64_t coalescing_delay_tsc_ = 0;
  uint32_t coalescing_threshold_ = 0;
};

}  // namespace pollux
