#include "scheduler_service.h"

#include <rte_cycles.h>

#include <algorithm>

#include "pollux/env/log.h"
#include "pollux/reactor/reactor.h"
#include "pollux/reactor/thread.h"

namespace pollux {
namespace {
SchedulerService* g_service = nullptr;  // app thread only
}  // namespace

SchedulerService* SchedulerService::Get() { return g_service; }

void SchedulerService::Start(const SchedulerConfig& config, std::unique_ptr<Scheduler> scheduler) {
  Stop();
  g_service = new SchedulerService(config, std::move(scheduler));
}

void SchedulerService::Stop() {
  delete g_service;
  g_service = nullptr;
}

SchedulerService::SchedulerService(const SchedulerConfig& config,
                                   std::unique_ptr<Scheduler> scheduler)
    : config_(config), scheduler_(std::move(scheduler)) {
  RegisterPoller();
}

void SchedulerService::RegisterPoller() {
  PollerOptions options;
  options.period = std::chrono::microseconds(config_.period_us);
  poller_ = PollerHandle(Thread::Current()->RegisterPoller(
      "scheduler",
      [this] {
        RunPeriod();
        // Not busy: the period's work is bookkeeping, and a busy report would keep the app
        // thread's reactor from sleeping for its spin window every period.
        return PollResult::kIdle;
      },
      std::move(options)));
}

void SchedulerService::Select(const SchedulerConfig& config, std::unique_ptr<Scheduler> scheduler) {
  const bool new_period = config.period_us != config_.period_us;
  config_ = config;
  scheduler_ = std::move(scheduler);
  if (new_period) RegisterPoller();
  RunPeriod();
}

int SchedulerService::RunPeriod() {
  ReactorRuntime* runtime = ReactorRuntime::Get();
  if (runtime == nullptr) return 0;
  ++period_;
  const uint64_t now = rte_rdtsc();
  SchedulerInput input;
  input.cpus = runtime->cpus();
  std::sort(input.cpus.begin(), input.cpus.end());
  Reactor* here = Thread::Current() != nullptr ? Thread::Current()->reactor() : nullptr;
  input.main_cpu = here != nullptr ? here->cpu() : input.cpus.front();

  for (ReactorRuntime::ThreadSnapshot& s : runtime->SnapshotThreads()) {
    Sample& sample = samples_[s.id];
    const bool first = sample.tsc == 0;
    ThreadLoad t;
    t.id = s.id;
    t.name = std::move(s.name);
    t.cpu = s.cpu;
    t.home_cpu = s.home_cpu;
    t.cpumask = std::move(s.cpumask);
    if (!first && now > sample.tsc) {
      t.load = std::min(100.0, 100.0 * static_cast<double>(s.stats.busy_tsc - sample.busy_tsc) /
                                   static_cast<double>(now - sample.tsc));
    }
    // A thread seen for the first time has no load yet: held where it is for this period.
    t.periods_since_move = first ? 0
                           : sample.last_move_period == UINT64_MAX
                               ? UINT64_MAX
                               : period_ - sample.last_move_period;
    sample.busy_tsc = s.stats.busy_tsc;
    sample.tsc = now;
    sample.seen_period = period_;
    input.threads.push_back(std::move(t));
  }
  // Threads gone since the last period.
  std::erase_if(samples_, [this](const auto& entry) { return entry.second.seen_period != period_; });

  std::vector<int> placement;
  for (const ThreadLoad& t : input.threads) placement.push_back(t.cpu);
  scheduler_->Balance(input, placement);

  int moves = 0;
  for (size_t i = 0; i < input.threads.size(); ++i) {
    const ThreadLoad& t = input.threads[i];
    auto allowed = [&t](int cpu) {
      return std::binary_search(t.cpumask.begin(), t.cpumask.end(), cpu);
    };
    int to = placement[i];
    if (!allowed(to)) to = t.home_cpu;
    if (!allowed(t.cpu) && !allowed(to)) to = t.cpumask.front();
    if (to == t.cpu) continue;
    absl::Status s = Thread::Move(t.id, to);
    if (s.ok()) {
      samples_[t.id].last_move_period = period_;
      ++moves;
      PX_LOG(kDebug, "scheduler", "%s: thread \"%s\" (%.0f%% busy) core %d -> %d",
             scheduler_->name(), t.name, t.load, t.cpu, to);
    } else if (s.code() != absl::StatusCode::kNotFound &&
               s.code() != absl::StatusCode::kFailedPrecondition) {
      PX_LOG(kWarning, "scheduler", "moving thread \"%s\" to core %d: %s", t.name, to,
             s.message());
    }
  }
  return moves;
}

}  // namespace pollux
