// The application framework every pollux program stands on (SPDK's spdk_app_start):
// environment, reactors, the app thread, subsystems, config replay, the RPC server, signals
// and an orderly shutdown. pollux-tgt and pollux-perf are thin mains over RunApp().
//
// Threads: RunApp() runs on the control thread (main) and blocks there. Everything else in
// this file happens on the app thread, a lightweight Thread on the first reactor that serves
// RPC, replays config and runs subsystem start-up and shutdown.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "pollux/env/eal.h"
#include "pollux/env/log.h"
#include "pollux/reactor/reactor.h"
#include "pollux/rpc/server.h"

namespace pollux {

inline constexpr char kDefaultRpcSocket[] = "/var/tmp/pollux.sock";

struct AppOptions {
  std::string name = "pollux";  // for log lines and errors
  std::string config_path;      // empty: no config file
  std::string rpc_socket = kDefaultRpcSocket;  // empty: no RPC server
  rpc::RpcServerOptions rpc_server;            // its limits
  EalOptions eal;
  ReactorMode mode = ReactorMode::kInterrupt;
  // Set when the command line named a mode: it then wins over the config file's.
  bool mode_from_command_line = false;
  std::optional<std::chrono::microseconds> spin_window;
  // Bdev modules built outside pollux, loaded first, in order (--plugin; app/plugin_loader.h).
  std::vector<std::string> plugins;
};

// Runs the app until shutdown. `on_started` runs on the app thread once the config has been
// replayed and the RPC server listens. Returns OK after a clean shutdown, or the error that
// stopped start-up (a bad config, a socket in use, EAL failure), or the error passed to
// RequestAppShutdown. Call once per process, from main.
absl::Status RunApp(const AppOptions& options, absl::AnyInvocable<void()> on_started = {});

// Starts an orderly shutdown: stop the RPC server, finish subsystems in reverse order, exit
// the app thread, stop the reactors. Any thread; a second call is ignored. `status` becomes
// RunApp's result.
void RequestAppShutdown(absl::Status status = absl::OkStatus());

// The app thread, or nullptr when no app runs.
Thread* AppThread();

// Version string of this build.
const char* PolluxVersion();

}  // namespace pollux
