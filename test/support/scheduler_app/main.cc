// pollux-scheduler-test-app: SPDK's test/event/scheduler app for pollux. A pollux app (the
// framework, the scheduler when it is built, the RPC server) whose only work is what RPC asks
// for: threads that are a given percentage busy (scheduler_test_rpc.cc), so that a test can
// watch a scheduler place them and idle reactors sleep.
#include <getopt.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "pollux/app/app.h"
#include "pollux/env/cpu_list.h"

namespace {

constexpr char kUsage[] = R"(Usage: pollux-scheduler-test-app [OPTIONS]

Starts one reactor per selected core and serves JSON-RPC, with three methods beside the
framework's: scheduler_thread_create {name, cpu_mask, active_percent},
scheduler_thread_set_active {thread_id, active_percent} and scheduler_thread_delete
{thread_id}. A thread made by them spins for active_percent of each millisecond and lets its
reactor sleep for the rest. SIGINT or SIGTERM shut it down.

Options:
  -c, --config FILE        JSON config to replay at start-up (as pollux-tgt's)
  -m, --cpus LIST          cores to run reactors on: a list ("0-1", "0,2-3") or a hex mask
                           ("0x3"); default: every core this process may run on
  -r, --rpc-socket PATH    JSON-RPC Unix socket (default /var/tmp/pollux.sock)
      --mode MODE          poll or interrupt (default interrupt); overrides the config file
      --spin-window-us N   in interrupt mode, how long a reactor keeps polling after its last
                           work before it sleeps (default 100)
  -L, --log-level LEVEL    error, warning, notice, info or debug (default notice)
  -s, --mem-size MB        DPDK memory in MiB (default 512)
  -h, --help               print this help and exit
)";

struct ParsedArgs {
  pollux::AppOptions app;
  bool exit_now = false;
  int exit_code = 0;
};

bool ParseUint(const char* text, uint64_t* value) {
  const char* end = text + std::strlen(text);
  auto [ptr, ec] = std::from_chars(text, end, *value);
  return *text != '\0' && ec == std::errc() && ptr == end;
}

ParsedArgs Parse(int argc, char** argv) {
  enum { kMode = 256, kSpinWindow };
  static const option kOptions[] = {
      {"config", required_argument, nullptr, 'c'},
      {"cpus", required_argument, nullptr, 'm'},
      {"rpc-socket", required_argument, nullptr, 'r'},
      {"mode", required_argument, nullptr, kMode},
      {"spin-window-us", required_argument, nullptr, kSpinWindow},
      {"log-level", required_argument, nullptr, 'L'},
      {"mem-size", required_argument, nullptr, 's'},
      {"help", no_argument, nullptr, 'h'},
      {nullptr, 0, nullptr, 0},
  };
  ParsedArgs parsed;
  parsed.app.name = "pollux-scheduler-test-app";
  auto fail = [&](const std::string& message) {
    std::fprintf(stderr, "pollux-scheduler-test-app: %s\nTry 'pollux-scheduler-test-app --help'.\n",
                 message.c_str());
    parsed.exit_now = true;
    parsed.exit_code = 2;
    return parsed;
  };
  opterr = 0;
  int opt;
  while ((opt = getopt_long(argc, argv, ":c:m:r:L:s:h", kOptions, nullptr)) != -1) {
    switch (opt) {
      case 'c':
        parsed.app.config_path = optarg;
        break;
      case 'm': {
        auto cpus = pollux::ParseCpuList(optarg);
        if (!cpus.ok()) return fail(std::string(cpus.status().message()));
        if (auto s = pollux::CheckCpusAllowed(*cpus); !s.ok())
          return fail(std::string(s.message()));
        parsed.app.eal.cpus = *cpus;
        break;
      }
      case 'r':
        parsed.app.rpc_socket = optarg;
        break;
      case kMode: {
        auto mode = pollux::ParseReactorMode(optarg);
        if (!mode.ok()) return fail(std::string(mode.status().message()));
        parsed.app.mode = *mode;
        parsed.app.mode_from_command_line = true;
        break;
      }
      case kSpinWindow: {
        uint64_t us;
        if (!ParseUint(optarg, &us) || us > 10'000'000) {
          return fail(std::string("--spin-window-us: expected microseconds from 0 to 10000000, "
                                  "got \"") +
                      optarg + "\"");
        }
        parsed.app.spin_window = std::chrono::microseconds(us);
        break;
      }
      case 'L': {
        auto level = pollux::ParseLogLevel(optarg);
        if (!level.ok()) return fail(std::string(level.status().message()));
        pollux::SetLogLevel(*level);
        parsed.app.eal.quiet = *level < pollux::LogLevel::kInfo;
        break;
      }
      case 's': {
        uint64_t mb;
        if (!ParseUint(optarg, &mb) || mb < 16 || mb > (1u << 20)) {
          return fail(std::string("--mem-size: expected MiB from 16 to 1048576, got \"") + optarg +
                      "\"");
        }
        parsed.app.eal.memory_mb = mb;
        break;
      }
      case 'h':
        std::fputs(kUsage, stdout);
        parsed.exit_now = true;
        return parsed;
      case ':':
        return fail(std::string("option ") + argv[optind - 1] + " needs a value");
      default:
        return fail(std::string("unknown option ") + argv[optind - 1]);
    }
  }
  if (optind < argc) return fail(std::string("unexpected argument \"") + argv[optind] + "\"");
  return parsed;
}

}  // namespace

int main(int argc, char** argv) {
  ParsedArgs parsed = Parse(argc, argv);
  if (parsed.exit_now) return parsed.exit_code;
  absl::Status status = pollux::RunApp(parsed.app);
  if (!status.ok()) {
    std::fprintf(stderr, "pollux-scheduler-test-app: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
