#include "vhost_user_frontend.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_format.h"

namespace pollux {

using vhost_user::MessageHeader;
using vhost_user::Request;

namespace {

absl::Status Errno(const std::string& what, int err) {
  return absl::UnavailableError(absl::StrFormat("%s: %s", what, strerror(err)));
}

}  // namespace

absl::StatusOr<VhostUserFrontend> VhostUserFrontend::Connect(
    const std::string& path, std::chrono::milliseconds reply_timeout) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(address.sun_path)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "socket path \"%s\" must be 1 to %u characters", path, sizeof(address.sun_path) - 1));
  }
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket", errno);
  VhostUserFrontend frontend;
  frontend.fd_ = fd;
  frontend.path_ = path;
  frontend.reply_timeout_ = reply_timeout;
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    return Errno(absl::StrFormat("connect to \"%s\"", path), errno);
  }
  return frontend;
}

VhostUserFrontend::VhostUserFrontend(VhostUserFrontend&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      path_(std::move(other.path_)),
      reply_timeout_(other.reply_timeout_),
      reply_ack_(other.reply_ack_) {}

VhostUserFrontend& VhostUserFrontend::operator=(VhostUserFrontend&& other) noexcept {
  if (this != &other) {
    Close();
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
    reply_timeout_ = other.reply_timeout_;
    reply_ack_ = other.reply_ack_;
  }
  return *this;
}

VhostUserFrontend::~VhostUserFrontend() { Close(); }

void VhostUserFrontend::Close() {
  if (fd_ >= 0) close(std::exchange(fd_, -1));
}

absl::Status VhostUserFrontend::Broken(absl::Status status) {
  Close();
  return status;
}

absl::Status VhostUserFrontend::Send(Request request, uint32_t flags, const void* payload,
                                     uint32_t size, const int* fds, int fd_count) {
  if (fd_ < 0) return absl::UnavailableError("the back-end connection is closed");
  MessageHeader header{static_cast<uint32_t>(request), vhost_user::kVersion | flags, size};
  iovec iov[2] = {{&header, sizeof(header)}, {const_cast<void*>(payload), size}};
  msghdr message{};
  message.msg_iov = iov;
  message.msg_iovlen = size != 0 ? 2 : 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * vhost_user::kMaxMemRegions)];
  if (fd_count > 0) {
    const size_t fd_bytes = sizeof(int) * static_cast<size_t>(fd_count);
    message.msg_control = control;
    message.msg_controllen = CMSG_SPACE(fd_bytes);
    cmsghdr* cmsg = CMSG_FIRSTHDR(&message);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(fd_bytes);
    std::memcpy(CMSG_DATA(cmsg), fds, fd_bytes);
  }
  const size_t total = sizeof(header) + size;
  ssize_t sent;
  do {
    sent = sendmsg(fd_, &message, MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) {
    return Broken(Errno(absl::StrFormat("sending %s", vhost_user::RequestName(header.request)),
                        errno));
  }
  if (static_cast<size_t>(sent) != total) {
    // A Unix stream socket takes a message this small whole or not at all in practice; a
    // partial send leaves the stream unframed, so the connection cannot go on.
    return Broken(absl::UnavailableError(absl::StrFormat(
        "sending %s: only %d of %u bytes went out", vhost_user::RequestName(header.request),
        sent, total)));
  }
  return absl::OkStatus();
}

absl::Status VhostUserFrontend::ReadFully(void* data, size_t size, const char* what) {
  auto* out = static_cast<uint8_t*>(data);
  size_t done = 0;
  const auto deadline = std::chrono::steady_clock::now() + reply_timeout_;
  while (done < size) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fd_, POLLIN, 0};
    int ready = left.count() > 0 ? poll(&p, 1, static_cast<int>(left.count())) : 0;
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return Broken(Errno(absl::StrFormat("waiting for %s", what), errno));
    if (ready == 0) {
      return Broken(absl::DeadlineExceededError(absl::StrFormat(
          "no %s from the back-end within %d ms: it hangs", what, reply_timeout_.count())));
    }
    ssize_t n = recv(fd_, out + done, size - done, MSG_CMSG_CLOEXEC);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return Broken(Errno(absl::StrFormat("receiving %s", what), errno));
    if (n == 0) {
      return Broken(absl::UnavailableError(
          absl::StrFormat("the back-end closed the connection before its %s", what)));
    }
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status VhostUserFrontend::Receive(Request request, void* payload, uint32_t expected_size) {
  if (fd_ < 0) return absl::UnavailableError("the back-end connection is closed");
  const char* name = vhost_user::RequestName(static_cast<uint32_t>(request));
  const std::string what = absl::StrFormat("reply to %s", name);
  MessageHeader header;
  if (absl::Status s = ReadFully(&header, sizeof(header), what.c_str()); !s.ok()) return s;
  if (header.request != static_cast<uint32_t>(request)) {
    return Broken(absl::DataLossError(
        absl::StrFormat("the back-end answered %s with a message of type %s", name,
                        vhost_user::RequestName(header.request))));
  }
  if ((header.flags & vhost_user::kVersionMask) != vhost_user::kVersion ||
      (header.flags & vhost_user::kFlagReply) == 0) {
    return Broken(absl::DataLossError(absl::StrFormat(
        "the reply to %s has flags 0x%x (expected version 1 and the reply bit)", name,
        header.flags)));
  }
  if (header.size != expected_size) {
    return Broken(absl::DataLossError(absl::StrFormat(
        "the reply to %s carries %u bytes, expected %u", name, header.size, expected_size)));
  }
  return ReadFully(payload, expected_size, what.c_str());
}

