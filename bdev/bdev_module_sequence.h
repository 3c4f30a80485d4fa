// Runs one life-cycle step (init, fini start, fini) of the bdev modules, one module after the
// other, each free to finish later: SPDK's async_init / async_fini_start / async_fini with their
// *_done calls. Private to the layer (bdev_layer.cc).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "pollux/bdev/bdev_module.h"

namespace pollux {

// Starts the step on `module`; the step calls `done` exactly once, on any Thread, now or later.
using ModuleStepFn =
    absl::AnyInvocable<void(BdevModule& module, absl::AnyInvocable<void(absl::Status)> done)>;

// How often a step that has not called done is reported (by module name) while it is awaited.
inline constexpr int kModuleStepReportSeconds = 5;

// Runs `step` (named `step_name` in logs and errors: "init", "fini_start", "fini") on each of
// `modules` in turn: the next starts once the previous one's done ran. Stops at the first error.
// Then done(status, how many modules completed the step) runs on the calling Thread, with an
// error prefixed by the failing module's name. Call on a Thread (the app thread).
void RunModuleSequence(std::string step_name, std::vector<BdevModule*> modules, ModuleStepFn step,
                       absl::AnyInvocable<void(absl::Status, size_t completed)> done);

}  // namespace pollux
