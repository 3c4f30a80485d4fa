// A vhost-user-blk controller, front-end side: the connection, what was negotiated, the
// queues, and which thread holds each.
//
// Life cycle: Attach (app thread) connects and starts every queue; channels claim and release
// queues on their threads; a lost back-end (the socket closed, a queue that caught the
// back-end breaking the protocol) fails what is in flight and hot-removes the bdev; Stop
// (once no channel holds a queue) stops the rings and closes the socket.
//
// Threads: the "control thread" (the one that attached, the app thread) owns the socket;
// ClaimQueue/ReleaseQueue run on any thread (a mutex: channel creation, not the data path).
// Shared ownership (std::shared_ptr): messages to other threads keep it alive.
// Private header.
#pragma once

#include <linux/virtio_blk.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "pollux/rpc/json_rpc.h"
#include "pollux/virtio/bdev_virtio_blk.h"
#include "vhost_user_frontend.h"
#include "virtio_blk_queue.h"

namespace pollux {

class Bdev;
class Thread;

class VirtioBlkController : public std::enable_shared_from_this<VirtioBlkController> {
 public:
  // Connects and negotiates; the queues are running when it returns.
  static absl::StatusOr<std::shared_ptr<VirtioBlkController>> Attach(
      const VirtioBlkControllerOptions& options);
  ~VirtioBlkController();

  const VirtioBlkControllerOptions& options() const { return options_; }
  const std::string& name() const { return options_.name; }
  uint64_t features() const { return features_; }
  bool has_feature(int bit) const { return (features_ >> bit) & 1; }
  const virtio_blk_config& config() const { return config_; }
  uint32_t block_size() const { return block_size_; }
  uint64_t block_count() const { return block_count_; }
  const VirtioBlkQueueLimits& limits() const { return limits_; }
  const std::string& serial() const { return serial_; }
  // The largest request: one descriptor's worth when the back-end limits segment sizes.
  uint64_t max_transfer_bytes() const { return max_transfer_bytes_; }

  // A free queue for `thread` (the caller's), or nullptr when every queue is taken.
  VirtioBlkQueue* ClaimQueue(Thread* thread);
  void ReleaseQueue(VirtioBlkQueue* queue);

  // After the bdev is registered: watch the socket for a lost back-end, which then fails
  // I/O in flight and hot-removes `bdev`. On the control thread.
  absl::Status Watch(Bdev* bdev);
  // A queue caught the back-end breaking the protocol (from its thread): the controller is
  // torn down as if the back-end had gone.
  void ReportBroken(const char* why);
  // Stops the rings (GET_VRING_BASE) and closes the socket. On the control thread, once no
  // queue is claimed.
  void Stop();

  // bdev_virtio_get_controllers' object.
  rpc::Json Info() const;

 private:
  explicit VirtioBlkController(const VirtioBlkControllerOptions& options);
  absl::Status Negotiate();
  absl::Status ReadConfig();
  absl::Status ShareMemory();
  absl::Status StartQueues();
  // The back-end went away or broke the protocol: on the control thread.
  void Lose(const std::string& why);
  void OnSocketReadable();

  VirtioBlkControllerOptions options_;
  VhostUserFrontend frontend_;
  Thread* control_thread_ = nullptr;
  uint64_t offered_features_ = 0;
  uint64_t features_ = 0;
  uint64_t protocol_features_ = 0;
  uint32_t backend_queues_ = 0;  // GET_QUEUE_NUM's answer (0: not asked), then the usable count
  virtio_blk_config config_{};
  uint32_t block_size_ = 512;
  uint64_t block_count_ = 0;
  VirtioBlkQueueLimits limits_;
  uint64_t max_transfer_bytes_ = 1ull << 30;
  std::string serial_;
  std::vector<std::unique_ptr<VirtioBlkQueue>> queues_;

  mutable std::mutex claims_mutex_;  // guards owners_
  std::vector<Thread*> owners_;      // by queue: the thread holding it, nullptr when free

  Bdev* bdev_ = nullptr;  // set by Watch; the bdev being removed once lost_
  bool watching_ = false;
  bool lost_ = false;
  std::string lost_reason_;
};

}  // namespace pollux
