// Back-end processes for the initiator's tests: a program that serves a Unix socket, started
// by the test and killed at its end; qemu-storage-daemon (a target nobody in this project
// wrote) is one, started with a file (or QEMU's null-co driver) exported over vhost-user-blk.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace pollux::testing {

class SocketServerProcess {
 public:
  // Runs `argv` and waits (up to 20 s) until `socket` exists.
  SocketServerProcess(std::vector<std::string> argv, const std::string& socket);
  ~SocketServerProcess();  // SIGTERM, then SIGKILL after 5 s
  SocketServerProcess(const SocketServerProcess&) = delete;
  SocketServerProcess& operator=(const SocketServerProcess&) = delete;

  // Whether it started and listens (the socket exists); the reason otherwise.
  bool ready() const { return ready_; }
  const std::string& error() const { return error_; }
  // Kills it at once (a back-end that dies mid-I/O).
  void Kill();

 protected:
  SocketServerProcess() = default;
  void Start(std::vector<std::string> argv, const std::string& socket);

  pid_t pid_ = -1;
  bool ready_ = false;
  std::string error_;
};

class QsdProcess : public SocketServerProcess {
 public:
  // `image`: a file to export (raw), or "" for the null-co driver of `null_size` bytes.
  QsdProcess(const std::string& socket, const std::string& image, int num_queues,
             uint64_t null_size = 1ull << 30);

  static std::string Path();
};

}  // namespace pollux::testing
