// RPC methods of the rpc component itself: the method list and each method's help.
#include "pollux/rpc/json_rpc.h"
#include "pollux/rpc/method_registry.h"

namespace pollux::rpc {
namespace {

void RpcGetMethods(const Json& params, RpcResponder responder) {
  ParamReader reader(params);
  if (absl::Status status = reader.Finish(); !status.ok()) return responder.Reply(status);
  responder.Result(MethodRegistry::Global().Names());
}
POLLUX_RPC_METHOD(
    MethodSpec("rpc_get_methods", "rpc", "Lists the names of all methods, sorted.",
               {SpdkHint("current", ParamType::kBoolean,
                         "SPDK's: only the methods callable in the current state (in pollux, "
                         "all of them)"),
                SpdkHint("include_aliases", ParamType::kBoolean,
                         "SPDK's: also deprecated aliases (pollux has none)")}),
    RpcGetMethods);

void RpcGetMethodHelp(const Json& params, RpcResponder responder) {
  ParamReader reader(params);
  std::optional<std::string> name = reader.OptionalString("name");
  if (absl::Status status = reader.Finish(); !status.ok()) return responder.Reply(status);
  Json methods = Json::array();
  for (const MethodSpec& spec : MethodRegistry::Global().Specs()) {
    if (!name || spec.name == *name) methods.push_back(DescribeMethod(spec));
  }
  if (name && methods.empty()) {
    return responder.Error(kMethodNotFound, "unknown method \"" + *name + "\"");
  }
  responder.Result(name ? std::move(methods[0]) : std::move(methods));
}
POLLUX_RPC_METHOD(
    MethodSpec("rpc_get_method_help", "rpc",
               "Describes methods and their parameters as the target checks them (what "
               "`pollux-rpc METHOD --help` prints).",
               {Optional("name", ParamType::kString,
                         "the method to describe; without it, an array of all methods")}),
    RpcGetMethodHelp);

}  // namespace
}  // namespace pollux::rpc
