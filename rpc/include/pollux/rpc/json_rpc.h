// JSON-RPC 2.0 vocabulary shared by the server, the client (pollux-rpc) and config replay.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"

namespace pollux::rpc {

using Json = nlohmann::json;

// Standard JSON-RPC 2.0 error codes.
inline constexpr int kParseError = -32700;
inline constexpr int kInvalidRequest = -32600;
inline constexpr int kMethodNotFound = -32601;
inline constexpr int kInvalidParams = -32602;
inline constexpr int kInternalError = -32603;
// In the range JSON-RPC leaves to servers: a connection refused because too many are open.
inline constexpr int kServerBusy = -32000;

// Requests (and replies) larger than this are refused and their connection closed.
inline constexpr size_t kMaxMessageBytes = 1 << 20;

// The outcome of one method call: a result, or an error code and message.
struct RpcReply {
  bool ok = true;
  Json result;          // when ok
  int code = 0;         // when !ok
  std::string message;  // when !ok

  static RpcReply Result(Json result);
  static RpcReply Error(int code, std::string message);
  // InvalidArgument -> -32602, NotFound -> -19 (ENODEV), AlreadyExists -> -17 (EEXIST),
  // FailedPrecondition -> -1 (EPERM), ResourceExhausted -> -12 (ENOMEM), others -> -32603;
  // the same errno-style codes SPDK answers with. The message is the status message.
  static RpcReply FromStatus(const absl::Status& status);
};

// The reply object on the wire for request `id` ({"jsonrpc":"2.0","id":..,"result"|"error":..}).
Json EncodeReply(const Json& id, const RpcReply& reply);

// Finds where the first complete JSON value in `buffer` ends (one past its last byte), skipping
// leading whitespace. Returns std::nullopt while the value is still incomplete. Used to split a
// byte stream into messages without parsing twice; a value it delimits may still be invalid
// JSON, which the parser then reports.
std::optional<size_t> FindJsonValueEnd(std::string_view buffer);

// The JSON type of a method parameter (see method_spec.h).
enum class ParamType { kString, kUnsigned, kInteger, kBoolean, kObject, kArray, kAny };

struct MethodSpec;

// Reads the parameters of a method, collecting the first error as a message that names the
// parameter: `parameter "block_size" must be an unsigned integer`. Call Finish() last: it also
// reports parameters the method does not know.
//
// Inside a method's handler the reader also checks the handler against the method's spec: a
// parameter read that the spec does not declare, or reads as another type, or reads as required
// where the spec makes it optional without a default, is an internal error, so that any test
// that calls a method proves its help right.
class ParamReader {
 public:
  // `params` may be null (no parameters) or an object; anything else is an error.
  explicit ParamReader(const Json& params);
  // The reader keeps a reference to `params`: a temporary would dangle.
  explicit ParamReader(const Json&& params) = delete;

  std::string String(std::string_view name);
  std::optional<std::string> OptionalString(std::string_view name);
  uint64_t Uint(std::string_view name);
  std::optional<uint64_t> OptionalUint(std::string_view name);
  int64_t Int(std::string_view name);
  std::optional<int64_t> OptionalInt(std::string_view name);
  bool Bool(std::string_view name);
  std::optional<bool> OptionalBool(std::string_view name);
  // Any JSON value, unchecked (for nested objects a method reads itself).
  std::optional<Json> OptionalValue(std::string_view name);

  // The first error (kInvalidArgument), or an unknown parameter, or OK.
  absl::Status Finish();

 private:
  const Json* Find(std::string_view name, bool required, ParamType type);
  void CheckAgainstSpec(std::string_view name, bool required, ParamType type);
  void Fail(std::string message);

  const Json& params_;
  const MethodSpec* spec_;  // of the handler running, or null
  std::vector<std::string> used_;
  absl::Status status_;
};

}  // namespace pollux::rpc
