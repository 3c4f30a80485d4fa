// Start-up and shutdown of the registered subsystems, one after the other on the app thread.
#pragma once

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"

namespace pollux {

// Runs each subsystem's init in order; stops at the first error, which names the subsystem.
void StartSubsystems(absl::AnyInvocable<void(absl::Status)> done);

// Runs each started subsystem's fini in reverse order, then done.
void FinishSubsystems(absl::AnyInvocable<void()> done);

}  // namespace pollux
