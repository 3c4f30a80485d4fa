#include "message_channel.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace pollux::testing::vhost_backend {

namespace {

// Reads exactly `len` bytes; 0 when the peer closed before the first byte, -1 on error (errno)
// or on a close midway (errno 0).
ssize_t ReadFully(int fd, uint8_t* data, size_t len) {
  size_t done = 0;
  while (done < len) {
    const ssize_t n = recv(fd, data + done, len - done, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) {
      if (done == 0) return 0;
      errno = 0;
      return -1;
    }
    done += static_cast<size_t>(n);
  }
  return static_cast<ssize_t>(done);
}

std::string Errno(const char* what) {
  return errno == 0 ? std::string(what) + ": connection closed mid-message"
                    : std::string(what) + ": " + std::strerror(errno);
}

}  // namespace

ReceiveStatus ReceiveMessage(int fd, Message* message, std::string* error) {
  message->fds.clear();
  auto* header = reinterpret_cast<uint8_t*>(&message->header);
  iovec iov{header, sizeof(message->header)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * vhost_user::kMaxMemRegions)];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  // A reset is the front-end closing with our reply unread: a disconnect like any other.
  if (n == 0 || (n < 0 && errno == ECONNRESET)) return ReceiveStatus::kClosed;
  if (n < 0) {
    *error = Errno("recvmsg");
    return ReceiveStatus::kError;
  }
  // Take ownership of every fd first, so that each is closed whatever happens next.
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int received;
      std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      message->fds.emplace_back(received);
    }
  }
  if (msg.msg_flags & MSG_CTRUNC) {
    *error = "more file descriptors than any message carries (ancillary data truncated)";
    return ReceiveStatus::kError;
  }
  if (static_cast<size_t>(n) < sizeof(message->header) &&
      ReadFully(fd, header + n, sizeof(message->header) - n) <= 0) {
    *error = Errno("reading a message header");
    return ReceiveStatus::kError;
  }
  const vhost_user::MessageHeader& h = message->header;
  if ((h.flags & vhost_user::kVersionMask) != vhost_user::kVersion) {
    *error = "message " + std::to_string(h.request) + " has version " +
             std::to_string(h.flags & vhost_user::kVersionMask) + ", not 1";
    return ReceiveStatus::kError;
  }
  if (h.size > message->payload.size()) {
    *error = "message " + std::to_string(h.request) + " claims a payload of " +
             std::to_string(h.size) + " bytes, more than any message has";
    return ReceiveStatus::kError;
  }
  if (h.size > 0 && ReadFully(fd, message->payload.data(), h.size) <= 0) {
    *error = Errno("reading a message payload");
    return ReceiveStatus::kError;
  }
  return ReceiveStatus::kOk;
}

bool SendReply(int fd, uint32_t request, const void* payload, uint32_t payload_size) {
  vhost_user::MessageHeader header{request, vhost_user::kVersion | vhost_user::kFlagReply,
                                   payload_size};
  iovec iov[2] = {{&header, sizeof(header)}, {const_cast<void*>(payload), payload_size}};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = payload_size > 0 ? 2 : 1;
  size_t total = sizeof(header) + payload_size;
  // MSG_NOSIGNAL: a front-end that went away must not kill the test process with SIGPIPE.
  while (total > 0) {
    const ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      VHOST_TEST_LOG("sending a reply: %s", std::strerror(errno));
      return false;
    }
    total -= static_cast<size_t>(n);
    // Skip what was sent (a short write on a Unix stream socket is rare but allowed).
    size_t sent = static_cast<size_t>(n);
    while (sent > 0 && msg.msg_iovlen > 0) {
      iovec& first = msg.msg_iov[0];
      const size_t step = std::min(sent, first.iov_len);
      first.iov_base = static_cast<uint8_t*>(first.iov_base) + step;
      first.iov_len -= step;
      sent -= step;
      if (first.iov_len == 0) {
        ++msg.msg_iov;
        --msg.msg_iovlen;
      }
    }
  }
  return true;
}

}  // namespace pollux::testing::vhost_backend
