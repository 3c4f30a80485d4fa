// A worker: one pollux Thread on one reactor core, running that core's jobs (one per target
// bdev), its stop timer and its progress publisher. With --move-threads its Thread may run on
// every core of the run and is moved between them (thread_mover.h); its jobs, channels and
// pollers go with it.
//
// Threads: the coordinator (PerfRun, on the app thread) creates the worker and its Thread,
// then drives it with messages: Prepare, then Go or Abort, and finally Release. Everything
// else runs on the worker's own Thread. The worker's Thread ends only on Release, which the
// coordinator sends once every job has reported, so the coordinator never sends a message to
// a Thread that is gone.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "perf_job.h"
#include "pollux/reactor/poller.h"
#include "pollux/reactor/thread.h"

namespace pollux::perf {

class PerfRun;

// Sends fn to `target`; when its message ring is full, retries from a poller on the calling
// Thread. Control path only (it allocates).
void PostOrRetry(Thread& target, absl::AnyInvocable<void()> fn);

class Worker {
 public:
  // `cpu`: the core its Thread starts on; `cpumask`: the cores it may run on (empty: `cpu`
  // only). `prints_progress`: this worker prints the run's progress line (the first one does).
  Worker(PerfRun& run, const PerfOptions& options, int cpu, std::vector<int> cpumask,
         bool prints_progress);
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
  int cpu() const { return cpu_; }
  // The worker's Thread (after CreateThread; alive until the coordinator releases it).
  Thread* thread() const { return thread_; }
  size_t job_count() const { return jobs_.size(); }
  // Set by Prepare; read by the coordinator after the worker reported.
  const absl::Status& prepare_status() const { return prepare_status_; }
  PerfRun& run() const { return run_; }

 private:
  void Prepare();
  void Go();
  void Abort();
  void Release();
  void MaybeExit();
  void StopPollers();

  PerfRun& run_;
  const PerfOptions& options_;
  const int cpu_;
  const std::vector<int> cpumask_;
  const bool prints_progress_;
  Thread* thread_ = nullptr;
  std::vector<std::unique_ptr<Job>> jobs_;
  absl::Status prepare_status_;
  size_t jobs_finished_ = 0;
  bool released_ = false;
  PollerHandle stop_poller_;
  PollerHandle publish_poller_;
  PollerHandle progress_poller_;
};

}  // namespace pollux::perf
