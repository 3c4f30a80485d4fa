#include "nbd_request.h"

#include <algorithm>
#include <cerrno>

#include "nbd_protocol.h"

namespace pollux::nbd {

bool DecodeRequest(const uint8_t* p, Request& request) {
  if (Load32(p) != kRequestMagic) return false;
  request.flags = Load16(p + 4);
  request.type = Load16(p + 6);
  request.cookie = Load64(p + 8);
  request.offset = Load64(p + 16);
  request.length = Load32(p + 24);
  return true;
}

uint32_t CheckRequest(const Request& request, const TransmissionParams& params) {
  uint16_t allowed_flags = 0;
  bool changes_data = false;
  switch (request.type) {
    case kCmdRead:
      allowed_flags = params.structured_replies ? kCmdFlagDf : 0;
      break;
    case kCmdWrite:
      allowed_flags = kCmdFlagFua;
      changes_data = true;
      break;
    case kCmdTrim:
      if (!params.can_trim) return kEinval;  // not offered
      allowed_flags = kCmdFlagFua;
      changes_data = true;
      break;
    case kCmdWriteZeroes:
      allowed_flags = kCmdFlagFua | kCmdFlagNoHole;
      changes_data = true;
      break;
    case kCmdBlockStatus:
      if (!params.base_allocation) return kEinval;  // no metadata context was set
      allowed_flags = kCmdFlagReqOne;
      break;
    case kCmdFlush:
    case kCmdDisconnect:
      return request.flags == 0 ? 0 : kEinval;  // offset and length carry nothing
    default:
      return kEinval;  // CACHE and RESIZE are not offered
  }
  if ((request.flags & ~allowed_flags) != 0) return kEinval;
  if (changes_data && params.readonly) return kEperm;
  if ((request.type == kCmdRead || request.type == kCmdWrite) &&
      request.length > params.max_payload) {
    return kEoverflow;
  }
  if (request.length == 0) return kEinval;
  if (request.offset > params.size_bytes || request.length > params.size_bytes - request.offset) {
    return request.type == kCmdWrite || request.type == kCmdWriteZeroes ? kEnospc : kEinval;
  }
  // BLOCK_STATUS reads no block: any byte range is fine.
  if (request.type != kCmdBlockStatus &&
      ((request.offset | request.length) & (params.block_size - 1)) != 0) {
    return kEinval;
  }
  return 0;
}

size_t EncodeReplyHeader(uint8_t* out, const Request& request, uint32_t error,
                         const TransmissionParams& params) {
  if (!params.structured_replies) {
    uint8_t* p = Store32(out, kSimpleReplyMagic);
    p = Store32(p, error);
    p = Store64(p, request.cookie);
    return static_cast<size_t>(p - out);
  }
  auto chunk = [&](uint16_t type, uint32_t length) {
    uint8_t* p = Store32(out, kStructuredReplyMagic);
    p = Store16(p, kReplyFlagDone);
    p = Store16(p, type);
    p = Store64(p, request.cookie);
    return Store32(p, length);
  };
  uint8_t* p;
  if (error != 0) {
    p = chunk(kReplyTypeError, 6);
    p = Store32(p, error);
    p = Store16(p, 0);  // no message
  } else if (request.type == kCmdRead) {
    p = chunk(kReplyTypeOffsetData, 8 + request.length);
    p = Store64(p, request.offset);
  } else if (request.type == kCmdBlockStatus) {
    p = chunk(kReplyTypeBlockStatus, 12);
    p = Store32(p, kBaseAllocationContextId);
    p = Store32(p, request.length);  // CheckRequest kept it inside the export
    p = Store32(p, 0);               // allocated, data
  } else {
    p = chunk(kReplyTypeNone, 0);
  }
  return static_cast<size_t>(p - out);
}

uint32_t NbdErrorFromErrno(int error_number) {
  switch (error_number) {
    case EPERM:
    case EROFS:
      return kEperm;
    case ENOMEM:
      return kEnomem;
    case EINVAL:
      return kEinval;
    case ENOSPC:
    case EFBIG:
    case EDQUOT:
      return kEnospc;
    case EOVERFLOW:
      return kEoverflow;
    case ENOTSUP:
      return kEnotsup;
    case ESHUTDOWN:
      return kEshutdown;
    default:
      return kEio;
  }
}

}  // namespace pollux::nbd
