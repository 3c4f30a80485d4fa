#include "command_line.h"

#include <getopt.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "pollux/app/app_command_line.h"
#include "pollux/env/cpu_list.h"
#include "pollux/env/log.h"
#include "pollux/env/shared_io_memory.h"
#include "pollux/scheduler/scheduler.h"

namespace pollux::perf {
namespace {

// --rate's upper bound (per job): far above any core's rate, and low enough that the token
// bucket's arithmetic (token_bucket.h) cannot overflow.
constexpr uint64_t kMaxRateIops = 1'000'000'000;

// --move-threads' bounds, in microseconds: below 10 us a move (two reactor messages) would
// rarely land before the next one is due; a minute is far beyond any useful period.
constexpr uint64_t kMinMovePeriodUs = 10;
constexpr uint64_t kMaxMovePeriodUs = 60'000'000;

// --scheduler-period's bounds: SetScheduler's own (checked here too, so that a bad value is a
// usage error rather than a failure after start-up).
constexpr uint64_t kMaxSchedulerPeriodUs = 60'000'000;
// --ramp-time's bound, -t's.
constexpr uint64_t kMaxRampTimeS = 1'000'000;
// --buffer-offset's bound: an offset past a 4 KiB boundary is below 4 KiB.
constexpr uint64_t kMaxBufferOffset = 4095;

constexpr char kUsage[] =
    R"(Usage: pollux-perf -c CONFIG -q DEPTH -o IO_SIZE -w WORKLOAD -t SECONDS [OPTIONS]

Measures block devices: replays CONFIG (which creates the bdevs), then runs one job per
target bdev per core, each keeping DEPTH I/Os in flight for SECONDS (or at most IOPS I/Os a
second with --rate), and prints IOPS, MiB/s and latency (average, min, max, p50, p99, p99.9)
per job and in total. SIGINT stops early and still reports.

Required:
  -c, --config FILE        JSON config creating the bdevs (SPDK's format, as pollux-tgt's)
  -q, --queue-depth N      I/Os in flight per job (1 to 65536)
  -o, --io-size SIZE       bytes per I/O, a multiple of the block size: 4096, 4k, 128K, 1M;
                           or a range MIN-MAX (512-128k, as fio's bsrange): each I/O picks its
                           length at random from MIN to MAX in whole blocks (both multiples of
                           the block size), with a seed of its own per job
  -w, --workload NAME      read, write, randread, randwrite, rw, randrw or verify
  -t, --time SECONDS       how long to run (1 to 1000000)

Options:
  -M, --rw-mix PERCENT     share of reads in rw and randrw (0 to 100, default 50)
      --rate IOPS          at most IOPS I/Os per second per job (1 to 1000000000; default: no
                           limit). Per job, as fio's rate_iops: -m 0-1 on one bdev makes 2
                           jobs, 2 x IOPS in total. A job ahead of its rate waits on a 1 ms
                           timer, never spinning (in --mode interrupt its core sleeps); at most
                           DEPTH I/Os stay in flight
  -b, --bdev NAME[,NAME]   target bdevs (repeatable); default: every bdev not claimed by a
                           virtual bdev
  -m, --cpus LIST          cores to run on, one job per target per core: a list ("0-1",
                           "0,2") or a hex mask ("0x3"); default: every allowed core
      --json               print the results as one JSON document on stdout (and nothing else)
      --memcpy-peer        after the run, measure plain memcpy with the same pattern, I/O size,
                           cores and time, and print it beside the bdev figures (the peer for
                           RAM bdevs; not with verify)
      --move-threads USEC  testing aid: every USEC microseconds (10 to 60000000), move each
                           job thread to the next core of the run, round robin over the -m
                           cores, with its I/O in flight (as SPDK's dynamic scheduler moves
                           threads): a bdev module that assumes its channel stays on one core
                           may fail verify, err or hang. Needs two or more cores. The job
                           threads may then run on every core of the run (otherwise each is
                           pinned to its own); a job's "core" is the one it started on. The
                           moves started are counted on stderr and in the report
      --scheduler NAME     select thread scheduler NAME once the config has been replayed (as
                           framework_set_scheduler does): static, dynamic, hold (moves nothing)
                           or another registered one. With any but static the job threads may
                           run on every core of the run, so that it can move them; without the
                           option they stay pinned to their cores. Not with --move-threads
      --scheduler-period USEC
                           how often the scheduler runs (1 to 60000000; default: its current
                           period, 1 s unless the config set another); needs --scheduler
      --thread-per-job     one pollux thread per job (SPDK bdevperf's shape): two targets on
                           one core are two threads sharing its reactor. Default: one thread per
                           core running all of that core's jobs
      --idle-channels      every job thread also opens each bdev of the config that is neither
                           a target nor claimed and holds an I/O channel on it without I/O (idle
                           sources beside the busy one); the count is reported
      --ramp-time SEC      run SEC seconds (0 to 1000000) before the measured -t window starts,
                           as fio's ramp_time: IOPS, latency and CPU cover the window only (I/O
                           errors and miscompares count over the whole run)
      --buffer-offset BYTES
                           start every data buffer BYTES (0 to 4095, default 0) past a 4 KiB
                           boundary, in the same memory as without: 7 puts them at odd
                           addresses, which the bdev layer bounces for a bdev that needs aligned
                           buffers (O_DIRECT files) and hands as they are to one that does not
      --mode MODE          poll (default) or interrupt; overrides the config file
  -r, --rpc-socket PATH    also serve JSON-RPC on PATH (default: no RPC server)
      --rpc-max-request-size BYTES, --rpc-max-connections N, --rpc-request-timeout SEC
                           the RPC server's limits, as pollux-tgt's
  -L, --log-level LEVEL    error, warning, notice, info or debug (default notice)
  -s, --mem-size MB        DPDK memory in MiB (default 512)
      --hugepages          back DPDK memory with hugepages (default --no-huge)
      --shared-mem-size MB the shared I/O arena's address space, in MiB (an even number, default
                           65536): buffers for bdevs whose back-end maps them (virtio)
      --plugin PATH        load a bdev module built outside pollux (a .so built with
                           pollux_add_plugin) before the config; repeatable
  -h, --help               print this help and exit
  -v, --version            print the version and exit

Workloads: sequential ones walk each job's share of the device in IO_SIZE steps, wrapping at
its end; random ones pick IO_SIZE-aligned offsets in that share (with -o MIN-MAX: in MAX steps,
each I/O covering the first bytes of its step). With several cores on one bdev, the device is
cut into one contiguous share per core. verify writes a pattern derived from each block's
number and a per-job seed, reads back the blocks it wrote and compares; a mismatch or an I/O
error stops the job, is printed, and makes the exit code 1.

Exit codes: 0 success; 1 runtime failure (config, bdev, I/O error, miscompare); 2 usage.
)";

bool ParseUint(std::string_view text, uint64_t* value) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return !text.empty() && ec == std::errc() && ptr == text.data() + text.size();
}

