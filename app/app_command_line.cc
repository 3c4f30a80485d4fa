#include "pollux/app/app_command_line.h"

#include <getopt.h>

#include <charconv>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_format.h"
#include "pollux/env/cpu_list.h"
#include "pollux/env/log.h"

namespace pollux {
namespace {

enum LongOnly {
  kMode = 256,
  kSpinWindow,
  kHugepages,
  kPlugin,
  kRpcMaxRequestSize,
  kRpcMaxConnections,
  kRpcRequestTimeout,
  kFirstExtra
};

bool ParseUint(const char* text, uint64_t* value) {
  const char* end = text + std::strlen(text);
  auto [ptr, ec] = std::from_chars(text, end, *value);
  return *text != '\0' && ec == std::errc() && ptr == end;
}

// What one common option does to `app`: an error message, or "".
std::string ApplyCommon(int opt, const char* value, AppOptions& app) {
  switch (opt) {
    case 'c':
      app.config_path = value;
      return "";
    case 'm': {
      auto cpus = ParseCpuList(value);
      if (!cpus.ok()) return std::string(cpus.status().message());
      if (auto s = CheckCpusAllowed(*cpus); !s.ok()) return std::string(s.message());
      app.eal.cpus = *cpus;
      return "";
    }
    case 'r':
      app.rpc_socket = value;
      return "";
    case kMode: {
      auto mode = ParseReactorMode(value);
      if (!mode.ok()) return std::string(mode.status().message());
      app.mode = *mode;
      app.mode_from_command_line = true;
      return "";
    }
    case kSpinWindow: {
      uint64_t us;
      if (!ParseUint(value, &us) || us > 10'000'000) {
        return std::string("--spin-window-us: expected microseconds from 0 to 10000000, got \"") +
               value + "\"";
      }
      app.spin_window = std::chrono::microseconds(us);
      return "";
    }
    case 'L': {
      auto level = ParseLogLevel(value);
      if (!level.ok()) return std::string(level.status().message());
      SetLogLevel(*level);
      app.eal.quiet = *level < LogLevel::kInfo;
      return "";
    }
    case 's': {
      uint64_t mb;
      if (!ParseUint(value, &mb) || mb < 16 || mb > (1u << 20)) {
        return std::string("--mem-size: expected MiB from 16 to 1048576, got \"") + value + "\"";
      }
      app.eal.memory_mb = mb;
      return "";
    }
    case kHugepages:
      app.eal.hugepages = true;
      return "";
    case kPlugin:
      app.plugins.push_back(value);
      return "";
    case kRpcMaxRequestSize:
      return ParseRpcServerOption("rpc-max-request-size", value, app.rpc_server);
    case kRpcMaxConnections:
      return ParseRpcServerOption("rpc-max-connections", value, app.rpc_server);
    case kRpcRequestTimeout:
      return ParseRpcServerOption("rpc-request-timeout", value, app.rpc_server);
    default:
      return "unknown option";
  }
}

}  // namespace

std::string ParseRpcServerOption(std::string_view name, const char* value,
                                 rpc::RpcServerOptions& options) {
  // Each: the option, what it counts, its bounds, where it goes.
  uint64_t n;
  const bool number = ParseUint(value, &n);
  auto expected = [&](const char* what, uint64_t min, uint64_t max) {
    return absl::StrFormat("--%s: expected %s from %u to %u, got \"%s\"", name, what, min, max,
                           value);
  };
  if (name == "rpc-max-request-size") {
    if (!number || n < 4096 || n > (uint64_t{1} << 30)) return expected("bytes", 4096, 1u << 30);
    options.max_request_bytes = n;
  } else if (name == "rpc-max-connections") {
    if (!number || n < 1 || n > 65536) return expected("connections", 1, 65536);
    options.max_connections = n;
  } else if (name == "rpc-request-timeout") {
    if (!number || n > 86400) return expected("seconds", 0, 86400);
    options.request_timeout = std::chrono::seconds(n);
  } else {
    return absl::StrFormat("--%s: not an RPC server option", name);
  }
  return "";
}

AppCommandLine ParseAppCommandLine(int argc, char** argv, const std::string& program,
                                   const char* usage,
                                   const std::vector<AppCommandLineOption>& extra) {
  std::vector<option> options = {
      {"config", required_argument, nullptr, 'c'},
      {"cpus", required_argument, nullptr, 'm'},
      {"rpc-socket", required_argument, nullptr, 'r'},
      {"mode", required_argument, nullptr, kMode},
      {"spin-window-us", required_argument, nullptr, kSpinWindow},
      {"log-level", required_argument, nullptr, 'L'},
      {"mem-size", required_argument, nullptr, 's'},
      {"hugepages", no_argument, nullptr, kHugepages},
      {"plugin", required_argument, nullptr, kPlugin},
      {"rpc-max-request-size", required_argument, nullptr, kRpcMaxRequestSize},
      {"rpc-max-connections", required_argument, nullptr, kRpcMaxConnections},
      {"rpc-request-timeout", required_argument, nullptr, kRpcRequestTimeout},
      {"help", no_argument, nullptr, 'h'},
      {"version", no_argument, nullptr, 'v'},
  };
  std::string short_options = ":c:m:r:L:s:hv";
  for (size_t i = 0; i < extra.size(); ++i) {
    int id = extra[i].short_name != 0 ? extra[i].short_name : kFirstExtra + static_cast<int>(i);
    options.push_back({extra[i].name, extra[i].takes_value ? required_argument : no_argument,
                       nullptr, id});
    if (extra[i].short_name != 0) {
      short_options += extra[i].short_name;
      if (extra[i].takes_value) short_options += ':';
    }
  }
  options.push_back({nullptr, 0, nullptr, 0});

  AppCommandLine parsed;
  parsed.app.name = program;
  auto fail = [&](const std::string& message) {
    std::fprintf(stderr, "%s: %s\nTry '%s --help'.\n", program.c_str(), message.c_str(),
                 program.c_str());
    parsed.exit_now = true;
    parsed.exit_code = 2;
    return parsed;
  };
  opterr = 0;
  optind = 1;
  int opt;
  while ((opt = getopt_long(argc, argv, short_options.c_str(), options.data(), nullptr)) != -1) {
    if (opt == 'h') {
      std::fputs(usage, stdout);
      parsed.exit_now = true;
      return parsed;
    }
    if (opt == 'v') {
      std::printf("%s %s\n", program.c_str(), PolluxVersion());
      parsed.exit_now = true;
      return parsed;
    }
    if (opt == ':') return fail(std::string("option ") + argv[optind - 1] + " needs a value");
    if (opt == '?') return fail(std::string("unknown option ") + argv[optind - 1]);
    const AppCommandLineOption* own = nullptr;
    for (size_t i = 0; i < extra.size(); ++i) {
      int id = extra[i].short_name != 0 ? extra[i].short_name : kFirstExtra + static_cast<int>(i);
      if (id == opt) own = &extra[i];
    }
    std::string error = own != nullptr ? own->apply(optarg) : ApplyCommon(opt, optarg, parsed.app);
    if (!error.empty()) return fail(error);
  }
  if (optind < argc) return fail(std::string("unexpected argument \"") + argv[optind] + "\"");
  return parsed;
}

int RunAppMain(const AppCommandLine& command_line, const std::string& program) {
  if (command_line.exit_now) return command_line.exit_code;
  absl::Status status = RunApp(command_line.app);
  if (!status.ok()) {
    std::fprintf(stderr, "%s: %s\n", program.c_str(), std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}

}  // namespace pollux
