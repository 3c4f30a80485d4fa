// pollux-perf's command line: what to run (workload, depth, I/O size, time, targets) and the
// app options (cores, memory, mode). Parsing only: nothing here touches DPDK or the reactors.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "pollux/app/app.h"

namespace pollux::perf {

enum class Workload : uint8_t {
  kRead,   // sequential reads
  kWrite,  // sequential writes
  kRandRead,
  kRandWrite,
  kRw,  // sequential, reads and writes mixed by read_percent
  kRandRw,
  kVerify,  // sequential write, read back, compare
};

std::string_view WorkloadName(Workload workload);
absl::StatusOr<Workload> ParseWorkload(std::string_view name);
bool IsRandom(Workload workload);
// Whether the workload writes (its descriptors must be writable).
bool Writes(Workload workload);

struct PerfOptions {
  AppOptions app;
  uint32_t queue_depth = 0;  // I/Os in flight per job
  // Bytes per I/O; with a range (-o MIN-MAX) the largest, MAX: the size of a slot (each I/O's
  // region of the device and of the buffers), of which an I/O covers the first bytes.
  uint64_t io_size = 0;
  // -o MIN-MAX: the smallest; each I/O picks its length from MIN to MAX in whole blocks. 0: -o
  // gave a single size, and every I/O is io_size long.
  uint64_t io_size_min = 0;
  std::string io_size_text;  // as typed ("4k", "512-128k"), for error messages
  // --buffer-offset: every data buffer starts this many bytes (0 to 4095) past a 4 KiB boundary.
  uint32_t buffer_offset = 0;
  Workload workload = Workload::kRandRead;
  uint32_t read_percent = 50;  // rw and randrw only
  uint64_t time_s = 0;
  // --rate: the most I/Os per second each job submits (per job, as fio's rate_iops); 0: as
  // many as the device completes.
  uint64_t rate_iops = 0;
  std::vector<std::string> bdev_names;  // empty: every unclaimed bdev
  bool json = false;
  bool memcpy_peer = false;  // measure memcpy with the same pattern after the run
  // --move-threads: every this many microseconds, each job thread moves to the next core of
  // the run (a testing aid, thread_mover.h); 0: the job threads stay pinned to their cores.
  uint64_t move_threads_us = 0;
  // --scheduler: the scheduler selected once the app runs (a registered name); empty: the
  // config's (static unless it says otherwise), with the job threads pinned. Any scheduler
  // but static may move the job threads over the run's cores.
  std::string scheduler;
  uint64_t scheduler_period_us = 0;  // --scheduler-period; 0: the scheduler's current period
  // --thread-per-job: one Thread per job (SPDK bdevperf's shape) instead of one per core.
  bool thread_per_job = false;
  // --idle-channels: every job thread also holds a descriptor and a channel, without I/O, on
  // every bdev that is neither a target nor claimed.
  bool idle_channels = false;
  // --ramp-time: seconds the jobs run before the measured -t window starts.
  uint64_t ramp_time_s = 0;
};

// "4096", "4k", "128K", "1M", "1G" (binary units). Fails on zero, garbage or overflow.
absl::StatusOr<uint64_t> ParseSize(std::string_view text);

// -o's value: a single size, or a range "MIN-MAX" of two sizes (fio's bsrange, "512-128k").
struct IoSizeRange {
  uint64_t min = 0;
  uint64_t max = 0;
  bool range = false;  // given as MIN-MAX (min may still equal max)
};
// Fails on a bad size (ParseSize) or MIN above MAX, with a message starting "-o".
absl::StatusOr<IoSizeRange> ParseIoSize(std::string_view text);

struct ParsedCommandLine {
  PerfOptions options;
  bool exit_now = false;  // --help, --version or a usage error
  int exit_code = 0;      // 2 for a usage error
};

// Parses argv. Usage errors are printed to stderr ("pollux-perf: <what>"), help to stdout.
ParsedCommandLine ParseCommandLine(int argc, char** argv);

}  // namespace pollux::perf