// Parses an integer option in [min, max] or explains what was expected.
absl::StatusOr<uint64_t> ParseBounded(const char* option, const char* what, const char* text,
                                      uint64_t min, uint64_t max) {
  uint64_t value;
  if (!ParseUint(text, &value) || value < min || value > max) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: expected %s from %u to %u, got \"%s\"", option, what, min, max, text));
  }
  return value;
}

void AddBdevNames(std::string_view list, std::vector<std::string>* names) {
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string_view::npos) comma = list.size();
    std::string name(list.substr(start, comma - start));
    if (!name.empty() && std::find(names->begin(), names->end(), name) == names->end()) {
      names->push_back(std::move(name));
    }
    start = comma + 1;
  }
}

}  // namespace

std::string_view WorkloadName(Workload workload) {
  switch (workload) {
    case Workload::kRead:
      return "read";
    case Workload::kWrite:
      return "write";
    case Workload::kRandRead:
      return "randread";
    case Workload::kRandWrite:
      return "randwrite";
    case Workload::kRw:
      return "rw";
    case Workload::kRandRw:
      return "randrw";
    case Workload::kVerify:
      return "verify";
  }
  return "?";
}

absl::StatusOr<Workload> ParseWorkload(std::string_view name) {
  for (Workload w : {Workload::kRead, Workload::kWrite, Workload::kRandRead, Workload::kRandWrite,
                     Workload::kRw, Workload::kRandRw, Workload::kVerify}) {
    if (name == WorkloadName(w)) return w;
  }
  return absl::InvalidArgumentError(absl::StrFormat(
      "-w: unknown workload \"%s\" (expected read, write, randread, randwrite, rw, randrw or "
      "verify)",
      std::string(name)));
}

bool IsRandom(Workload workload) {
  return workload == Workload::kRandRead || workload == Workload::kRandWrite ||
         workload == Workload::kRandRw;
}

bool Writes(Workload workload) {
  return workload != Workload::kRead && workload != Workload::kRandRead;
}

