// The command line every pollux application takes (pollux-tgt's shape): -c, -m/--cpus, -r,
// --rpc-max-request-size, --rpc-max-connections, --rpc-request-timeout, --mode,
// --spin-window-us, -L, -s, --hugepages, --plugin, -h, -v, parsed into AppOptions. An
// application adds options of its own (AppCommandLineOption); the usage text is its own.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "pollux/app/app.h"

namespace pollux {

// One option an application adds: `name` (long, without "--"), `short_name` (0: none), whether
// it takes a value, and what to do with it: return an error message, or "" when it is fine.
struct AppCommandLineOption {
  const char* name;
  char short_name;
  bool takes_value;
  std::function<std::string(const char* value)> apply;
};

struct AppCommandLine {
  AppOptions app;
  bool exit_now = false;  // --help, --version or a usage error: exit with exit_code
  int exit_code = 0;
};

// Parses argv. `program`: for messages ("pollux-tgt: ..."); `usage`: printed by --help. A usage
// error is printed to stderr with a pointer to --help, and exits with 2.
AppCommandLine ParseAppCommandLine(int argc, char** argv, const std::string& program,
                                   const char* usage,
                                   const std::vector<AppCommandLineOption>& extra = {});

// One of the RPC server's limits given on the command line: `name` is the long option without
// "--" (rpc-max-request-size, rpc-max-connections, rpc-request-timeout). Returns an error
// message, or "" once `options` holds the value. For programs with a parser of their own.
std::string ParseRpcServerOption(std::string_view name, const char* value,
                                 rpc::RpcServerOptions& options);

// Runs the app on the parsed command line (RunApp) and returns the process's exit code.
int RunAppMain(const AppCommandLine& command_line, const std::string& program);

}  // namespace pollux
