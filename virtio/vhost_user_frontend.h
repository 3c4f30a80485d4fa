// The front-end side of a vhost-user connection: one Unix socket to a back-end, messages with
// file descriptors, every reply checked. Control path only: calls block the calling thread
// for at most the reply timeout, so a back-end that hangs costs a bounded wait and an error,
// never a stuck thread.
//
// Threads: one owner at a time (the controller's, the app thread). Not thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pollux/virtio/vhost_user_protocol.h"

namespace pollux {

class VhostUserFrontend {
 public:
  // How long a reply may take before the back-end is declared hung.
  static constexpr std::chrono::milliseconds kDefaultReplyTimeout{3000};

  // Connects to the back-end listening on `path`.
  static absl::StatusOr<VhostUserFrontend> Connect(
      const std::string& path, std::chrono::milliseconds reply_timeout = kDefaultReplyTimeout);

  VhostUserFrontend() = default;
  VhostUserFrontend(VhostUserFrontend&& other) noexcept;
  VhostUserFrontend& operator=(VhostUserFrontend&& other) noexcept;
  VhostUserFrontend(const VhostUserFrontend&) = delete;
  VhostUserFrontend& operator=(const VhostUserFrontend&) = delete;
  ~VhostUserFrontend();

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  bool connected() const { return fd_ >= 0; }
  // Closes the socket (the back-end sees the front-end gone).
  void Close();

  // After SET_PROTOCOL_FEATURES: whether the back-end acknowledges messages on request.
  void set_reply_ack(bool on) { reply_ack_ = on; }

  // A request whose reply is a u64 (GET_FEATURES, GET_PROTOCOL_FEATURES, GET_QUEUE_NUM).
  absl::StatusOr<uint64_t> GetU64(vhost_user::Request request);
  // A request with a u64 payload and no reply of its own (SET_FEATURES,
  // SET_PROTOCOL_FEATURES, SET_VRING_KICK/CALL with `fd`). With REPLY_ACK, waits for the ack.
  absl::Status SetU64(vhost_user::Request request, uint64_t value, int fd = -1);
  // SET_OWNER (no payload).
  absl::Status SetOwner();
  absl::Status SetMemTable(const vhost_user::MemoryTable& table, const int* fds, int fd_count);
  absl::Status SetVringState(vhost_user::Request request, uint32_t index, uint32_t num);
  absl::Status SetVringAddress(const vhost_user::VringAddress& address);
  // GET_VRING_BASE: stops the ring; returns the back-end's next avail index (packed: the
  // encoded state).
  absl::StatusOr<uint32_t> GetVringBase(uint32_t index);
  // GET_CONFIG: `size` bytes of configuration space from offset 0.
  absl::StatusOr<std::vector<uint8_t>> GetConfig(uint32_t size);

 private:
  absl::Status Send(vhost_user::Request request, uint32_t flags, const void* payload,
                    uint32_t size, const int* fds, int fd_count);
  // Receives the reply to `request`: header checked (request code, version, reply flag) and
  // a payload of exactly `expected_size` bytes copied to `payload`.
  absl::Status Receive(vhost_user::Request request, void* payload, uint32_t expected_size);
  // Send, then the ack when REPLY_ACK is on.
  absl::Status SendAcked(vhost_user::Request request, const void* payload, uint32_t size,
                         const int* fds = nullptr, int fd_count = 0);
  absl::Status ReadFully(void* data, size_t size, const char* what);
  // Marks the connection unusable after a protocol error (later calls fail at once).
  absl::Status Broken(absl::Status status);

  int fd_ = -1;
  std::string path_;
  std::chrono::milliseconds reply_timeout_{kDefaultReplyTimeout};
  bool reply_ack_ = false;
};

}  // namespace pollux
