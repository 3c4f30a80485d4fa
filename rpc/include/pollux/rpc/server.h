// The JSON-RPC 2.0 server on a Unix socket. It owns no thread: the app thread calls Poll()
// when fd() is readable (and now and then in poll mode). Serves many clients at once; handles
// partial reads and pipelined requests; answers each request in order of completion with its id.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "pollux/rpc/method_registry.h"

namespace pollux::rpc {

// Limits that keep one client from taking the server from the others (docs/rpc.md). pollux-tgt
// and pollux-perf set them from --rpc-max-request-size, --rpc-max-connections and
// --rpc-request-timeout.
struct RpcServerOptions {
  // A request (one JSON value) larger than this gets an error and its connection is closed.
  size_t max_request_bytes = kMaxMessageBytes;
  // Connections beyond this many are answered with an error and closed at once.
  size_t max_connections = 64;
  // A request begun and not completed within this time gets an error and its connection is
  // closed (a client that sent half a request and went silent); 0: no limit.
  std::chrono::milliseconds request_timeout{30'000};
};

class RpcServer {
 public:
  // Binds `path` with mode 0600. A path held by a live server (a connect succeeds) is refused:
  // `RPC socket /var/tmp/pollux.sock is in use by another process`; a stale socket file is
  // replaced. Errors name the path and the reason.
  static absl::StatusOr<std::unique_ptr<RpcServer>> Listen(const std::string& path,
                                                           MethodRegistry& methods,
                                                           RpcServerOptions options = {});
  ~RpcServer();  // closes every connection and removes the socket file
  RpcServer(const RpcServer&) = delete;
  RpcServer& operator=(const RpcServer&) = delete;

  // Readable when there is something for Poll() to do (an epoll fd over the listening socket,
  // every connection and the timer of the request timeout).
  int fd() const;

  // Accepts, reads, dispatches complete requests and flushes replies without blocking. Returns
  // true when it did any work. App thread only.
  bool Poll();

  const std::string& path() const;
  size_t connection_count() const;

 private:
  class Impl;
  explicit RpcServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pollux::rpc
