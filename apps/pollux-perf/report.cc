#include "report.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "absl/strings/str_format.h"
#include "pollux/env/cpu_list.h"

namespace pollux::perf {
namespace {

// The figures of one line of the report (a job, or the total).
struct Figures {
  double runtime_s = 0;
  uint64_t ops = 0;
  uint64_t bytes = 0;
  uint64_t read_ops = 0;
  uint64_t write_ops = 0;
  uint64_t io_errors = 0;
  uint64_t miscompares = 0;
  double iops = 0;
  double mib_per_s = 0;
  double fail_per_s = 0;
  double avg_us = 0, min_us = 0, max_us = 0, p50_us = 0, p99_us = 0, p999_us = 0;
};

// Latency buckets over the measured window: the bdev layer's LatencyHistogram can be neither
// reset nor subtracted, so with --ramp-time the window is the difference between the buckets
// at the stop and those at the ramp's end, kept here. Percentiles as LatencyHistogram's.
class WindowHistogram {
 public:
  // Adds `end` less `start` (nullptr: nothing to subtract).
  void Add(const LatencyHistogram& end, const LatencyHistogram* start) {
    for (int i = 0; i < LatencyHistogram::kBuckets; ++i) {
      const uint64_t n = end.buckets()[i] - (start != nullptr ? start->buckets()[i] : 0);
      buckets_[i] += n;
      count_ += n;
    }
  }
  // The upper bound of the bucket holding the sample of rank ceil(percent % of the count).
  uint64_t Percentile(double percent) const {
    if (count_ == 0) return 0;
    const double exact = std::clamp(percent, 0.0, 100.0) / 100.0 * static_cast<double>(count_);
    const uint64_t rank = std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(exact)));
    uint64_t seen = 0;
    for (int i = 0; i < LatencyHistogram::kBuckets; ++i) {
      seen += buckets_[i];
      if (seen >= rank) return LatencyHistogram::BucketUpperBound(i);
    }
    return LatencyHistogram::BucketUpperBound(LatencyHistogram::kBuckets - 1);
  }
  // The lowest and highest values the window's buckets admit (within 1/64 of the samples').
  uint64_t Min() const {
    for (int i = 0; i < LatencyHistogram::kBuckets; ++i) {
      if (buckets_[i] != 0) return i == 0 ? 0 : LatencyHistogram::BucketUpperBound(i - 1) + 1;
    }
    return 0;
  }
  uint64_t Max() const {
    for (int i = LatencyHistogram::kBuckets - 1; i >= 0; --i) {
      if (buckets_[i] != 0) return LatencyHistogram::BucketUpperBound(i);
    }
    return 0;
  }

 private:
  std::array<uint64_t, LatencyHistogram::kBuckets> buckets_{};
  uint64_t count_ = 0;
};

class FigureBuilder {
 public:
  explicit FigureBuilder(uint64_t tsc_hz) : tsc_hz_(static_cast<double>(tsc_hz)) {}

  // Adds a job's window (its whole run, or what followed the ramp); its rates add to the
  // total's (jobs run side by side).
  void Add(const JobResult& job) {
    const double runtime = job.run_ticks / tsc_hz_;
    const BdevIoStats* start = job.after_ramp ? &job.window_start : nullptr;
    uint64_t ops = 0, bytes = 0;
    for (int i = 0; i < kIoTypeCount; ++i) {
      const IoTypeStats& t = job.stats.by_type[i];
      const IoTypeStats none;
      const IoTypeStats& t0 = start != nullptr ? start->by_type[i] : none;
      ops += t.ops - t0.ops;
      bytes += t.bytes - t0.bytes;
      latency_ticks_ += t.latency_ticks - t0.latency_ticks;
      // The extremes of a window after a ramp are the histogram's (the totals' may lie in the
      // ramp); those of a whole run are exact.
      if (start != nullptr) {
        extremes_from_histogram_ = true;
      } else if (t.ops != 0) {
        min_ticks_ = std::min(min_ticks_, t.min_latency_ticks);
        max_ticks_ = std::max(max_ticks_, t.max_latency_ticks);
      }
    }
    auto window_ops = [&](IoType type) {
      return job.stats.of(type).ops - (start != nullptr ? start->of(type).ops : 0);
    };
    f_.ops += ops;
    f_.bytes += bytes;
    f_.read_ops += window_ops(IoType::kRead);
    f_.write_ops += window_ops(IoType::kWrite);
    f_.io_errors += job.io_errors;
    f_.miscompares += job.miscompares;
    f_.runtime_s = std::max(f_.runtime_s, runtime);
    if (runtime > 0) {
      f_.iops += ops / runtime;
      f_.mib_per_s += bytes / runtime / (1 << 20);
      f_.fail_per_s += job.io_errors / runtime;
    }
    for (int i = 0; i < kLatencyClassCount; ++i) {
      histogram_.Add(job.stats.latency_by_class[i],
                     start != nullptr ? &start->latency_by_class[i] : nullptr);
    }
  }

