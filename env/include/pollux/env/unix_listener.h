// A listening Unix stream socket at a path, for the servers of a target (RPC, NBD). A socket
// file left by a process that died (connect() is refused) is replaced; a live one, or a path
// that is not a socket, is an error. The file is removed on close if it is still the one this
// listener created.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace pollux {

class UnixListener {
 public:
  // Binds and listens (non-blocking, close-on-exec), with `mode` set before the first client
  // can connect. `noun` names the socket in errors and the log ("RPC socket"), `component`
  // is the log line's component.
  static absl::StatusOr<UnixListener> Listen(const std::string& path, std::string_view noun,
                                             std::string_view component, uint32_t mode,
                                             int backlog = 128);

  UnixListener() = default;
  UnixListener(UnixListener&& other) noexcept { *this = std::move(other); }
  UnixListener& operator=(UnixListener&& other) noexcept;
  ~UnixListener() { Close(); }

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  void Close();

 private:
  int fd_ = -1;
  std::string path_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

}  // namespace pollux
