// RPC methods of the app framework: pollux_get_version, save_config, log_set_level,
// log_get_level, framework_shutdown.
#include "pollux/app/app.h"
#include "pollux/rpc/config.h"
#include "pollux/rpc/method_registry.h"
#include "pollux/env/version.h"

namespace pollux {
namespace {

using rpc::Json;
using rpc::MethodSpec;
using rpc::ParamReader;
using rpc::ParamType;
using rpc::Required;
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
POLLUX_RPC_METHOD(MethodSpec("pollux_get_version", "app",
                             "Answers the target's version: \"pollux vX.Y.Z\" and its fields "
                             "(major, minor, patch).",
                             {}),
                  PolluxGetVersion);

void SaveConfig(const Json& params, RpcResponder responder) {
  if (!NoParams(params, responder)) return;
  responder.Result(rpc::SaveConfig(rpc::SubsystemRegistry::Global()));
}
POLLUX_RPC_METHOD(MethodSpec("save_config", "app",
                             "Answers the running configuration as a config file (-c) holds it: "
                             "every subsystem, in order, with the RPC calls that recreate its "
                             "state.",
                             {}),
                  SaveConfig);

void LogSetLevel(const Json& params, RpcResponder responder) {
  ParamReader reader(params);
  std::string name = reader.String("level");
  if (absl::Status s = reader.Finish(); !s.ok()) return responder.Reply(s);
  auto level = ParseLogLevel(name);
  if (!level.ok()) return responder.Error(rpc::kInvalidParams, std::string(level.status().message()));
  SetLogLevel(*level);
  responder.Result(true);
}
POLLUX_RPC_METHOD(MethodSpec("log_set_level", "app",
                             "Sets the log level: messages at it or more severe are printed. "
                             "Answers true.",
                             {Required("level", ParamType::kString,
                                       "error, warning, notice, info or debug (any case)")}),
                  LogSetLevel);

void LogGetLevel(const Json& params, RpcResponder responder) {
  if (!NoParams(params, responder)) return;
  responder.Result(std::string(LogLevelName(GetLogLevel())));
}
POLLUX_RPC_METHOD(MethodSpec("log_get_level", "app",
                             "Answers the log level: error, warning, notice, info or debug.", {}),
                  LogGetLevel);

void FrameworkShutdown(const Json& params, RpcResponder responder) {
  if (!NoParams(params, responder)) return;
  // Answer first: the shutdown closes the RPC server in a later message, after this reply
  // has been written.
  responder.Result(true);
  RequestAppShutdown();
}
POLLUX_RPC_METHOD(MethodSpec("framework_shutdown", "app",
                             "Shuts the target down in order (RPC server, subsystems in reverse "
                             "order, reactors). Answers true before it starts.",
                             {}),
                  FrameworkShutdown);

}  // namespace
}  // namespace pollux