  Figures Build() const {
    Figures f = f_;
    const double us_per_tick = 1e6 / tsc_hz_;
    if (f.ops != 0) {
      f.avg_us = static_cast<double>(latency_ticks_) / f.ops * us_per_tick;
      f.min_us = (extremes_from_histogram_ ? histogram_.Min() : min_ticks_) * us_per_tick;
      f.max_us = (extremes_from_histogram_ ? histogram_.Max() : max_ticks_) * us_per_tick;
      f.p50_us = histogram_.Percentile(50) * us_per_tick;
      f.p99_us = histogram_.Percentile(99) * us_per_tick;
      f.p999_us = histogram_.Percentile(99.9) * us_per_tick;
    }
    return f;
  }

 private:
  double tsc_hz_;
  Figures f_;
  uint64_t latency_ticks_ = 0;
  uint64_t min_ticks_ = std::numeric_limits<uint64_t>::max();
  uint64_t max_ticks_ = 0;
  bool extremes_from_histogram_ = false;
  WindowHistogram histogram_;
};

Figures JobFigures(const JobResult& job, uint64_t tsc_hz) {
  FigureBuilder builder(tsc_hz);
  builder.Add(job);
  return builder.Build();
}

Figures TotalFigures(const RunSummary& summary) {
  FigureBuilder builder(summary.tsc_hz);
  for (const JobResult& job : summary.jobs) {
    if (job.ran) builder.Add(job);
  }
  return builder.Build();
}

std::string FigureColumns(const Figures& f) {
  return absl::StrFormat("%14.2f %11.2f %9.2f %10.2f %10.2f %10.2f %10.2f %10.2f %10.2f", f.iops,
                         f.mib_per_s, f.fail_per_s, f.avg_us, f.min_us, f.max_us, f.p50_us,
                         f.p99_us, f.p999_us);
}

rpc::Json FiguresJson(const Figures& f) {
  return {
      {"runtime_s", f.runtime_s},
      {"ops", f.ops},
      {"bytes", f.bytes},
      {"read_ops", f.read_ops},
      {"write_ops", f.write_ops},
      {"iops", f.iops},
      {"mib_per_s", f.mib_per_s},
      {"io_errors", f.io_errors},
      {"fail_per_s", f.fail_per_s},
      {"miscompares", f.miscompares},
      {"latency_us",
       {{"avg", f.avg_us},
        {"min", f.min_us},
        {"max", f.max_us},
        {"p50", f.p50_us},
        {"p99", f.p99_us},
        {"p99_9", f.p999_us}}},
  };
}

// The memcpy peers' total (their rates add, as the jobs' do) and the bdev's share of it.
struct PeerFigures {
  double iops = 0;
  double mib_per_s = 0;
  double ratio = 0;  // the bdev total's MiB/s over the peer's
  std::vector<std::string> errors;
};

PeerFigures TotalPeerFigures(const RunSummary& summary, const Figures& total) {
  PeerFigures p;
  for (const MemcpyPeerResult& peer : summary.memcpy_peer) {
    if (!peer.ran) {
      p.errors.push_back(absl::StrFormat("core %d: %s", peer.cpu, peer.error));
      continue;
    }
    if (peer.seconds <= 0) continue;
    p.iops += peer.ops / peer.seconds;
    p.mib_per_s += peer.bytes / peer.seconds / (1 << 20);
  }
  if (p.mib_per_s > 0) p.ratio = total.mib_per_s / p.mib_per_s;
  return p;
}

