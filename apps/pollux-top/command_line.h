// pollux-top's command line: the socket, the refresh delay, the first view, --once.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "view_models.h"

namespace pollux::top {

struct TopOptions {
  std::string socket;                   // -s
  double delay_s = 1.0;                 // -d: seconds between two samples
  ViewKind view = ViewKind::kReactors;  // -v: the view shown first (or printed by --once)
  bool once = false;                    // --once: print one snapshot of the view and exit
  bool help = false;                    // -h, --help
  bool version = false;                 // --version
};

// -d's bounds: a tenth of a second (an RPC round trip per view must fit), an hour.
inline constexpr double kMinDelayS = 0.1;
inline constexpr double kMaxDelayS = 3600;

// Parses argv. `default_socket` is used when -s is absent. Errors are usage errors, with a
// message for the user.
absl::StatusOr<TopOptions> ParseTopCommandLine(int argc, const char* const* argv,
                                               std::string default_socket);

// The text of --help.
std::string TopUsage(std::string_view program, std::string_view default_socket);

}  // namespace pollux::top
