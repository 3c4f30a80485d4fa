#include "perf_run.h"

#include <rte_cycles.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <limits>
#include <numeric>
#include <utility>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "hold_scheduler.h"
#include "pollux/app/app.h"
#include "pollux/bdev/bdev.h"
#include "pollux/bdev/bdev_module.h"
#include "pollux/env/cpu_list.h"
#include "pollux/env/log.h"
#include "pollux/reactor/reactor.h"
#include "pollux/scheduler/scheduler.h"
#include "verify_pattern.h"

namespace pollux::perf {
namespace {

// Buffers are page aligned at least: DMA-capable modules want it, and it costs nothing.
constexpr uint32_t kMinBufferAlignment = 4096;

std::string BdevNames(const std::vector<Bdev*>& bdevs) {
  std::vector<std::string> names;
  for (const Bdev* b : bdevs) names.push_back(b->name());
  return names.empty() ? "none" : absl::StrJoin(names, ", ");
}

// utime + stime of every thread of the process, in seconds.
double ProcessCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

}  // namespace

PerfRun::PerfRun(const PerfOptions& options) : options_(options) {}

PerfRun::~PerfRun() = default;

absl::Status PerfRun::Plan() {
  ReactorRuntime* runtime = ReactorRuntime::Get();
  tsc_hz_ = runtime->tsc_hz();
  std::vector<int> cpus;
  for (const auto& reactor : runtime->reactors()) cpus.push_back(reactor->cpu());
  if (options_.move_threads_us != 0 && cpus.size() < 2) {
    // Only when -m was not given (the command line refuses one core there): this process may
    // use one core only.
    return absl::InvalidArgumentError(absl::StrFormat(
        "--move-threads moves job threads between the cores of the run, and this run has one "
        "core (%s, every core this process may use): there is no other core to move to",
        FormatCpuList(cpus)));
  }

  // ---- Targets ----
  const std::vector<Bdev*> all = ListBdevs();
  std::vector<Bdev*> targets;
  if (options_.bdev_names.empty()) {
    for (Bdev* b : all) {
      if (b->claimed_by() == nullptr) targets.push_back(b);
    }
    if (all.empty()) {
      return absl::NotFoundError(absl::StrFormat(
          "the config %s creates no bdev: nothing to measure", options_.app.config_path));
    }
    if (targets.empty()) {
      return absl::NotFoundError(absl::StrFormat(
          "every bdev of the config is claimed by a virtual bdev (%s): name one with -b",
          BdevNames(all)));
    }
  } else {
    for (const std::string& name : options_.bdev_names) {
      Bdev* b = FindBdev(name);
      if (b == nullptr) {
        return absl::NotFoundError(
            absl::StrFormat("-b %s: no such bdev (the config created: %s)", name, BdevNames(all)));
      }
      if (std::find(targets.begin(), targets.end(), b) == targets.end()) targets.push_back(b);
    }
  }

  // --idle-channels: every bdev that is neither a target nor claimed.
  std::vector<std::string> idle_bdevs;
  for (Bdev* b : all) {
    if (options_.idle_channels && b->claimed_by() == nullptr &&
        std::find(targets.begin(), targets.end(), b) == targets.end()) {
      idle_bdevs.push_back(b->name());
    }
  }

  // ---- Checks against each target, and one job per target per core ----
  std::vector<std::vector<JobSpec>> specs_by_core(cpus.size());
  const bool size_range = options_.io_size_min != 0;
  for (Bdev* b : targets) {
    const uint64_t bs = b->block_size();
    // With a range, both bounds must be whole blocks (every length between them in whole
    // blocks is then too); the slots, and the device check, are MAX's.
    if (size_range && options_.io_size_min % bs != 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "-o %s: MIN (%u bytes) not a multiple of the block size of bdev %s (%u bytes)",
          options_.io_size_text, options_.io_size_min, b->name(), bs));
    }
    if (options_.io_size % bs != 0) {
      return absl::InvalidArgumentError(
          size_range
              ? absl::StrFormat(
                    "-o %s: MAX (%u bytes) not a multiple of the block size of bdev %s (%u bytes)",
                    options_.io_size_text, options_.io_size, b->name(), bs)
              : absl::StrFormat("-o %s: not a multiple of the block size of bdev %s (%u bytes)",
                                options_.io_size_text, b->name(), bs));
    }
    if (options_.io_size > b->size_bytes()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "-o %s: %s%u bytes, larger than bdev %s (%u bytes)", options_.io_size_text,
          size_range ? "MAX " : "", options_.io_size, b->name(), b->size_bytes()));
    }
    const uint64_t io_blocks = options_.io_size / bs;
    if (io_blocks > std::numeric_limits<uint32_t>::max()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "-o %s: too many blocks per I/O for bdev %s", options_.io_size_text, b->name()));
    }
    if (Writes(options_.workload) && b->claimed_by() != nullptr) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "bdev %s is claimed by module %s (a virtual bdev sits on it): %s would write under "
          "it; measure the bdev on top, or use a read workload",
          b->name(), b->claimed_by()->name(), WorkloadName(options_.workload)));
    }
    const bool reads =
        options_.workload != Workload::kWrite && options_.workload != Workload::kRandWrite;
    for (IoType type : {IoType::kRead, IoType::kWrite}) {
      const bool needed = type == IoType::kRead ? reads : Writes(options_.workload);
      if (needed && !b->Supports(type)) {
        return absl::InvalidArgumentError(
            absl::StrFormat("bdev %s does not support %s, which workload %s needs", b->name(),
                            IoTypeName(type), WorkloadName(options_.workload)));
      }
    }
    // Each core gets a contiguous share of the device (as bdevperf does with several cores on
    // one bdev), so sequential jobs do not walk over one another and verify jobs never check
    // blocks another job writes.
    const uint64_t slots = b->block_count() / io_blocks;
    const uint64_t per_core = slots / cpus.size();
    if (per_core == 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "bdev %s holds %u I/Os of %u bytes, fewer than the %u cores sharing it: use fewer "
          "cores (--cpus) or a smaller -o",
          b->name(), slots, options_.io_size, cpus.size()));
    }
    for (size_t i = 0; i < cpus.size(); ++i) {
      JobSpec spec;
      spec.bdev = b->name();
      spec.block_size = b->block_size();
      spec.io_blocks = static_cast<uint32_t>(io_blocks);
      spec.min_io_blocks =
          size_range ? static_cast<uint32_t>(options_.io_size_min / bs) : spec.io_blocks;
      spec.start_block = i * per_core * io_blocks;
      spec.slots = i + 1 == cpus.size() ? slots - i * per_core : per_core;
      spec.buffer_alignment = std::max(kMinBufferAlignment, b->required_alignment());
      // A new seed per run and per job: a verify read cannot pass on data left by an earlier
      // run or by another job.
      spec.seed = MixBits(rte_rdtsc() + records_.size() * 0x9E3779B97F4A7C15ULL);
      specs_by_core[i].push_back(std::move(spec));
      records_.push_back(std::make_unique<JobRecord>());
    }
  }

  for (size_t i = 0; options_.memcpy_peer && i < cpus.size(); ++i) {
    MemcpyPeerSpec peer;
    peer.cpu = cpus[i];
    for (const JobSpec& spec : specs_by_core[i]) {
      peer.region_bytes += spec.slots * options_.io_size;
      // -o MIN-MAX: lengths in steps every one of the core's bdevs could take (both bounds are
      // multiples of each block size, hence of their least common multiple).
      peer.io_size_step = std::lcm(peer.io_size_step, uint64_t{spec.block_size});
    }
    peer.io_size = options_.io_size;
    peer.io_size_min = options_.io_size_min;
    peer.buffers = options_.queue_depth;
    peer.workload = options_.workload;
    peer.read_percent = options_.read_percent;
    peer.seconds = options_.time_s;
    memcpy_peer_specs_.push_back(peer);
  }

  // Moved job threads may run on every core of the run; otherwise each stays on its own.
  const std::vector<int> cpumask = JobThreadsMove() ? cpus : std::vector<int>();
  if (options_.move_threads_us != 0) {
    mover_ =
        std::make_unique<ThreadMover>(cpus, std::chrono::microseconds(options_.move_threads_us));
  }
  // Records are in target-major order (all cores of the first bdev, then the next): the
  // report lists a bdev's jobs together. One worker per core, or per job (--thread-per-job).
  for (size_t i = 0; i < cpus.size(); ++i) {
    std::unique_ptr<Worker> worker;
    for (size_t t = 0; t < specs_by_core[i].size(); ++t) {
      if (worker == nullptr || options_.thread_per_job) {
        if (worker != nullptr) workers_.push_back(std::move(worker));
        WorkerSpec w;
        w.cpu = cpus[i];
        w.cpumask = cpumask;
        w.thread_name = options_.thread_per_job
                            ? absl::StrFormat("perf_core%d_%s", cpus[i], specs_by_core[i][t].bdev)
                            : absl::StrFormat("perf_core%d", cpus[i]);
        w.first = workers_.empty();
        w.idle_bdevs = idle_bdevs;
        worker = std::make_unique<Worker>(*this, options_, std::move(w));
      }
      worker->AddJob(std::move(specs_by_core[i][t]), *records_[t * cpus.size() + i]);
    }
    if (worker != nullptr) workers_.push_back(std::move(worker));
  }
  std::string extras;
  if (options_.rate_iops != 0) {
    absl::StrAppendFormat(&extras, ", at most %u IOPS per job", options_.rate_iops);
  }
  if (options_.ramp_time_s != 0) {
    absl::StrAppendFormat(&extras, " after a %u s ramp", options_.ramp_time_s);
  }
  if (options_.move_threads_us != 0) {
    absl::StrAppendFormat(&extras, ", job threads moved to the next core every %u us",
                          options_.move_threads_us);
  }
  if (!options_.scheduler.empty()) {
    absl::StrAppendFormat(&extras, ", scheduler %s", options_.scheduler);
  }
  if (options_.idle_channels) {
    absl::StrAppendFormat(&extras, ", idle channels on %u bdev(s) per job thread (%u in all)",
                          idle_bdevs.size(), idle_bdevs.size() * workers_.size());
  }
  if (options_.buffer_offset != 0) {
    absl::StrAppendFormat(&extras, ", buffers %u bytes past a 4 KiB boundary",
                          options_.buffer_offset);
  }
  PX_LOG(kNotice, "perf", "%s, queue depth %u, %s, %u s%s, on %s: %u jobs on core(s) %s (%u %s)",
         WorkloadName(options_.workload), options_.queue_depth, IoSizeDescription(options_),
         options_.time_s, extras, BdevNames(targets), records_.size(), FormatCpuList(cpus),
         workers_.size(), workers_.size() == 1 ? "thread" : "threads");
  return absl::OkStatus();
}