// "every 1000 us, round robin over cores 0-1"
std::string MovePlan(const ThreadMoveFigures& moves) {
  return absl::StrFormat("every %u us, round robin over cores %s", moves.period.count(),
                         FormatCpuList(moves.cpus));
}

}  // namespace

std::string IoSizeDescription(const PerfOptions& options) {
  if (options.io_size_min == 0) return absl::StrFormat("%u-byte I/O", options.io_size);
  return absl::StrFormat("I/O of %u to %u bytes", options.io_size_min, options.io_size);
}

bool AnyJobFailed(const RunSummary& summary) {
  for (const JobResult& job : summary.jobs) {
    if (job.io_errors != 0 || job.miscompares != 0) return true;
  }
  return false;
}

std::string FormatTable(const RunSummary& summary) {
  const PerfOptions& o = *summary.options;
  std::string out =
      absl::StrFormat("pollux-perf: %s, queue depth %u, %s, %u s", WorkloadName(o.workload),
                      o.queue_depth, IoSizeDescription(o), o.time_s);
  if (o.workload == Workload::kRw || o.workload == Workload::kRandRw) {
    absl::StrAppendFormat(&out, ", %u%% reads", o.read_percent);
  }
  if (o.rate_iops != 0) {
    absl::StrAppendFormat(&out, ", rate limit %u IOPS per job", o.rate_iops);
    if (summary.jobs.size() > 1) {
      absl::StrAppendFormat(&out, " (%u in total over %u jobs)", o.rate_iops * summary.jobs.size(),
                            summary.jobs.size());
    }
  }
  if (o.ramp_time_s != 0) absl::StrAppendFormat(&out, " after a %u s ramp", o.ramp_time_s);
  if (summary.thread_moves.period.count() != 0) {
    absl::StrAppendFormat(&out, ", job threads moved every %u us",
                          summary.thread_moves.period.count());
  }
  if (!o.scheduler.empty()) {
    absl::StrAppendFormat(&out, ", scheduler %s (every %u us)", o.scheduler,
                          summary.scheduler_period_us);
  }
  if (o.thread_per_job) out += ", a thread per job";
  if (o.buffer_offset != 0) {
    absl::StrAppendFormat(&out, ", buffers %u bytes past a 4 KiB boundary", o.buffer_offset);
  }
  out += "\n\n";
  const std::string rule(150, '=');
  absl::StrAppendFormat(&out, "%-24s %4s %10s %14s %11s %9s %s\n", "", "", "", "", "", "",
                        "|------------------------- Latency (us) ---------------------|");
  absl::StrAppendFormat(&out, "%-24s %4s %10s %14s %11s %9s %10s %10s %10s %10s %10s %10s\n",
                        "Job (bdev)", "Core", "runtime(s)", "IOPS", "MiB/s", "Fail/s", "Average",
                        "min", "max", "p50", "p99", "p99.9");
  for (const JobResult& job : summary.jobs) {
    if (!job.ran) {
      absl::StrAppendFormat(&out, "%-24s %4d %10s   (did not run: its bdev went away first)\n",
                            job.bdev, job.cpu, "-");
      continue;
    }
    const Figures f = JobFigures(job, summary.tsc_hz);
    absl::StrAppendFormat(&out, "%-24s %4d %10.2f %s%s\n", job.bdev, job.cpu, f.runtime_s,
                          FigureColumns(f), job.stopped_early ? "  (stopped early)" : "");
  }
  out += rule + "\n";
  const Figures total = TotalFigures(summary);
  absl::StrAppendFormat(&out, "%-24s %4s %10s %s\n", "Total", "", "", FigureColumns(total));
  if (!summary.memcpy_peer.empty()) {
    const PeerFigures peer = TotalPeerFigures(summary, total);
    absl::StrAppendFormat(&out, "%-24s %4s %10s %14.2f %11.2f   bdev / memcpy = %.2f\n",
                          "memcpy peer", "", "", peer.iops, peer.mib_per_s, peer.ratio);
    for (const std::string& e : peer.errors) {
      absl::StrAppendFormat(&out, "memcpy peer did not run on %s\n", e);
    }
  }
  if (summary.cpu_percent >= 0) {
    absl::StrAppendFormat(&out,
                          "CPU: %.1f %% of one core (the process, over the measured window)\n",
                          summary.cpu_percent);
  }
  if (o.idle_channels) {
    absl::StrAppendFormat(&out, "Idle channels: %u (descriptor and channel held without I/O)\n",
                          summary.idle_channels);
  }
  if (const ThreadMoveFigures& moves = summary.thread_moves; moves.period.count() != 0) {
    absl::StrAppendFormat(&out,
                          "Thread moves: %u started (%s), %u completed, %u skipped (previous "
                          "move still under way), %u failed\n",
                          moves.started, MovePlan(moves), moves.completed, moves.skipped,
                          moves.failed);
  }
  if (total.io_errors != 0 || total.miscompares != 0) {
    absl::StrAppendFormat(&out, "\nFAILED: %u I/O error(s), %u verify miscompare(s)\n",
                          total.io_errors, total.miscompares);
  }
  return out;
}

