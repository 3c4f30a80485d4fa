#include "pollux/rpc/json_rpc.h"

#include <utility>

#include "json_value_scanner.h"

namespace pollux::rpc {
namespace {

bool IsJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool IsStructural(char c) {
  return c == '{' || c == '}' || c == '[' || c == ']' || c == ',' || c == ':' || c == '"';
}

}  // namespace

RpcReply RpcReply::Result(Json result) {
  RpcReply reply;
  reply.result = std::move(result);
  return reply;
}

RpcReply RpcReply::Error(int code, std::string message) {
  RpcReply reply;
  reply.ok = false;
  reply.code = code;
  reply.message = std::move(message);
  return reply;
}

RpcReply RpcReply::FromStatus(const absl::Status& status) {
  int code;
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return Result(true);
    case absl::StatusCode::kInvalidArgument:
      code = kInvalidParams;
      break;
    case absl::StatusCode::kNotFound:
      code = -19;  // -ENODEV
      break;
    case absl::StatusCode::kAlreadyExists:
      code = -17;  // -EEXIST
      break;
    case absl::StatusCode::kFailedPrecondition:
      code = -1;  // -EPERM
      break;
    case absl::StatusCode::kResourceExhausted:
      code = -12;  // -ENOMEM
      break;
    default:
      code = kInternalError;
      break;
  }
  return Error(code, std::string(status.message()));
}

Json EncodeReply(const Json& id, const RpcReply& reply) {
  Json out = {{"jsonrpc", "2.0"}, {"id", id}};
  if (reply.ok) {
    out["result"] = reply.result;
  } else {
    out["error"] = {{"code", reply.code}, {"message", reply.message}};
  }
  return out;
}

std::optional<size_t> JsonValueScanner::Scan(std::string_view buffer) {
  for (; pos_ < buffer.size(); ++pos_) {
    const char c = buffer[pos_];
    switch (state_) {
      case State::kLeadingSpace:
        if (IsJsonSpace(c)) break;
        if (c == '{' || c == '[') {
          state_ = State::kContainer;
          depth_ = 1;
        } else if (c == '"') {
          state_ = State::kString;
        } else if (IsStructural(c)) {
          state_ = State::kScalar;
          return ++pos_;
        } else {
          state_ = State::kScalar;
        }
        break;
      case State::kScalar:
        // The terminator is not part of the value: `1}` is the value `1`, then a stray `}`.
        if (IsJsonSpace(c) || IsStructural(c)) return pos_;
        break;
      case State::kString:
        if (escape_) {
          escape_ = false;
        } else if (c == '\\') {
          escape_ = true;
        } else if (c == '"') {
          return ++pos_;
        }
        break;
      case State::kContainer:
        if (in_string_) {
          if (escape_) {
            escape_ = false;
          } else if (c == '\\') {
            escape_ = true;
          } else if (c == '"') {
            in_string_ = false;
          }
        } else if (c == '"') {
          in_string_ = true;
        } else if (c == '{' || c == '[') {
          ++depth_;
        } else if (c == '}' || c == ']') {
          // Brackets are counted without matching their kind: `{]` ends here and the parser
          // reports it.
          if (--depth_ == 0) return ++pos_;
        }
        break;
    }
  }
  return std::nullopt;
}

std::optional<size_t> FindJsonValueEnd(std::string_view buffer) {
  JsonValueScanner scanner;
  return scanner.Scan(buffer);
}

}  // namespace pollux::rpc
