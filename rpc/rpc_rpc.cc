// RPC methods of the rpc component itself.
#include "pollux/rpc/json_rpc.h"
#include "pollux/rpc/method_registry.h"

namespace pollux::rpc {
namespace {

// rpc_get_methods: no parameters; the result is the sorted array of method names.
void RpcGetMethods(const Json& params, RpcResponder responder) {
  ParamReader reader(params);
  if (absl::Status status = reader.Finish(); !status.ok()) {
    responder.Reply(status);
    return;
  }
  responder.Result(MethodRegistry::Global().Names());
}

POLLUX_RPC_METHOD("rpc_get_methods", RpcGetMethods);

}  // namespace
}  // namespace pollux::rpc
