// RPC methods of the app framework: pollux_get_version, save_config, log_set_level,
// log_get_level, framework_shutdown.
#include "pollux/app/app.h"
#include "pollux/rpc/config.h"
#include "pollux/rpc/method_registry.h"
#include "pollux/env/version.h"

namespace pollux {
namespace {

using rpc::Json;
using rpc::ParamReader;
using rpc::RpcResponder;

// Methods without parameters still refuse unknown ones, so a typo is not silently ignored.
bool NoParams(const Json& params, RpcResponder& responder) {
  ParamReader reader(params);
  absl::Status s = reader.Finish();
  if (!s.ok()) responder.Reply(s);
  return s.ok();
}

void PolluxGetVersion(const Json& params, RpcResponder responder) {
  if (!NoParams(params, responder)) return;
  responder.Result({{"version", std::string("pollux v") + PolluxVersion()},
                    {"fields",
                     {{"major", POLLUX_VERSION_MAJOR},
                      {"minor", POLLUX_VERSION_MINOR},
                      {"patch", POLLUX_VERSION_PATCH}}}});
}
POLLUX_RPC_METHOD("pollux_get_version", PolluxGetVersion);

void SaveConfig(const Json& params, RpcResponder responder) {
  if (!NoParams(params, responder)) return;
  responder.Result(rpc::SaveConfig(rpc::SubsystemRegistry::Global()));
}
POLLUX_RPC_METHOD("save_config", SaveConfig);

void LogSetLevel(const Json& params, RpcResponder responder) {
  ParamReader reader(params);
  std::string name = reader.String("level");
  if (absl::Status s = reader.Finish(); !s.ok()) return responder.Reply(s);
  auto level = ParseLogLevel(name);
  if (!level.ok()) return responder.Error(rpc::kInvalidParams, std::string(level.status().message()));
  SetLogLevel(*level);
  responder.Result(true);
}
POLLUX_RPC_METHOD("log_set_level", LogSetLevel);

void LogGetLevel(const Json& params, RpcResponder responder) {
  if (!NoParams(params, responder)) return;
  responder.Result(std::string(LogLevelName(GetLogLevel())));
}
POLLUX_RPC_METHOD("log_get_level", LogGetLevel);

void FrameworkShutdown(const Json& params, RpcResponder responder) {
  if (!NoParams(params, responder)) return;
  // Answer first: the shutdown closes the RPC server in a later message, after this reply
  // has been written.
  responder.Result(true);
  RequestAppShutdown();
}
POLLUX_RPC_METHOD("framework_shutdown", FrameworkShutdown);

}  // namespace
}  // namespace pollux
