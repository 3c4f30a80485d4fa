// NBD's transmission phase without a socket: decoding and checking a request header, and
// encoding the header of its reply (simple or structured). The connection (nbd_connection.h)
// moves the bytes.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pollux::nbd {

struct Request {
  uint16_t flags = 0;
  uint16_t type = 0;
  uint64_t cookie = 0;
  uint64_t offset = 0;
  uint32_t length = 0;
};

// What the handshake settled for this connection.
struct TransmissionParams {
  uint64_t size_bytes = 0;
  uint32_t block_size = 512;
  uint32_t max_payload = 32u << 20;
  bool readonly = false;
  bool can_trim = false;
  bool structured_replies = false;
  bool base_allocation = false;
};

// Decodes the kRequestSize bytes at `p`; false when the magic is wrong (the stream cannot be
// trusted any more: close).
bool DecodeRequest(const uint8_t* p, Request& request);

// 0, or the NBD error the request gets without reaching the bdev: an unknown command or flag
// (EINVAL), a read or write longer than the maximum payload (EOVERFLOW), a zero length or a
// range not in whole blocks (EINVAL), past the end (ENOSPC for writes, EINVAL otherwise, as
// QEMU's server), a change to a read-only export (EPERM).
uint32_t CheckRequest(const Request& request, const TransmissionParams& params);

// Bytes a WRITE carries after its header, whether or not it is accepted: they must be read
// (and dropped when it is refused) to find the next request.
inline uint64_t PayloadLength(const Request& request) {
  return request.type == 1 /* kCmdWrite */ ? request.length : 0;
}

// The largest reply header EncodeReplyHeader writes.
inline constexpr size_t kMaxReplyHeaderSize = 32;

// Writes the bytes of the reply to `request` that precede its data, and returns their count:
// a simple reply, or one structured chunk flagged done (OFFSET_DATA for a read, BLOCK_STATUS
// with one extent of allocated data, ERROR, or NONE). A successful READ's `length` bytes of
// data follow it.
size_t EncodeReplyHeader(uint8_t* out, const Request& request, uint32_t error,
                         const TransmissionParams& params);

// The NBD error for a host errno (EIO for those the protocol has no name for).
uint32_t NbdErrorFromErrno(int error_number);

}  // namespace pollux::nbd
