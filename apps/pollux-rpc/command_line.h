// pollux-rpc's command line: options, the method and its parameters.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "pollux/rpc/json_rpc.h"

namespace pollux::rpc {

struct CommandLine {
  std::string socket;     // -s
  double timeout_s = 60;  // -t; 0 waits forever
  int conn_retries = 0;   // -r: connection attempts after the first, 0.2 s apart
  std::string method;     // empty: list the methods
  Json params;            // null when none was given, else an object
  bool help = false;      // -h, --help
  bool version = false;   // --version before METHOD
};

// -r's bound: about an hour of retries.
inline constexpr int kMaxConnRetries = 18000;

// The value of `--name VALUE`: JSON when VALUE is a JSON number, boolean, null, array or
// object; otherwise the string itself (so `--name Malloc0` needs no quotes, and a JSON string
// literal keeps its quotes).
Json ParseParamValue(std::string_view text);

// Parses argv. `default_socket` is used when -s is absent. Errors are usage errors, with a
// message for the user.
absl::StatusOr<CommandLine> ParseCommandLine(int argc, const char* const* argv,
                                             std::string default_socket);

// The text of --help.
std::string Usage(std::string_view program, std::string_view default_socket);

}  // namespace pollux::rpc
