// The server's side of NBD's fixed newstyle handshake as a state machine over bytes: the
// connection feeds it what the client sent and sends what it appends to `out`. No socket and
// no pollux thread inside, so tests and the fuzzer drive it directly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pollux::nbd {

// What a client learns of an export, and what the transmission phase is bound by.
struct ExportInfo {
  std::string name;
  std::string description;
  uint64_t size_bytes = 0;
  uint32_t block_size = 512;         // the minimum block size offered (the bdev's)
  uint32_t max_payload = 32u << 20;  // largest READ or WRITE
  bool readonly = false;
  bool can_trim = false;
};

// The server's exports, as the handshake sees them.
class HandshakeExports {
 public:
  virtual ~HandshakeExports() = default;
  // NotFound for a name nobody exports. "" names the only export when there is just one.
  virtual absl::StatusOr<ExportInfo> Find(std::string_view name) = 0;
  virtual std::vector<std::string> Names() = 0;
  // The client chose `info` (NBD_OPT_GO, NBD_OPT_EXPORT_NAME): get ready to serve it. An
  // error refuses the client.
  virtual absl::Status Open(const ExportInfo& info) = 0;
};

class Handshake {
 public:
  enum class State : uint8_t {
    kNegotiating,   // more bytes wanted
    kTransmission,  // an export was chosen: the bytes after it are requests
    kClosed,        // the client ended it or broke the protocol: close after sending `out`
  };

  // Options longer than this close the connection (names and queries are at most 4 KiB).
  static constexpr uint32_t kMaxOptionLength = 64 * 1024;

  explicit Handshake(HandshakeExports& exports) : exports_(exports) {}

  // The server's greeting, sent first.
  void Start(std::string& out);
  // Consumes what it can of `data` and returns how many bytes it used; appends the replies to
  // `out`. Call again with the unused rest plus what arrives next.
  size_t Consume(const uint8_t* data, size_t size, std::string& out);

  State state() const { return state_; }
  // Why it closed, for the log.
  const std::string& close_reason() const { return close_reason_; }
  // Once in transmission: the export and what was negotiated.
  const ExportInfo& chosen() const { return chosen_; }
  bool structured_replies() const { return structured_replies_; }
  bool base_allocation() const { return base_allocation_; }
  // The transmission flags sent for the chosen export.
  uint16_t transmission_flags() const { return TransmissionFlags(chosen_); }

 private:
  // One option, whole.
  void HandleOption(uint32_t option, const uint8_t* data, uint32_t length, std::string& out);
  void HandleInfoOrGo(uint32_t option, const uint8_t* data, uint32_t length, std::string& out);
  void HandleMetaContext(uint32_t option, const uint8_t* data, uint32_t length, std::string& out);
  void HandleExportName(const uint8_t* data, uint32_t length, std::string& out);
  // Opens `info` for transmission and enters it.
  absl::Status Choose(const ExportInfo& info);
  uint16_t TransmissionFlags(const ExportInfo& info) const;
  void Close(std::string reason);

  HandshakeExports& exports_;
  State state_ = State::kNegotiating;
  bool have_client_flags_ = false;
  bool no_zeroes_ = false;
  bool structured_replies_ = false;
  bool base_allocation_ = false;
  ExportInfo chosen_;
  std::string close_reason_;
};

// Appends an option reply (header and payload) to `out`.
void AppendOptionReply(std::string& out, uint32_t option, uint32_t type,
                       std::string_view payload = {});

}  // namespace pollux::nbd
