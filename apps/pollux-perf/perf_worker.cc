#include "perf_worker.h"

#include <rte_cycles.h>

#include <chrono>
#include <utility>

#include "absl/strings/str_format.h"
#include "perf_run.h"
#include "pollux/app/app.h"

namespace pollux::perf {

void PostOrRetry(Thread& target, absl::AnyInvocable<void()> fn) {
  using Fn = absl::AnyInvocable<void()>;
  static constexpr MessageFn kRun = [](void* arg) {
    std::unique_ptr<Fn> boxed(static_cast<Fn*>(arg));
    (*boxed)();
  };
  auto* boxed = new Fn(std::move(fn));
  if (target.SendMessage(kRun, boxed)) return;
  // The ring is full. Spinning here could wait forever for a thread on this very reactor, so
  // retry from a poller on the calling thread instead.
  struct Retry {
    Thread* target;
    Fn* boxed;
    Poller* poller;
  };
  auto* retry = new Retry{&target, boxed, nullptr};
  retry->poller = Thread::Current()->RegisterPoller("perf_post_retry", [retry] {
    if (!retry->target->SendMessage(kRun, retry->boxed)) return PollResult::kIdle;
    retry->poller->Unregister();
    delete retry;
    return PollResult::kBusy;
  });
}

Worker::Worker(PerfRun& run, const PerfOptions& options, WorkerSpec spec)
    : run_(run), options_(options), spec_(std::move(spec)) {}

Worker::~Worker() = default;

void Worker::AddJob(JobSpec spec, JobRecord& record) {
  jobs_.push_back(std::make_unique<Job>(*this, options_, std::move(spec), record));
}

absl::Status Worker::CreateThread() {
  auto thread = Thread::Create(spec_.thread_name, {.cpu = spec_.cpu, .cpumask = spec_.cpumask});
  if (!thread.ok()) {
    return absl::Status(thread.status().code(),
                        absl::StrFormat("create the job thread %s on core %d: %s",
                                        spec_.thread_name, spec_.cpu, thread.status().message()));
  }
  thread_ = *thread;
  return absl::OkStatus();
}

void Worker::PostPrepare() {
  PostOrRetry(*thread_, [this] { Prepare(); });
}
void Worker::PostGo() {
  PostOrRetry(*thread_, [this] { Go(); });
}
void Worker::PostAbort() {
  PostOrRetry(*thread_, [this] { Abort(); });
}
void Worker::PostRelease() {
  PostOrRetry(*thread_, [this] { Release(); });
}

void Worker::Prepare() {
  for (auto& job : jobs_) {
    prepare_status_ = job->Open();
    if (!prepare_status_.ok()) break;
  }
  // After the jobs: their channels are the thread's first (as a busy source set up before the
  // idle ones); released once the jobs have finished (OnJobFinished).
  if (prepare_status_.ok() && !spec_.idle_bdevs.empty()) {
    prepare_status_ = idle_channels_.Open(spec_.idle_bdevs);
  }
  PerfRun* run = &run_;
  PostOrRetry(*AppThread(), [run] { run->OnWorkerPrepared(); });
}

void Worker::Go() {
  // One start time for every job of the core (and, within a few microseconds of message
  // latency, of the run), taken before the first submission.
  const uint64_t start = rte_rdtsc();
  bool any_running = false;
  for (auto& job : jobs_) {
    job->Start(start);
    any_running |= job->running();
  }
  if (!any_running) return;  // every job was stopped before the start (its bdev went away)

  if (options_.ramp_time_s == 0) {
    if (spec_.first) run_.MarkWindowStart(start);
  } else {
    PollerOptions ramp_options;
    ramp_options.period = std::chrono::seconds(options_.ramp_time_s);
    ramp_poller_ = PollerHandle(thread_->RegisterPoller(
        "perf_ramp_end",
        [this] {
          BeginWindow(rte_rdtsc());
          ramp_poller_.reset();
          return PollResult::kBusy;
        },
        std::move(ramp_options)));
  }
  PollerOptions stop_options;
  stop_options.period = std::chrono::seconds(options_.ramp_time_s + options_.time_s);
  stop_poller_ = PollerHandle(thread_->RegisterPoller(
      "perf_stop", [this] { return OnStopTimer(); }, std::move(stop_options)));
  if (options_.ramp_time_s + options_.time_s > 2) StartProgress(start);
}

void Worker::BeginWindow(uint64_t now_tsc) {
  for (auto& job : jobs_) job->BeginWindow(now_tsc);
  if (spec_.first) run_.MarkWindowStart(now_tsc);
}

PollResult Worker::OnStopTimer() {
  if (spec_.first) run_.MarkWindowEnd(rte_rdtsc());
  for (auto& job : jobs_) job->Stop(false);
  stop_poller_.reset();
  return PollResult::kBusy;
}

void Worker::StartProgress(uint64_t start_tsc) {
  // Channel statistics are read on their own thread only: each worker publishes its jobs'
  // totals for the progress line, ten times a second (nothing per I/O).
  PollerOptions publish_options;
  publish_options.period = std::chrono::milliseconds(100);
  publish_poller_ = PollerHandle(thread_->RegisterPoller(
      "perf_publish",
      [this] {
        for (auto& job : jobs_) job->PublishProgress();
        return PollResult::kBusy;
      },
      std::move(publish_options)));
  if (!spec_.first) return;
  run_.PrintProgress(start_tsc);  // the baseline
  PollerOptions progress_options;
  progress_options.period = std::chrono::seconds(1);
  progress_poller_ = PollerHandle(thread_->RegisterPoller(
      "perf_progress",
      [this] {
        run_.PrintProgress(rte_rdtsc());
        return PollResult::kBusy;
      },
      std::move(progress_options)));
}

void Worker::Abort() {
  for (auto& job : jobs_) job->Stop(false);
}

void Worker::NotifyJobDone() {
  PerfRun* run = &run_;
  PostOrRetry(*AppThread(), [run] { run->OnJobDone(); });
}

void Worker::OnJobFinished() {
  if (++jobs_finished_ == jobs_.size()) {
    StopPollers();
    idle_channels_.Release();
    // A run stopped early (by a signal) ends its window here, its drain included.
    if (spec_.first) run_.MarkWindowEnd(rte_rdtsc());
  }
  MaybeExit();
}

void Worker::Release() {
  released_ = true;
  MaybeExit();
}

void Worker::MaybeExit() {
  if (!released_ || jobs_finished_ != jobs_.size() || thread_->exiting()) return;
  StopPollers();
  thread_->Exit();
}

void Worker::StopPollers() {
  ramp_poller_.reset();
  stop_poller_.reset();
  publish_poller_.reset();
  progress_poller_.reset();
}

}  // namespace pollux::perf
