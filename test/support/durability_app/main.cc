// pollux-durability-test-app: the durability check across kill -9 (durability_writer.h). A
// pollux app on a config that creates the bdev; --write runs until killed, --check reads back
// and exits 0 when everything acknowledged as flushed is there and no block is torn.
#include <charconv>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_format.h"
#include "durability_writer.h"
#include "pollux/app/app_command_line.h"

namespace {

constexpr char kUsage[] = R"(Usage: pollux-durability-test-app -c CONFIG -b BDEV --state FILE
                                  (--write [--rounds N] | --check) [OPTIONS]

--write: rounds of checksummed blocks over the bdev's first --units 4 KiB units, a FLUSH after
each, the round appended to FILE once its FLUSH completed; until killed or N rounds.
--check: every block read back must be whole and, once a round was flushed, from that round or
the next. Prints a JSON report; exit code 0 when it holds, 1 otherwise.

Options:
  -c, --config FILE   JSON config creating the bdev (as pollux-tgt's)
  -b, --bdev NAME     the bdev
      --state FILE    the flushed rounds
      --depth N       requests in flight (default 16)
      --units N       4 KiB units written (default 256)
  -m, --cpus LIST     cores (default: every allowed core)
  -L, --log-level L   error, warning, notice, info or debug
  -h, --help          print this help and exit
)";

bool ParseCount(const char* text, uint64_t* value) {
  const char* end = text + std::strlen(text);
  auto [ptr, ec] = std::from_chars(text, end, *value);
  return ec == std::errc() && ptr == end && *value > 0;
}

}  // namespace

int main(int argc, char** argv) {
  pollux::durability::DurabilityOptions options;
  bool write = false;
  auto count = [](const char* name, uint64_t* out) {
    return [name, out](const char* value) -> std::string {
      return ParseCount(value, out)
                 ? ""
                 : absl::StrFormat("--%s: expected a count, got \"%s\"", name, value);
    };
  };
  uint64_t depth = options.depth;
  pollux::AppCommandLine command_line =
      pollux::ParseAppCommandLine(argc, argv, "pollux-durability-test-app", kUsage,
                                  {{"bdev", 'b', true,
                                    [&](const char* v) {
                                      options.bdev = v;
                                      return std::string();
                                    }},
                                   {"state", 0, true,
                                    [&](const char* v) {
                                      options.state_path = v;
                                      return std::string();
                                    }},
                                   {"write", 0, false,
                                    [&](const char*) {
                                      write = true;
                                      return std::string();
                                    }},
                                   {"check", 0, false,
                                    [&](const char*) {
                                      options.check = true;
                                      return std::string();
                                    }},
                                   {"depth", 0, true, count("depth", &depth)},
                                   {"units", 0, true, count("units", &options.units)},
                                   {"rounds", 0, true, count("rounds", &options.rounds)}});
  if (command_line.exit_now) return command_line.exit_code;
  if (write == options.check || options.bdev.empty() || options.state_path.empty()) {
    std::fprintf(stderr,
                 "pollux-durability-test-app: give -b, --state and one of --write, --check\n");
    return 2;
  }
  options.depth = static_cast<uint32_t>(depth);
  command_line.app.rpc_socket.clear();
  absl::Status status = pollux::RunApp(command_line.app, [&options] {
    pollux::durability::StartDurabilityRun(options,
                                           [](absl::Status s) { pollux::RequestAppShutdown(s); });
  });
  if (!status.ok()) {
    std::fprintf(stderr, "pollux-durability-test-app: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
