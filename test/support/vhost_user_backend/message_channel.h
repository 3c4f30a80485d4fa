// vhost-user message framing on a stream socket: a 12-byte header, `size` payload bytes, and up
// to kMaxMemRegions file descriptors as SCM_RIGHTS on the header's first byte.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "owned_resources.h"
#include "pollux/virtio/vhost_user_protocol.h"

namespace pollux::testing::vhost_backend {

struct Message {
  vhost_user::MessageHeader header{};
  std::array<uint8_t, vhost_user::kMaxPayload> payload{};
  std::vector<UniqueFd> fds;  // closed with the message unless a handler takes them
};

enum class ReceiveStatus { kOk, kClosed, kError };

// Reads one message (blocking). kError, with a reason, for a payload larger than any message has,
// a wrong version, truncated ancillary data or a socket error: the stream cannot be trusted any
// more and the caller disconnects.
ReceiveStatus ReceiveMessage(int fd, Message* message, std::string* error);

// Sends a reply: header {request, version | reply flag, payload_size}, then the payload. False
// (logged) on a socket error.
bool SendReply(int fd, uint32_t request, const void* payload, uint32_t payload_size);

}  // namespace pollux::testing::vhost_backend
