#include "pollux/rpc/json_rpc.h"

#include <utility>

#include "json_value_scanner.h"

namespace pollux::rpc {

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

std::optional<size_t> FindJsonValueEnd(std::string_view buffer) {
  JsonValueScanner scanner;
  return scanner.Scan(buffer);
}

}  // namespace pollux::rpc
