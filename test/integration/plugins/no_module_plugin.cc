// A stamped plugin that registers an RPC method but no bdev module.
#include "pollux/env/abi_stamp.h"
#include "pollux/rpc/method_registry.h"

namespace no_module {

POLLUX_ABI_STAMP(no_module);

void Hello(const pollux::rpc::Json&, pollux::rpc::RpcResponder responder) {
  responder.Result("hello");
}
POLLUX_RPC_METHOD(pollux::rpc::MethodSpec("plugin_hello", "test",
                                          "Answers \"hello\": proof that the plugin's method is "
                                          "registered.",
                                          {}),
                  Hello);

}  // namespace no_module