absl::StatusOr<uint64_t> ParseSize(std::string_view text) {
  auto bad = [&] {
    return absl::InvalidArgumentError(
        absl::StrFormat("-o: expected a size in bytes such as 4096, 4k, 128K or 1M, got \"%s\"",
                        std::string(text)));
  };
  if (text.empty()) return bad();
  uint64_t shift = 0;
  switch (text.back()) {
    case 'k':
    case 'K':
      shift = 10;
      break;
    case 'm':
    case 'M':
      shift = 20;
      break;
    case 'g':
    case 'G':
      shift = 30;
      break;
    default:
      break;
  }
  std::string_view digits = shift != 0 ? text.substr(0, text.size() - 1) : text;
  uint64_t value;
  if (!ParseUint(digits, &value) || value == 0) return bad();
  if (value > (std::numeric_limits<uint64_t>::max() >> shift)) return bad();
  return value << shift;
}

absl::StatusOr<IoSizeRange> ParseIoSize(std::string_view text) {
  const size_t dash = text.find('-');
  absl::StatusOr<uint64_t> min = ParseSize(text.substr(0, dash));
  absl::StatusOr<uint64_t> max =
      dash == std::string_view::npos ? min : ParseSize(text.substr(dash + 1));
  if (!min.ok() || !max.ok()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "-o: expected a size in bytes such as 4096, 4k, 128K or 1M, or a range MIN-MAX such "
        "as 512-128k, got \"%s\"",
        std::string(text)));
  }
  if (*min > *max) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "-o %s: MIN (%u bytes) is larger than MAX (%u bytes)", std::string(text), *min, *max));
  }
  return IoSizeRange{*min, *max, dash != std::string_view::npos};
}

