// pollux-perf: the bdevperf of pollux. Replays a config that creates bdevs, runs one job per
// target bdev per core for -t seconds, and prints IOPS, MiB/s and latency per job and in total
// (a table, or JSON with --json). See `pollux-perf --help`.
#include <cstdio>
#include <string>

#include "command_line.h"
#include "hold_scheduler.h"
#include "perf_run.h"
#include "pollux/app/app.h"
#include "report.h"

int main(int argc, char** argv) {
  using namespace pollux::perf;
  // Before parsing: --scheduler checks names against the registry.
  if (absl::Status s = RegisterHoldScheduler(); !s.ok()) {
    std::fprintf(stderr, "pollux-perf: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  ParsedCommandLine parsed = ParseCommandLine(argc, argv);
  if (parsed.exit_now) return parsed.exit_code;
  const PerfOptions& options = parsed.options;

  PerfRun run(options);
  absl::Status status = pollux::RunApp(options.app, [&run] { run.Start(); });

  // The jobs have all reported by now: RunApp returns only after the bdev subsystem finished,
  // which waits for every job to close its descriptor.
  RunSummary summary = run.Summary();
  bool any_ran = false;
  for (const JobResult& job : summary.jobs) any_ran |= job.ran;
  if (any_ran && options.memcpy_peer && status.ok()) {
    summary.memcpy_peer = pollux::perf::RunMemcpyPeers(run.memcpy_peer_specs());
  }
  if (any_ran) {
    if (options.json) {
      std::printf("%s\n", ResultsJson(summary).dump(2).c_str());
    } else {
      std::fputs(FormatTable(summary).c_str(), stdout);
    }
    std::fflush(stdout);
    const std::string moves = ThreadMovesLine(summary);
    std::fputs(moves.c_str(), stderr);
  }
  if (!status.ok()) {
    std::fprintf(stderr, "pollux-perf: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  if (!any_ran) {
    std::fprintf(stderr, "pollux-perf: no job ran\n");
    return 1;
  }
  if (AnyJobFailed(summary)) {
    std::fprintf(stderr, "pollux-perf: FAILED: I/O errors or verify miscompares (see above)\n");
    return 1;
  }
  return 0;
}
