// A plugin whose module and RPC method take names pollux already has ("null",
// "bdev_null_create"): the loader must refuse it naming both.
#include "pollux/bdev/bdev_module.h"
#include "pollux/rpc/method_registry.h"

namespace clash {

class NullAgain final : public pollux::BdevModule {
 public:
  NullAgain() : BdevModule("null") {}
  static NullAgain& Get();
};
POLLUX_BDEV_MODULE(NullAgain);

void CreateAgain(const pollux::rpc::Json&, pollux::rpc::RpcResponder responder) {
  responder.Result(true);
}
POLLUX_RPC_METHOD(pollux::rpc::MethodSpec("bdev_null_create", "test",
                                          "A second bdev_null_create, which the loader refuses.",
                                          {}),
                  CreateAgain);

}  // namespace clash
