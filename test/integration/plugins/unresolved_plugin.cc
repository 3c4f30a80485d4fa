// A module that calls a function nothing defines: loading it must fail with the dynamic
// linker's message, not later in the middle of an I/O.
#include "pollux/bdev/bdev_module.h"

int pollux_function_nobody_defines(int);

namespace unresolved {

class UnresolvedModule final : public pollux::BdevModule {
 public:
  UnresolvedModule() : BdevModule("unresolved") {}
  static UnresolvedModule& Get();
  absl::Status Init() override {
    return pollux_function_nobody_defines(1) == 0 ? absl::OkStatus() : absl::InternalError("");
  }
};
POLLUX_BDEV_MODULE(UnresolvedModule);

}  // namespace unresolved
