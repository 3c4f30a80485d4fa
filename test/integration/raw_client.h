// A raw JSON-RPC client for integration tests: bytes pollux-rpc would never send, and replies
// read one JSON value at a time.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

namespace pollux::testing {

// A raw client, for bytes pollux-rpc would never send.
class RawClient {
 public:
  explicit RawClient(const std::string& path) {
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    timeval tv{20, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  ~RawClient() { close(fd_); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;
  bool connected() const { return connected_; }
  int fd() const { return fd_; }
  // How long a receive (and a send) may block before it gives up.
  void SetTimeout(int seconds) {
    timeval tv{seconds, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  }
  bool Send(const std::string& bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }
  // Reads one JSON reply; null on EOF or timeout.
  nlohmann::json ReadReply() {
    while (true) {
      // Replies may arrive back to back in one read: take the first JSON value only.
      try {
        std::istringstream in(buffer_);
        nlohmann::json parsed;
        in >> parsed;
        std::streamoff used = in.tellg();
        buffer_.erase(0, used < 0 ? buffer_.size() : static_cast<size_t>(used));
        return parsed;
      } catch (const nlohmann::json::exception&) {
        // incomplete: read more
      }
      char chunk[4096];
      ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
      if (n <= 0) return nullptr;
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }
  // True when the server closed the connection: EOF, or a reset because it closed with our
  // unread bytes in its buffer. A receive timeout (EAGAIN) is not a close.
  bool Closed() {
    char c;
    ssize_t n = recv(fd_, &c, 1, 0);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
  }

 private:
  int fd_;
  bool connected_ = false;
  std::string buffer_;
};

}  // namespace pollux::testing
