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

Worker::Worker(PerfRun& run, const PerfOptions& options, int cpu, std::vector<int> cpumask,
               bool prints_progress)
    : run_(run),
      options_(options),
      cpu_(cpu),
      cpumask_(std::move(cpumask)),
      prints_progress_(prints_progress) {}

Worker::~Worker() = default;

void Worker::AddJob(JobSpec spec, JobRecord& record) {
  jobs_.push_back(std::make_unique<Job>(*this, options_, std::move(spec), record));
}

absl::Status Worker::CreateThread() {
  auto thread =
      Thread::Create(absl::StrFormat("perf_core%d", cpu_), {.cpu = cpu_, .cpumask = cpumask_});
  if (!thread.ok()) {
    return absl::Status(
        thread.status().code(),
        absl::StrFormat("create the job thread on core %d: %s", cpu_, thread.status().message()));
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

  PollerOptions stop_options;
  stop_options.period = std::chrono::seconds(options_.time_s);
  stop_poller_ = PollerHandle(thread_->RegisterPoller(
      "perf_stop",
      [this] {
        for (auto& job : jobs_) job->Stop(false);
        stop_poller_.reset();
        return PollResult::kBusy;
      },
      std::move(stop_options)));

  // Channel statistics are read on their own thread only: each worker publishes its jobs'
  // totals for the progress line, ten times a second (nothing per I/O).
  if (options_.time_s > 2) {
    PollerOptions publish_options;
    publish_options.period = std::chrono::milliseconds(100);
    publish_poller_ = PollerHandle(thread_->RegisterPoller(
        "perf_publish",
        [this] {
          for (auto& job : jobs_) job->PublishProgress();
          return PollResult::kBusy;
        },
        std::move(publish_options)));
    if (prints_progress_) {
      run_.PrintProgress(start);  // the baseline
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
  }
}

void Worker::Abort() {
  for (auto& job : jobs_) job->Stop(false);
}

void Worker::NotifyJobDone() {
  PerfRun* run = &run_;
  PostOrRetry(*AppThread(), [run] { run->OnJobDone(); });
}

void Worker::OnJobFinished() {
  if (++jobs_finished_ == jobs_.size()) StopPollers();
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
  stop_poller_.reset();
  publish_poller_.reset();
  progress_poller_.reset();
}

}  // namespace pollux::perf
