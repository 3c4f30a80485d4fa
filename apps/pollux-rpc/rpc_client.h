// A blocking JSON-RPC 2.0 client over a Unix socket, for pollux-rpc and for tests. One call at
// a time; every wait is bounded by a deadline. Not thread-safe: one thread per client.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "pollux/rpc/json_rpc.h"

namespace pollux::rpc {

class RpcClient {
 public:
  using Clock = std::chrono::steady_clock;

  // Connects to the server at `path`. Errors: Unavailable "cannot connect to <path>:
  // <strerror>", DeadlineExceeded when the server's backlog stays full until `deadline`.
  static absl::StatusOr<RpcClient> Connect(const std::string& path, Clock::time_point deadline);

  RpcClient(RpcClient&& other) noexcept;
  RpcClient& operator=(RpcClient&& other) noexcept;
  RpcClient(const RpcClient&) = delete;
  RpcClient& operator=(const RpcClient&) = delete;
  ~RpcClient();

  // Calls `method` (params omitted when null) and waits for its reply: the method's result or
  // its JSON-RPC error. Errors of the transport itself: Unavailable when the connection breaks
  // before the reply, DeadlineExceeded at `deadline`, DataLoss for a reply that is not
  // JSON-RPC.
  absl::StatusOr<RpcReply> Call(std::string_view method, const Json& params,
                                Clock::time_point deadline);

  const std::string& path() const { return path_; }

 private:
  RpcClient(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}

  // Waits until the socket is ready for `events` (POLLIN or POLLOUT) or the deadline passes.
  absl::Status Wait(short events, Clock::time_point deadline);
  absl::Status SendAll(std::string_view data, Clock::time_point deadline);
  // The next complete JSON value from the server.
  absl::StatusOr<Json> Receive(Clock::time_point deadline);

  int fd_ = -1;
  std::string path_;
  std::string in_;  // received bytes not yet returned
  uint64_t next_id_ = 1;
};

}  // namespace pollux::rpc