ParsedCommandLine ParseCommandLine(int argc, char** argv) {
  enum {
    kJson = 256,
    kMode,
    kHugepages,
    kMemcpyPeer,
    kSharedMemSize,
    kRate,
    kMoveThreads,
    kScheduler,
    kSchedulerPeriod,
    kThreadPerJob,
    kIdleChannels,
    kRampTime,
    kBufferOffset,
    kPlugin,
    kRpcMaxRequestSize,
    kRpcMaxConnections,
    kRpcRequestTimeout,
  };
  static const option kOptions[] = {
      {"config", required_argument, nullptr, 'c'},
      {"queue-depth", required_argument, nullptr, 'q'},
      {"io-size", required_argument, nullptr, 'o'},
      {"workload", required_argument, nullptr, 'w'},
      {"rw-mix", required_argument, nullptr, 'M'},
      {"rate", required_argument, nullptr, kRate},
      {"time", required_argument, nullptr, 't'},
      {"bdev", required_argument, nullptr, 'b'},
      {"cpus", required_argument, nullptr, 'm'},
      {"json", no_argument, nullptr, kJson},
      {"memcpy-peer", no_argument, nullptr, kMemcpyPeer},
      {"move-threads", required_argument, nullptr, kMoveThreads},
      {"scheduler", required_argument, nullptr, kScheduler},
      {"scheduler-period", required_argument, nullptr, kSchedulerPeriod},
      {"thread-per-job", no_argument, nullptr, kThreadPerJob},
      {"idle-channels", no_argument, nullptr, kIdleChannels},
      {"ramp-time", required_argument, nullptr, kRampTime},
      {"buffer-offset", required_argument, nullptr, kBufferOffset},
      {"mode", required_argument, nullptr, kMode},
      {"rpc-socket", required_argument, nullptr, 'r'},
      {"rpc-max-request-size", required_argument, nullptr, kRpcMaxRequestSize},
      {"rpc-max-connections", required_argument, nullptr, kRpcMaxConnections},
      {"rpc-request-timeout", required_argument, nullptr, kRpcRequestTimeout},
      {"log-level", required_argument, nullptr, 'L'},
      {"mem-size", required_argument, nullptr, 's'},
      {"hugepages", no_argument, nullptr, kHugepages},
      {"shared-mem-size", required_argument, nullptr, kSharedMemSize},
      {"plugin", required_argument, nullptr, kPlugin},
      {"help", no_argument, nullptr, 'h'},
      {"version", no_argument, nullptr, 'v'},
      {nullptr, 0, nullptr, 0},
  };
  ParsedCommandLine parsed;
  PerfOptions& o = parsed.options;
  o.app.name = "pollux-perf";
  o.app.rpc_socket.clear();  // a benchmark serves no RPC unless asked to
  // A benchmark spins: waking a sleeping core costs more than the I/O being measured.
  o.app.mode = ReactorMode::kPoll;
  o.app.mode_from_command_line = true;
  bool mix_given = false;
  bool workload_given = false;
  bool cpus_given = false;

  auto fail = [&](const std::string& message) {
    std::fprintf(stderr, "pollux-perf: %s\nTry 'pollux-perf --help'.\n", message.c_str());
    parsed.exit_now = true;
    parsed.exit_code = 2;
    return parsed;
  };

  opterr = 0;
  optind = 1;
  int opt;
  while ((opt = getopt_long(argc, argv, ":c:q:o:w:M:t:b:m:r:L:s:hv", kOptions, nullptr)) != -1) {
    switch (opt) {
      case 'c':
        o.app.config_path = optarg;
        break;
      case 'q': {
        auto v = ParseBounded("-q", "a queue depth", optarg, 1, 65536);
        if (!v.ok()) return fail(std::string(v.status().message()));
        o.queue_depth = static_cast<uint32_t>(*v);
        break;
      }
      case 'o': {
        auto v = ParseIoSize(optarg);
        if (!v.ok()) return fail(std::string(v.status().message()));
        o.io_size = v->max;
        o.io_size_min = v->range ? v->min : 0;
        o.io_size_text = optarg;
        break;
      }
      case 'w': {
        auto w = ParseWorkload(optarg);
        if (!w.ok()) return fail(std::string(w.status().message()));
        o.workload = *w;
        workload_given = true;
        break;
      }
      case 'M': {
        auto v = ParseBounded("-M", "a read percentage", optarg, 0, 100);
        if (!v.ok()) return fail(std::string(v.status().message()));
        o.read_percent = static_cast<uint32_t>(*v);
        mix_given = true;
        break;
      }
      case kRate: {
        auto v = ParseBounded("--rate", "I/Os per second per job", optarg, 1, kMaxRateIops);
        uint64_t zero;
        if (!v.ok() && ParseUint(optarg, &zero) && zero == 0) {
          // fio reads rate_iops=0 as "no limit"; here that is leaving --rate out.
          return fail(
              "--rate: expected I/Os per second per job from 1 to 1000000000, got \"0\" "
              "(for no limit, leave --rate out)");
        }
        if (!v.ok()) return fail(std::string(v.status().message()));
        o.rate_iops = *v;
        break;
      }
      case 't': {
        auto v = ParseBounded("-t", "seconds", optarg, 1, 1000000);
        if (!v.ok()) return fail(std::string(v.status().message()));
        o.time_s = *v;
        break;
      }
      case 'b':
        AddBdevNames(optarg, &o.bdev_names);
        break;
      case 'm': {
        auto cpus = ParseCpuList(optarg);
        if (!cpus.ok()) return fail(std::string(cpus.status().message()));
        if (auto s = CheckCpusAllowed(*cpus); !s.ok()) return fail(std::string(s.message()));
        o.app.eal.cpus = *cpus;
        cpus_given = true;
        break;
      }
      case kJson:
        o.json = true;
        break;
      case kMemcpyPeer:
        o.memcpy_peer = true;
        break;
      case kMoveThreads: {
        auto v = ParseBounded("--move-threads", "a period in microseconds", optarg,
                              kMinMovePeriodUs, kMaxMovePeriodUs);
        if (!v.ok()) return fail(std::string(v.status().message()));
        o.move_threads_us = *v;
        break;
      }
      case kScheduler: {
        // The registry is complete by now: the built-in schedulers, and every other one
        // registered from a static initializer or by main before parsing.
        const std::vector<std::string> names = SchedulerNames();
        if (std::find(names.begin(), names.end(), optarg) == names.end()) {
          return fail(absl::StrFormat("--scheduler: unknown scheduler \"%s\" (registered: %s)",
                                      optarg, absl::StrJoin(names, ", ")));
        }
        o.scheduler = optarg;
        break;
      }
      case kSchedulerPeriod: {
        auto v = ParseBounded("--scheduler-period", "a period in microseconds", optarg, 1,
                              kMaxSchedulerPeriodUs);
        if (!v.ok()) return fail(std::string(v.status().message()));
        o.scheduler_period_us = *v;
        break;
      }
      case kThreadPerJob:
        o.thread_per_job = true;
        break;
      case kIdleChannels:
        o.idle_channels = true;
        break;
      case kRampTime: {
        auto v = ParseBounded("--ramp-time", "seconds", optarg, 0, kMaxRampTimeS);
        if (!v.ok()) return fail(std::string(v.status().message()));
        o.ramp_time_s = *v;
        break;
      }
      case kBufferOffset: {
        auto v = ParseBounded("--buffer-offset", "a byte offset", optarg, 0, kMaxBufferOffset);
        if (!v.ok()) return fail(std::string(v.status().message()));
        o.buffer_offset = static_cast<uint32_t>(*v);
        break;
      }
      case kMode: {
        auto mode = ParseReactorMode(optarg);
        if (!mode.ok()) return fail(std::string(mode.status().message()));
        o.app.mode = *mode;
        break;
      }
      case 'r':
        o.app.rpc_socket = optarg;
        break;
      case kRpcMaxRequestSize:
      case kRpcMaxConnections:
      case kRpcRequestTimeout: {
        const char* name = opt == kRpcMaxRequestSize   ? "rpc-max-request-size"
                           : opt == kRpcMaxConnections ? "rpc-max-connections"
                                                       : "rpc-request-timeout";
        std::string error = ParseRpcServerOption(name, optarg, o.app.rpc_server);
        if (!error.empty()) return fail(error);
        break;
      }
      case 'L': {
        auto level = ParseLogLevel(optarg);
        if (!level.ok()) return fail(std::string(level.status().message()));
        SetLogLevel(*level);
        o.app.eal.quiet = *level < LogLevel::kInfo;
        break;
      }
      case 's': {
        auto v = ParseBounded("-s", "MiB", optarg, 16, 1u << 20);
        if (!v.ok()) return fail(std::string(v.status().message()));
        o.app.eal.memory_mb = *v;
        break;
      }
      case kHugepages:
        o.app.eal.hugepages = true;
        break;
      case kPlugin:
        o.app.plugins.push_back(optarg);
        break;
      case kSharedMemSize: {
        auto v = ParseBounded("--shared-mem-size", "MiB", optarg, 16, 1u << 24);
        if (!v.ok()) return fail(std::string(v.status().message()));
        if (absl::Status s = SetSharedIoArenaSize(*v << 20); !s.ok()) {
          return fail(absl::StrFormat("--shared-mem-size: %s", s.message()));
        }
        break;
      }
      case 'h':
        std::fputs(kUsage, stdout);
        parsed.exit_now = true;
        return parsed;
      case 'v':
        std::printf("pollux-perf %s\n", PolluxVersion());
        parsed.exit_now = true;
        return parsed;
      case ':':
        return fail(absl::StrFormat("option %s needs a value", argv[optind - 1]));
      default:
        return fail(absl::StrFormat("unknown option %s", argv[optind - 1]));
    }
  }
  if (optind < argc) return fail(absl::StrFormat("unexpected argument \"%s\"", argv[optind]));
  // Required options, in the order of the usage line.
  if (o.app.config_path.empty())
    return fail("-c CONFIG is required: it creates the bdevs to measure");
  if (o.queue_depth == 0) return fail("-q DEPTH is required");
  if (o.io_size == 0) return fail("-o IO_SIZE is required");
  if (!workload_given) return fail("-w WORKLOAD is required");
  if (o.time_s == 0) return fail("-t SECONDS is required");
  if (o.memcpy_peer && o.workload == Workload::kVerify) {
    return fail("--memcpy-peer measures throughput workloads; verify compares data instead");
  }
  if (o.memcpy_peer && o.rate_iops != 0) {
    return fail(
        "--memcpy-peer compares the bdev's peak with memcpy's; --rate holds the jobs below "
        "their peak");
  }
  if (o.move_threads_us != 0 && cpus_given && o.app.eal.cpus.size() < 2) {
    return fail(absl::StrFormat(
        "--move-threads moves job threads between the cores of the run, and --cpus %s gives "
        "one core: there is no other core to move to (give two or more, e.g. --cpus 0-1)",
        FormatCpuList(o.app.eal.cpus)));
  }
  if (o.memcpy_peer && o.move_threads_us != 0) {
    return fail(
        "--memcpy-peer compares the bdev's peak with memcpy's; --move-threads costs the jobs "
        "part of their peak");
  }
  if (o.scheduler_period_us != 0 && o.scheduler.empty()) {
    return fail(
        "--scheduler-period sets the period of the scheduler --scheduler selects: give "
        "--scheduler too (e.g. --scheduler dynamic)");
  }
  if (!o.scheduler.empty() && o.move_threads_us != 0) {
    return fail(absl::StrFormat(
        "--move-threads moves the job threads itself, and --scheduler %s would move them too: "
        "leave one out",
        o.scheduler));
  }
  if (mix_given && o.workload != Workload::kRw && o.workload != Workload::kRandRw) {
    return fail(absl::StrFormat("-M applies to rw and randrw only, not to %s",
                                std::string(WorkloadName(o.workload))));
  }
  return parsed;
}

}  // namespace pollux::perf
