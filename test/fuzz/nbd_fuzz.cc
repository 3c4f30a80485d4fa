// libFuzzer target: what an NBD client sends the server (nbd/), without a socket. The input
// is a client: its handshake bytes fed to the handshake (nbd_handshake.h) in chunks of the
// sizes it picks, against two exports, then the request stream parsed as the connection does
// it (nbd_request.h): a header, checked, a WRITE's payload skipped, a reply header encoded.
//
// Checked on every input:
//   - Consume never claims more bytes than it was given, and what the handshake sends parses
//     as option replies (the right magic, lengths that add up), the greeting and the
//     EXPORT_NAME answer (size, flags, zeroes) aside;
//   - a request CheckRequest lets through lies inside the export, in whole blocks, within the
//     maximum payload, and changes nothing on a read-only export; one it refuses gets one of
//     the protocol's errors;
//   - the reply header fits kMaxReplyHeaderSize and starts with the magic of its kind.
//
// Input (little-endian, missing bytes read as 0): export flags u8 (bit 0: 4096-byte blocks,
// bit 1: read-only, bit 2: can trim), size u32 (blocks), then chunks: length u8 (0 ends the
// handshake's chunks) and that many bytes, until the handshake leaves negotiation; after the
// chunks (and their 0, if it is next) the rest is the request stream.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "fuzz_input.h"
#include "nbd_handshake.h"
#include "nbd_protocol.h"
#include "nbd_request.h"

namespace pollux::nbd {
namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

class Exports : public HandshakeExports {
 public:
  absl::StatusOr<ExportInfo> Find(std::string_view name) override {
    if (name.empty()) name = "a";
    auto it = exports_.find(std::string(name));
    if (it == exports_.end()) return absl::NotFoundError("no such export");
    return it->second;
  }
  std::vector<std::string> Names() override { return {"a", "b"}; }
  absl::Status Open(const ExportInfo& info) override {
    return info.name == "b" ? absl::UnavailableError("going away") : absl::OkStatus();
  }
  std::map<std::string, ExportInfo> exports_;
};

// Walks option replies in `out` from `at`; false if they do not add up.
bool OptionRepliesParse(const std::string& out) {
  auto* p = reinterpret_cast<const uint8_t*>(out.data());
  size_t at = 0;
  while (at < out.size()) {
    if (out.size() - at < kOptionReplyHeaderSize || Load64(p + at) != kOptionReplyMagic) {
      return false;
    }
    uint64_t length = Load32(p + at + 16);
    if (out.size() - at - kOptionReplyHeaderSize < length) return false;
    at += kOptionReplyHeaderSize + length;
  }
  return true;
}

}  // namespace
}  // namespace pollux::nbd

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pollux::nbd;
  pollux::fuzz::FuzzInput in(data, size);
  uint8_t flags = in.U8();
  ExportInfo info;
  info.block_size = (flags & 1) ? 4096 : 512;
  info.size_bytes = uint64_t{in.U32()} * info.block_size;
  info.readonly = (flags & 2) != 0;
  info.can_trim = (flags & 4) != 0;
  Exports exports;
  info.name = "a";
  exports.exports_["a"] = info;
  info.name = "b";
  exports.exports_["b"] = info;

  Handshake handshake(exports);
  std::string greeting;
  handshake.Start(greeting);
  std::string pending;
  size_t offset = 1 + 4;
  while (offset < size && handshake.state() == Handshake::State::kNegotiating) {
    size_t chunk = data[offset++];
    if (chunk == 0) break;
    chunk = std::min(chunk, size - offset);
    pending.append(reinterpret_cast<const char*>(data + offset), chunk);
    offset += chunk;
    std::string out;
    size_t used =
        handshake.Consume(reinterpret_cast<const uint8_t*>(pending.data()), pending.size(), out);
    Check(used <= pending.size());
    pending.erase(0, used);
    // Entering transmission through EXPORT_NAME ends with its size, flags and zeroes, which
    // are no option reply: only the other outcomes are checked whole.
    if (handshake.state() != Handshake::State::kTransmission) Check(OptionRepliesParse(out));
  }
  if (offset < size && data[offset] == 0) ++offset;  // the chunks' end
  if (handshake.state() != Handshake::State::kTransmission) return 0;

  TransmissionParams params;
  params.size_bytes = handshake.chosen().size_bytes;
  params.block_size = handshake.chosen().block_size;
  params.max_payload = handshake.chosen().max_payload;
  params.readonly = handshake.chosen().readonly;
  params.can_trim = handshake.chosen().can_trim;
  params.structured_replies = handshake.structured_replies();
  params.base_allocation = handshake.base_allocation();
  // The leftover handshake bytes come first in the stream, as on a socket.
  std::string stream = pending + std::string(reinterpret_cast<const char*>(data + offset),
                                             size - std::min(offset, size));
  size_t at = 0;
  while (stream.size() - at >= kRequestSize) {
    Request request;
    if (!DecodeRequest(reinterpret_cast<const uint8_t*>(stream.data() + at), request)) break;
    at += kRequestSize;
    uint32_t error = CheckRequest(request, params);
    if (error == 0 && request.type != kCmdFlush && request.type != kCmdDisconnect) {
      Check(request.length != 0);
      Check(request.offset <= params.size_bytes);
      Check(request.length <= params.size_bytes - request.offset);
      if (request.type != kCmdBlockStatus) {
        Check(request.offset % params.block_size == 0);
        Check(request.length % params.block_size == 0);
      }
      if (request.type == kCmdRead || request.type == kCmdWrite) {
        Check(request.length <= params.max_payload);
      }
      Check(!params.readonly || (request.type != kCmdWrite && request.type != kCmdTrim &&
                                 request.type != kCmdWriteZeroes));
    }
    Check(error == 0 || error == kEinval || error == kEperm || error == kEnospc ||
          error == kEoverflow);
    uint8_t header[kMaxReplyHeaderSize];
    size_t header_size = EncodeReplyHeader(header, request, error, params);
    Check(header_size <= kMaxReplyHeaderSize);
    Check(Load32(header) ==
          (params.structured_replies ? kStructuredReplyMagic : kSimpleReplyMagic));
    uint64_t payload = PayloadLength(request);
    if (payload > stream.size() - at) break;
    at += payload;
  }
  return 0;
}
