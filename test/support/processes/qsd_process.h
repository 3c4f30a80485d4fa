// Back-end processes for the tests of the initiator and of real guests: a program that serves
// a Unix socket, started by the test and stopped at its end; qemu-storage-daemon (a target
// nobody in this project wrote) is one, started with a file (or QEMU's null-co driver)
// exported over vhost-user-blk.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "child_process.h"

namespace pollux::testing {

class SocketServerProcess {
 public:
  // Runs `argv` and waits (up to 20 s) until `socket` exists; its output goes to `log_path`
  // ("" keeps the test's own).
  SocketServerProcess(std::vector<std::string> argv, const std::string& socket,
                      const std::string& log_path = "");
  ~SocketServerProcess();  // SIGTERM, then SIGKILL after 5 s
  SocketServerProcess(const SocketServerProcess&) = delete;
  SocketServerProcess& operator=(const SocketServerProcess&) = delete;

  // Whether it started and listens (the socket exists); the reason otherwise.
  bool ready() const { return ready_; }
  const std::string& error() const { return error_; }
  // Kills it at once (a back-end that dies mid-I/O).
  void Kill();
  // Whether it still runs.
  bool running() { return process_.running(); }

 protected:
  SocketServerProcess() = default;
  void Start(std::vector<std::string> argv, const std::string& socket,
             const std::string& log_path = "");

  ChildProcess process_;
  bool ready_ = false;
  std::string error_;
};

// What qemu-storage-daemon exports.
struct QsdExport {
  std::string socket;
  std::string image;  // a raw file, or "" for the null-co driver of `null_size` bytes
  int num_queues = 1;
  uint64_t null_size = 1ull << 30;
  bool writable = true;  // writable=off: the guest sees VIRTIO_BLK_F_RO
  std::string log_path;  // its stdout and stderr; "" keeps the test's own
};

class QsdProcess : public SocketServerProcess {
 public:
  explicit QsdProcess(const QsdExport& spec);
  // `image`: a file to export (raw), or "" for the null-co driver of `null_size` bytes.
  QsdProcess(const std::string& socket, const std::string& image, int num_queues,
             uint64_t null_size = 1ull << 30);

  static std::string Path();
};

}  // namespace pollux::testing
