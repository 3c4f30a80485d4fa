// The passthru bdev module (SPDK's vbdev_passthru): a virtual bdev that forwards every I/O to
// the base bdev under it. It adds nothing, which makes it two things: the template for module
// writers (docs/bdev-module-guide.md walks through it) and the measure of what one virtual
// layer costs (pollux-perf over passthru over null).
//
// Threads: CreatePassthruBdev, DeletePassthruBdev and the module's own work (examine, the base's
// remove event) run on the app thread, like the RPC methods in passthru_rpc.cc; I/O runs on any
// thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pollux/bdev/bdev.h"
#include "pollux/bdev/bdev_module.h"
#include "pollux/bdev/virtual_bdev_configs.h"

namespace pollux {

// One passthru bdev as configured: what bdev_passthru_create takes.
struct PassthruBdevOptions {
  std::string base_bdev_name;  // the bdev to sit on; it may not exist yet
  std::string name;            // the passthru bdev's name
  std::string uuid;            // empty: the layer generates one
};

class PassthruModule final : public BdevModule {
 public:
  PassthruModule();
  static PassthruModule& Get();

  // Attaches the configured passthru bdevs whose base just registered.
  void ExamineConfig(Bdev& bdev) override { configs_.Examine(bdev); }
  // One bdev_passthru_create per configured bdev, attached or still waiting for its base.
  void WriteConfig(rpc::Json& config) const override;
  // A virtual module: after the bases in save_config.
  int config_order() const override { return 1; }
  void Fini() override { configs_.Clear(); }

 private:
  friend absl::StatusOr<Bdev*> CreatePassthruBdev(const PassthruBdevOptions& options);
  friend void DeletePassthruBdev(std::string_view name,
                                 absl::AnyInvocable<void(absl::Status)> done);

  // Every passthru bdev asked for, attached or still waiting for its base.
  VirtualBdevConfigs<PassthruBdevOptions> configs_;
};

// Records the passthru bdev and, when its base exists, opens and claims the base and registers
// the passthru bdev, which it returns. When the base does not exist yet it returns nullptr: the
// bdev is created when the base registers (examine). On any error nothing is left behind.
absl::StatusOr<Bdev*> CreatePassthruBdev(const PassthruBdevOptions& options);

// Unregisters the passthru bdev `name` and forgets its configuration, so that it does not come
// back when its base reappears; a bdev still waiting for its base is just forgotten. done runs
// on the calling thread. Fails when `name` is unknown, not a passthru bdev, or claimed.
void DeletePassthruBdev(std::string_view name, absl::AnyInvocable<void(absl::Status)> done);

}  // namespace pollux
