// pollux-tgt: the pollux target. Starts the reactors, replays a JSON config and serves
// JSON-RPC until SIGINT, SIGTERM or framework_shutdown.
#include <getopt.h>
#include <sys/stat.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <string>

#include "pollux/app/app.h"
#include "pollux/env/cpu_list.h"
#include "pollux/env/shared_io_memory.h"
#include "pollux/virtio/vhost_blk.h"

namespace {

constexpr char kUsage[] = R"(Usage: pollux-tgt [OPTIONS]

Starts the pollux target: one reactor per selected core, the JSON config replayed as RPC
calls, and a JSON-RPC server on a Unix socket. SIGINT or SIGTERM shut it down cleanly; a
second signal during shutdown exits at once.

Options:
  -c, --config FILE        JSON config to replay at start-up (SPDK's format:
                           {"subsystems":[{"subsystem":..,"config":[{"method":..,"params":..}]}]})
  -m, --cpus LIST          cores to run reactors on: a list ("0-1", "0,2-3") or a hex mask
                           ("0x3"); default: every core this process may run on
  -r, --rpc-socket PATH    JSON-RPC Unix socket (default /var/tmp/pollux.sock)
  -S, --socket-dir DIR     folder for vhost-user controller sockets (default: the working
                           directory); it must exist
      --mode MODE          poll: reactors always spin; interrupt: idle reactors sleep
                           (default interrupt); overrides the config file
      --spin-window-us N   in interrupt mode, how long a reactor keeps polling after its last
                           work before it sleeps (default 100)
  -L, --log-level LEVEL    error, warning, notice, info or debug (default notice)
  -s, --mem-size MB        DPDK memory in MiB (default 512)
      --hugepages          back DPDK memory with hugepages (default: ordinary memory,
                           --no-huge, since most machines reserve none)
      --shared-mem-size MB the shared I/O arena's address space, in MiB (an even number, default
                           65536): I/O buffers a vhost-user back-end maps
  -h, --help               print this help and exit
  -v, --version            print the version and exit
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

int UsageError(const std::string& message) {
  std::fprintf(stderr, "pollux-tgt: %s\nTry 'pollux-tgt --help'.\n", message.c_str());
  return 2;
}

ParsedArgs Parse(int argc, char** argv) {
  enum { kMode = 256, kSpinWindow, kHugepages, kSharedMemSize };
  static const option kOptions[] = {
      {"config", required_argument, nullptr, 'c'},
      {"cpus", required_argument, nullptr, 'm'},
      {"rpc-socket", required_argument, nullptr, 'r'},
      {"socket-dir", required_argument, nullptr, 'S'},
      {"mode", required_argument, nullptr, kMode},
      {"spin-window-us", required_argument, nullptr, kSpinWindow},
      {"log-level", required_argument, nullptr, 'L'},
      {"mem-size", required_argument, nullptr, 's'},
      {"hugepages", no_argument, nullptr, kHugepages},
      {"shared-mem-size", required_argument, nullptr, kSharedMemSize},
      {"help", no_argument, nullptr, 'h'},
      {"version", no_argument, nullptr, 'v'},
      {nullptr, 0, nullptr, 0},
  };
  ParsedArgs parsed;
  parsed.app.name = "pollux-tgt";
  auto fail = [&](const std::string& message) {
    parsed.exit_now = true;
    parsed.exit_code = UsageError(message);
    return parsed;
  };
  opterr = 0;
  int opt;
  while ((opt = getopt_long(argc, argv, ":c:m:r:S:L:s:hv", kOptions, nullptr)) != -1) {
    switch (opt) {
      case 'c':
        parsed.app.config_path = optarg;
        break;
      case 'm': {
        auto cpus = pollux::ParseCpuList(optarg);
        if (!cpus.ok()) return fail(std::string(cpus.status().message()));
        if (auto s = pollux::CheckCpusAllowed(*cpus); !s.ok()) return fail(std::string(s.message()));
        parsed.app.eal.cpus = *cpus;
        break;
      }
      case 'r':
        parsed.app.rpc_socket = optarg;
        break;
      case 'S': {
        struct stat st;
        if (::stat(optarg, &st) != 0 || !S_ISDIR(st.st_mode)) {
          return fail(std::string("--socket-dir \"") + optarg + "\": not a directory");
        }
        pollux::SetVhostSocketFolder(optarg);
        break;
      }
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
          return fail(std::string("--spin-window-us: expected microseconds from 0 to 10000000, got \"") +
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
          return fail(std::string("--mem-size: expected MiB from 16 to 1048576, got \"") + optarg + "\"");
        }
        parsed.app.eal.memory_mb = mb;
        break;
      }
      case kHugepages:
        parsed.app.eal.hugepages = true;
        break;
      case kSharedMemSize: {
        uint64_t mb;
        if (!ParseUint(optarg, &mb) || mb > (1u << 24)) {
          return fail(std::string("--shared-mem-size: expected MiB, got \"") + optarg + "\"");
        }
        if (auto s = pollux::SetSharedIoArenaSize(mb << 20); !s.ok()) {
          return fail("--shared-mem-size: " + std::string(s.message()));
        }
        break;
      }
      case 'h':
        std::fputs(kUsage, stdout);
        parsed.exit_now = true;
        return parsed;
      case 'v':
        std::printf("pollux-tgt %s\n", pollux::PolluxVersion());
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
    std::fprintf(stderr, "pollux-tgt: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