bool PerfRun::JobThreadsMove() const {
  return options_.move_threads_us != 0 ||
         (!options_.scheduler.empty() && options_.scheduler != "static");
}

absl::Status PerfRun::SelectScheduler() {
  // Every pollux app runs a scheduler (static unless the config chose another): under
  // --move-threads it would bring the mover's threads home every period, so hold takes over.
  const std::string name =
      options_.move_threads_us != 0 ? std::string(kHoldSchedulerName) : options_.scheduler;
  if (name.empty()) return absl::OkStatus();
  SchedulerConfig config = GetScheduler();  // the config's period and limits, unless overridden
  config.name = name;
  if (options_.scheduler_period_us != 0) config.period_us = options_.scheduler_period_us;
  if (absl::Status s = SetScheduler(config); !s.ok()) {
    return absl::Status(s.code(), absl::StrFormat("select scheduler %s: %s", name, s.message()));
  }
  scheduler_period_us_ = GetScheduler().period_us;
  return absl::OkStatus();
}

void PerfRun::Start() {
  if (absl::Status s = Plan(); !s.ok()) return RequestAppShutdown(std::move(s));
  // Before the job threads exist: the scheduler's first period (run at once) has none to move.
  if (absl::Status s = SelectScheduler(); !s.ok()) return RequestAppShutdown(std::move(s));
  for (auto& worker : workers_) {
    if (absl::Status s = worker->CreateThread(); !s.ok()) {
      failure_ = std::move(s);
      break;
    }
    ++workers_started_;
    jobs_expected_ += worker->job_count();
  }
  if (workers_started_ == 0) return RequestAppShutdown(failure_);
  for (size_t i = 0; i < workers_started_; ++i) {
    if (failure_.ok()) {
      workers_[i]->PostPrepare();
    } else {
      workers_[i]->PostAbort();  // their jobs report without running; then we shut down
    }
  }
}

