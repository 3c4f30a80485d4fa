// The coordinator of a pollux-perf run: picks the target bdevs, checks the options against
// them, plans one job per target per core, starts the workers, and shuts the app down once
// every job has reported.
//
// Threads: Start, OnWorkerPrepared and OnJobDone run on the app thread; PrintProgress and
// MarkWindowStart/End on the first worker's Thread; Summary on the control thread after RunApp
// has returned. With --move-threads the job threads go round the run's cores (thread_mover.h),
// moved from a timed poller on the app thread between the start of the jobs and the last
// job's report; with --scheduler the scheduler selected at Start (on the app thread too) may
// move them.
//
// Stopping: each worker's timer stops its jobs after -t seconds. On SIGINT or SIGTERM, RunApp
// finishes the bdev subsystem, which unregisters every bdev: the remove event on each job's
// descriptor stops the job the same way, so the figures up to that moment are still reported.
// Jobs report to the coordinator before they close their descriptors, and the bdev subsystem
// (hence the app thread) cannot finish before they close: the app thread is always alive to
// receive their reports.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "command_line.h"
#include "memcpy_peer.h"
#include "perf_job.h"
#include "perf_worker.h"
#include "report.h"
#include "thread_mover.h"

namespace pollux::perf {

class PerfRun {
 public:
  explicit PerfRun(const PerfOptions& options);
  ~PerfRun();
  PerfRun(const PerfRun&) = delete;
  PerfRun& operator=(const PerfRun&) = delete;

  // RunApp's on_started: plans and starts the run, or shuts the app down with the error.
  void Start();

  // From the workers, on the app thread.
  void OnWorkerPrepared();
  void OnJobDone();

  // Prints the total IOPS and MiB/s since the previous call to stderr. On the first worker.
  void PrintProgress(uint64_t now_tsc);
  // The measured window's start (the jobs' start, or the ramp's end) and end (the stop timer,
  // or the first worker's jobs finishing when stopped early): the process's CPU time at each.
  // On the first worker; the end counts once, and only after a start.
  void MarkWindowStart(uint64_t now_tsc);
  void MarkWindowEnd(uint64_t now_tsc);

  // After RunApp returned: every job's figures.
  RunSummary Summary() const;

  uint64_t tsc_hz() const { return tsc_hz_; }
  // --memcpy-peer: one peer per core of the run, matching that core's jobs (after Start).
  const std::vector<MemcpyPeerSpec>& memcpy_peer_specs() const { return memcpy_peer_specs_; }

 private:
  absl::Status Plan();
  // --scheduler (or hold, under --move-threads): selects it as framework_set_scheduler does.
  absl::Status SelectScheduler();
  // Whether the job threads may run on every core of the run (a mover or scheduler moves them).
  bool JobThreadsMove() const;
  void Fail(absl::Status status);

  const PerfOptions& options_;
  uint64_t tsc_hz_ = 0;
  std::vector<std::unique_ptr<JobRecord>> records_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<MemcpyPeerSpec> memcpy_peer_specs_;
  std::unique_ptr<ThreadMover> mover_;  // --move-threads only
  size_t workers_started_ = 0;          // workers whose Thread exists
  size_t workers_prepared_ = 0;
  size_t jobs_expected_ = 0;  // jobs of the started workers
  size_t jobs_done_ = 0;
  absl::Status failure_;  // a start-up failure: RunApp's result

  // The measured window (first worker's Thread only; read once the run is over).
  uint64_t window_start_tsc_ = 0;  // 0: not started
  double window_start_cpu_s_ = 0;
  double cpu_percent_ = -1;           // set at the window's end
  uint64_t scheduler_period_us_ = 0;  // --scheduler: as selected

  // Progress (first worker's Thread only).
  uint64_t progress_last_tsc_ = 0;
  uint64_t progress_last_ops_ = 0;
  uint64_t progress_last_bytes_ = 0;
  uint64_t progress_start_tsc_ = 0;
};

}  // namespace pollux::perf
