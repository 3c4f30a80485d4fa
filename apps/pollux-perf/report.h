// What pollux-perf prints: a table like bdevperf's, or one JSON document, built from the
// figures each job handed back. Runs on the control thread after RunApp has returned.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "command_line.h"
#include "memcpy_peer.h"
#include "pollux/bdev/bdev_stats.h"
#include "pollux/rpc/json_rpc.h"
#include "thread_mover.h"

namespace pollux::perf {

// One job's outcome: written on the job's thread when it stops, read after the run.
struct JobResult {
  std::string bdev;
  int cpu = -1;      // the core it started on (with --move-threads it went round the run's cores)
  bool ran = false;  // it submitted I/O (false: stopped before the start)
  bool stopped_early = false;  // its bdev went away (shutdown by signal, or deleted by RPC)
  uint64_t run_ticks = 0;      // TSC ticks from the window's start to the stop
  // The I/O the job submitted, completed by its stop (BdevDesc::SubmittedStats of its channel:
  // not what a virtual bdev measured beside it forwarded into the same channel).
  BdevIoStats stats;
  // Every completion of the job's bdev on the job's thread by its stop, forwarded I/O included
  // (BdevDesc::ChannelStats): with a passthru and its base measured on one core, the base's is
  // the sum of both jobs' operations.
  uint64_t bdev_ops = 0;
  // --ramp-time: the same when the measured window started (the figures are those at the stop
  // less these); a job stopped before the ramp's end has none (its figures cover the ramp).
  bool after_ramp = false;
  BdevIoStats window_start;
  uint64_t window_start_bdev_ops = 0;
  uint64_t io_errors = 0;    // failed completions, those while draining included
  uint64_t miscompares = 0;  // verify: buffers that did not read back as written
};

struct RunSummary {
  const PerfOptions* options = nullptr;
  uint64_t tsc_hz = 0;
  std::vector<JobResult> jobs;
  std::vector<MemcpyPeerResult> memcpy_peer;  // --memcpy-peer: one per core
  ThreadMoveFigures thread_moves;             // --move-threads (period 0 otherwise)
  // The process's CPU time (utime + stime, every thread) over the measured window, in percent
  // of one core; negative when the window never ended (no job ran to its stop timer).
  double cpu_percent = -1;
  size_t idle_channels = 0;  // --idle-channels: descriptors with a channel held, all threads
  uint64_t scheduler_period_us = 0;  // --scheduler: the period it ran with
};

// The I/O size as the report and the plan line give it: "4096-byte I/O", or with -o MIN-MAX
// "I/O of 512 to 131072 bytes".
std::string IoSizeDescription(const PerfOptions& options);

// Whether any job failed an I/O or a comparison.
bool AnyJobFailed(const RunSummary& summary);

// The table: one line per job and a total line.
std::string FormatTable(const RunSummary& summary);
// The same figures as JSON.
rpc::Json ResultsJson(const RunSummary& summary);
// --move-threads: one line on the moves ("pollux-perf: 2990 thread moves started ..."), for
// stderr; empty without the option.
std::string ThreadMovesLine(const RunSummary& summary);

}  // namespace pollux::perf