absl::Status VhostUserFrontend::SendAcked(Request request, const void* payload, uint32_t size,
                                          const int* fds, int fd_count) {
  uint32_t flags = reply_ack_ ? vhost_user::kFlagNeedReply : 0;
  if (absl::Status s = Send(request, flags, payload, size, fds, fd_count); !s.ok()) return s;
  if (!reply_ack_) return absl::OkStatus();
  uint64_t ack = 0;
  if (absl::Status s = Receive(request, &ack, sizeof(ack)); !s.ok()) return s;
  if (ack != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "the back-end refused %s (ack %u)", vhost_user::RequestName(static_cast<uint32_t>(request)),
        ack));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> VhostUserFrontend::GetU64(Request request) {
  if (absl::Status s = Send(request, 0, nullptr, 0, nullptr, 0); !s.ok()) return s;
  uint64_t value = 0;
  if (absl::Status s = Receive(request, &value, sizeof(value)); !s.ok()) return s;
  return value;
}

absl::Status VhostUserFrontend::SetU64(Request request, uint64_t value, int fd) {
  return SendAcked(request, &value, sizeof(value), fd >= 0 ? &fd : nullptr, fd >= 0 ? 1 : 0);
}

absl::Status VhostUserFrontend::SetOwner() { return SendAcked(Request::kSetOwner, nullptr, 0); }

absl::Status VhostUserFrontend::SetMemTable(const vhost_user::MemoryTable& table, const int* fds,
                                            int fd_count) {
  // The payload is the header fields and the regions actually used, as QEMU sends it.
  const uint32_t size = static_cast<uint32_t>(offsetof(vhost_user::MemoryTable, regions) +
                                              table.nregions * sizeof(vhost_user::MemoryRegion));
  return SendAcked(Request::kSetMemTable, &table, size, fds, fd_count);
}

absl::Status VhostUserFrontend::SetVringState(Request request, uint32_t index, uint32_t num) {
  vhost_user::VringState state{index, num};
  return SendAcked(request, &state, sizeof(state));
}

absl::Status VhostUserFrontend::SetVringAddress(const vhost_user::VringAddress& address) {
  return SendAcked(Request::kSetVringAddr, &address, sizeof(address));
}

absl::StatusOr<uint32_t> VhostUserFrontend::GetVringBase(uint32_t index) {
  vhost_user::VringState state{index, 0};
  if (absl::Status s = Send(Request::kGetVringBase, 0, &state, sizeof(state), nullptr, 0);
      !s.ok()) {
    return s;
  }
  vhost_user::VringState reply{};
  if (absl::Status s = Receive(Request::kGetVringBase, &reply, sizeof(reply)); !s.ok()) return s;
  if (reply.index != index) {
    return Broken(absl::DataLossError(absl::StrFormat(
        "the reply to GET_VRING_BASE names queue %u, asked for queue %u", reply.index, index)));
  }
  return reply.num;
}

absl::StatusOr<std::vector<uint8_t>> VhostUserFrontend::GetConfig(uint32_t size) {
  if (size > vhost_user::kMaxConfigSize) {
    return absl::InvalidArgumentError("configuration window larger than the protocol allows");
  }
  vhost_user::ConfigSpace config{};
  config.offset = 0;
  config.size = size;
  const uint32_t payload = static_cast<uint32_t>(vhost_user::kConfigHeaderSize + size);
  if (absl::Status s = Send(vhost_user::Request::kGetConfig, 0, &config, payload, nullptr, 0);
      !s.ok()) {
    return s;
  }
  // A back-end that fails GET_CONFIG answers with an empty payload (libvhost-user does):
  // read the header first to tell that from a malformed reply.
  MessageHeader header;
  if (absl::Status s = ReadFully(&header, sizeof(header), "reply to GET_CONFIG"); !s.ok()) {
    return s;
  }
  if (header.request != static_cast<uint32_t>(Request::kGetConfig) ||
      (header.flags & vhost_user::kFlagReply) == 0 ||
      (header.flags & vhost_user::kVersionMask) != vhost_user::kVersion) {
    return Broken(absl::DataLossError(absl::StrFormat(
        "the back-end answered GET_CONFIG with a message of type %s, flags 0x%x",
        vhost_user::RequestName(header.request), header.flags)));
  }
  if (header.size == 0) {
    return absl::FailedPreconditionError("the back-end could not read its configuration space");
  }
  if (header.size != payload) {
    return Broken(absl::DataLossError(absl::StrFormat(
        "the reply to GET_CONFIG carries %u bytes, expected %u", header.size, payload)));
  }
  vhost_user::ConfigSpace reply{};
  if (absl::Status s = ReadFully(&reply, payload, "reply to GET_CONFIG"); !s.ok()) return s;
  if (reply.size != size || reply.offset != 0) {
    return Broken(absl::DataLossError(absl::StrFormat(
        "the reply to GET_CONFIG describes offset %u size %u, asked for offset 0 size %u",
        reply.offset, reply.size, size)));
  }
  return std::vector<uint8_t>(reply.region, reply.region + size);
}

}  // namespace pollux
