// Subsystems: the named parts of a target (framework, bdev, vhost_blk, ...), each with its
// start-up, its shutdown and the RPC calls that rebuild its state (save_config). Config files
// are grouped by subsystem and replayed in subsystem order, whatever order the file lists them.
#pragma once

#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "pollux/rpc/json_rpc.h"

namespace pollux::rpc {

using StatusCallback = absl::AnyInvocable<void(absl::Status)>;

struct Subsystem {
  std::string name;
  // Lower first: start-up, config replay and save_config go up, shutdown goes down.
  int order = 0;
  // Optional. Run on the app thread; call `done` exactly once, possibly later.
  absl::AnyInvocable<void(StatusCallback done)> init;
  absl::AnyInvocable<void(absl::AnyInvocable<void()> done)> fini;
  // Optional. Appends {"method":..,"params":..} entries that rebuild the current state.
  absl::AnyInvocable<void(Json& config)> write_config;
};

class SubsystemRegistry {
 public:
  static SubsystemRegistry& Global();

  // Fails with AlreadyExists when the name is taken.
  absl::Status Register(Subsystem subsystem);
  // Sorted by order, then name.
  std::vector<Subsystem*> Ordered();
  Subsystem* Find(std::string_view name);

 private:
  std::vector<std::unique_ptr<Subsystem>> subsystems_;
};

namespace internal {
struct SubsystemRegistrar {
  explicit SubsystemRegistrar(Subsystem (*make)());
};
}  // namespace internal

}  // namespace pollux::rpc

// POLLUX_SUBSYSTEM(framework, MakeFrameworkSubsystem): registers the Subsystem that the
// function returns at start-up.
#define POLLUX_SUBSYSTEM(id, make) \
  static ::pollux::rpc::internal::SubsystemRegistrar pollux_subsystem_registrar_##id(make)
