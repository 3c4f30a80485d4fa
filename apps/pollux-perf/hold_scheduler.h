// `hold`: a scheduler that moves nothing (every thread stays on the core it is on). pollux-perf
// registers it at start-up and selects it under --move-threads, so that the scheduler service
// (which runs in every pollux app, `static` by default) does not bring the mover's threads
// home every period; `--scheduler hold` selects it too.
//
// Threads: registered from main before the command line is parsed (so --scheduler knows the
// name); Balance runs on the app thread, as every scheduler's.
#pragma once

#include "absl/status/status.h"

namespace pollux::perf {

inline constexpr char kHoldSchedulerName[] = "hold";

// Makes `hold` selectable. Once per process, before ParseCommandLine.
absl::Status RegisterHoldScheduler();

}  // namespace pollux::perf
