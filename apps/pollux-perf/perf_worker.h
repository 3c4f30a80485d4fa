// A worker: one pollux Thread on one reactor core, running that core's jobs (one per target
// bdev; with --thread-per-job, one job), its ramp and stop timers and its progress publisher.
// With --move-threads or a scheduler other than static its Thread may run on every core of the
// run and be moved between them (thread_mover.h, scheduler/); its jobs, channels and pollers
// go with it. With --idle-channels it also holds a channel on every other bdev (idle_channels.h).
//
// Threads: the coordinator (PerfRun, on the app thread) creates the worker and its Thread,
// then drives it with messages: Prepare, then Go or Abort, and finally Release. Everything
// else runs on the worker's own Thread. The worker's Thread ends only on Release, which the
// coordinator sends once every job has reported, so the coordinator never sends a message to
// a Thread that is gone.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "idle_channels.h"
#include "perf_job.h"
#include "pollux/reactor/poller.h"
#include "pollux/reactor/thread.h"

namespace pollux::perf {

class PerfRun;

// Sends fn to `target`; when its message ring is full, retries from a poller on the calling
// Thread. Control path only (it allocates).
void PostOrRetry(Thread& target, absl::AnyInvocable<void()> fn);

// Where a worker runs and what it holds besides its jobs.
struct WorkerSpec {
  int cpu = -1;              // the core its Thread starts on
  std::vector<int> cpumask;  // the cores it may run on (empty: `cpu` only)
  std::string thread_name;
  // The run's first worker: it prints the progress line and takes the process's CPU time at
  // the measured window's start and end.
  bool first = false;
  std::vector<std::string> idle_bdevs;  // --idle-channels: the bdevs to hold a channel on
};

class Worker {
 public:
  Worker(PerfRun& run, const PerfOptions& options, WorkerSpec spec);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Before CreateThread, on the coordinator's thread.
  void AddJob(JobSpec spec, JobRecord& record);
  // Creates the Thread on this worker's core, with its cpumask. On the coordinator's thread.
  absl::Status CreateThread();

  // Messages from the coordinator (each runs on the worker's Thread).
  void PostPrepare();
  void PostGo();
  void PostAbort();
  void PostRelease();

  // On the worker's Thread: a job is about to close its descriptor (tells the coordinator),
  // then reached kDone.
  void NotifyJobDone();
  void OnJobFinished();

  // The core the worker's Thread started on.
  int cpu() const { return spec_.cpu; }
  // The worker's Thread (after CreateThread; alive until the coordinator releases it).
  Thread* thread() const { return thread_; }
  size_t job_count() const { return jobs_.size(); }
  // Set by Prepare; read by the coordinator after the worker reported.
  const absl::Status& prepare_status() const { return prepare_status_; }
  PerfRun& run() const { return run_; }
  // --idle-channels: how many it opened (after Prepare; read once the run is over).
  size_t idle_channels() const { return idle_channels_.opened(); }

 private:
  void Prepare();
  void Go();
  void Abort();
  void Release();
  void MaybeExit();
  void StopPollers();
  // The -t window: after the ramp (--ramp-time) or at once; its end at the stop timer.
  void BeginWindow(uint64_t now_tsc);
  PollResult OnStopTimer();
  void StartProgress(uint64_t start_tsc);

  PerfRun& run_;
  const PerfOptions& options_;
  const WorkerSpec spec_;
  Thread* thread_ = nullptr;
  IdleChannels idle_channels_;
  std::vector<std::unique_ptr<Job>> jobs_;
  absl::Status prepare_status_;
  size_t jobs_finished_ = 0;
  bool released_ = false;
  PollerHandle ramp_poller_;
  PollerHandle stop_poller_;
  PollerHandle publish_poller_;
  PollerHandle progress_poller_;
};

}  // namespace pollux::perf