rpc::Json ResultsJson(const RunSummary& summary) {
  const PerfOptions& o = *summary.options;
  rpc::Json jobs = rpc::Json::array();
  for (const JobResult& job : summary.jobs) {
    rpc::Json j = FiguresJson(JobFigures(job, summary.tsc_hz));
    j["bdev"] = job.bdev;
    j["bdev_ops"] = job.bdev_ops - (job.after_ramp ? job.window_start_bdev_ops : 0);
    j["core"] = job.cpu;
    j["ran"] = job.ran;
    j["stopped_early"] = job.stopped_early;
    jobs.push_back(std::move(j));
  }
  rpc::Json result = {
      {"workload", std::string(WorkloadName(o.workload))},
      {"queue_depth", o.queue_depth},
      {"io_size", o.io_size},
      {"time_s", o.time_s},
      {"tsc_hz", summary.tsc_hz},
      {"jobs", std::move(jobs)},
      {"total", FiguresJson(TotalFigures(summary))},
      {"status", AnyJobFailed(summary) ? "failed" : "ok"},
      {"thread_per_job", o.thread_per_job},
  };
  if (summary.cpu_percent >= 0) result["total"]["cpu_percent"] = summary.cpu_percent;
  // -o MIN-MAX: io_size is MAX (a slot), io_size_min MIN; bytes and MiB/s count each I/O's
  // own length (the bdev layer's statistics).
  if (o.io_size_min != 0) result["io_size_min"] = o.io_size_min;
  if (o.buffer_offset != 0) result["buffer_offset"] = o.buffer_offset;
  if (o.ramp_time_s != 0) result["ramp_time_s"] = o.ramp_time_s;
  if (!o.scheduler.empty()) {
    result["scheduler"] = o.scheduler;
    result["scheduler_period_us"] = summary.scheduler_period_us;
  }
  if (o.idle_channels) result["idle_channels"] = summary.idle_channels;
  if (o.workload == Workload::kRw || o.workload == Workload::kRandRw) {
    result["read_percent"] = o.read_percent;
  }
  if (o.rate_iops != 0) result["rate_iops_per_job"] = o.rate_iops;
  if (const ThreadMoveFigures& moves = summary.thread_moves; moves.period.count() != 0) {
    result["move_threads_us"] = static_cast<uint64_t>(moves.period.count());
    result["thread_moves"] = moves.started;
    result["thread_moves_completed"] = moves.completed;
    result["thread_moves_skipped"] = moves.skipped;
    result["thread_moves_failed"] = moves.failed;
  }
  if (!summary.memcpy_peer.empty()) {
    const PeerFigures peer = TotalPeerFigures(summary, TotalFigures(summary));
    result["memcpy_peer"] = {{"iops", peer.iops},
                             {"mib_per_s", peer.mib_per_s},
                             {"bdev_over_memcpy", peer.ratio},
                             {"errors", peer.errors}};
  }
  return result;
}

std::string ThreadMovesLine(const RunSummary& summary) {
  const ThreadMoveFigures& moves = summary.thread_moves;
  if (moves.period.count() == 0) return std::string();
  return absl::StrFormat(
      "pollux-perf: %u thread moves started (%s); %u completed, %u skipped (previous move still "
      "under way), %u failed\n",
      moves.started, MovePlan(moves), moves.completed, moves.skipped, moves.failed);
}

}  // namespace pollux::perf