void PerfRun::OnWorkerPrepared() {
  if (++workers_prepared_ < workers_started_) return;
  for (size_t i = 0; i < workers_started_ && failure_.ok(); ++i) {
    failure_ = workers_[i]->prepare_status();
  }
  // All jobs start together, only once every job could open its bdev and get its buffers.
  for (size_t i = 0; i < workers_started_; ++i) {
    if (failure_.ok()) {
      workers_[i]->PostGo();
    } else {
      workers_[i]->PostAbort();
    }
  }
  // The first moves may overtake a Go message: it then runs wherever its thread has landed.
  if (failure_.ok() && mover_ != nullptr) {
    std::vector<Thread*> threads;
    for (size_t i = 0; i < workers_started_; ++i) threads.push_back(workers_[i]->thread());
    mover_->Start(std::move(threads));
  }
}

void PerfRun::OnJobDone() {
  if (++jobs_done_ < jobs_expected_) return;
  // Before the release: a released worker's thread may exit, and the mover must not touch it.
  // Until here the threads kept moving while their jobs drained.
  if (mover_ != nullptr) mover_->Stop();
  for (size_t i = 0; i < workers_started_; ++i) workers_[i]->PostRelease();
  RequestAppShutdown(failure_);
}

void PerfRun::PrintProgress(uint64_t now_tsc) {
  uint64_t ops = 0, bytes = 0;
  for (const auto& record : records_) {
    ops += record->progress_ops.load(std::memory_order_relaxed);
    bytes += record->progress_bytes.load(std::memory_order_relaxed);
  }
  if (progress_start_tsc_ == 0) {
    progress_start_tsc_ = progress_last_tsc_ = now_tsc;
    progress_last_ops_ = ops;
    progress_last_bytes_ = bytes;
    return;
  }
  const double seconds = static_cast<double>(now_tsc - progress_last_tsc_) / tsc_hz_;
  if (seconds <= 0) return;
  const double elapsed = static_cast<double>(now_tsc - progress_start_tsc_) / tsc_hz_;
  std::string line =
      absl::StrFormat("pollux-perf: [%6.1f s] %14.2f IOPS %12.2f MiB/s\n", elapsed,
                      static_cast<double>(ops - progress_last_ops_) / seconds,
                      static_cast<double>(bytes - progress_last_bytes_) / seconds / (1 << 20));
  std::fwrite(line.data(), 1, line.size(), stderr);
  progress_last_tsc_ = now_tsc;
  progress_last_ops_ = ops;
  progress_last_bytes_ = bytes;
}

void PerfRun::MarkWindowStart(uint64_t now_tsc) {
  window_start_cpu_s_ = ProcessCpuSeconds();
  window_start_tsc_ = now_tsc;
}

void PerfRun::MarkWindowEnd(uint64_t now_tsc) {
  if (window_start_tsc_ == 0 || cpu_percent_ >= 0 || now_tsc <= window_start_tsc_) return;
  const double wall = static_cast<double>(now_tsc - window_start_tsc_) / tsc_hz_;
  cpu_percent_ = (ProcessCpuSeconds() - window_start_cpu_s_) / wall * 100;
}

RunSummary PerfRun::Summary() const {
  RunSummary summary;
  summary.options = &options_;
  summary.tsc_hz = tsc_hz_;
  for (const auto& record : records_) summary.jobs.push_back(record->result);
  if (mover_ != nullptr) summary.thread_moves = mover_->figures();
  summary.cpu_percent = cpu_percent_;
  summary.scheduler_period_us = scheduler_period_us_;
  for (const auto& worker : workers_) summary.idle_channels += worker->idle_channels();
  return summary;
}

}  // namespace pollux::perf
