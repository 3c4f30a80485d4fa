// Helpers shared by the benchmark programs: command-line values, statistics over TSC samples,
// pinning, and the "pollux | peer | ratio" table every program prints. Header-only: each
// benchmark is one translation unit.
#pragma once

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"

namespace pollux::bench {

// Parses an unsigned decimal number (the whole string).
inline absl::StatusOr<uint64_t> ParseCount(std::string_view flag, std::string_view text) {
  uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: expected an unsigned number, got \"%s\"", flag, text));
  }
  return value;
}

// "A,B,C" -> numbers.
inline absl::StatusOr<std::vector<uint64_t>> ParseList(std::string_view flag,
                                                       std::string_view text) {
  std::vector<uint64_t> values;
  while (true) {
    size_t comma = text.find(',');
    auto v = ParseCount(flag, text.substr(0, comma));
    if (!v.ok()) return v.status();
    values.push_back(*v);
    if (comma == std::string_view::npos) return values;
    text.remove_prefix(comma + 1);
  }
}

// --cpus "A,B": two different cores (sender/producer first).
inline absl::StatusOr<std::pair<int, int>> ParseCorePair(std::string_view text) {
  auto cpus = ParseList("--cpus", text);
  if (!cpus.ok()) return cpus.status();
  if (cpus->size() != 2 || (*cpus)[0] == (*cpus)[1]) {
    return absl::InvalidArgumentError("--cpus: expected two different cores, \"A,B\"");
  }
  return std::pair<int, int>(static_cast<int>((*cpus)[0]), static_cast<int>((*cpus)[1]));
}

// Pins the calling OS thread to one core.
inline absl::Status PinCurrentThread(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
  if (rc != 0) {
    return absl::InternalError(absl::StrFormat("pinning to core %d: %s", cpu, strerror(rc)));
  }
  return absl::OkStatus();
}

// The value at quantile q (0..1) of `values`, nearest rank. Sorts `values`.
inline double Quantile(std::vector<double>& values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t rank = static_cast<size_t>(q * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(rank, values.size() - 1)];
}

inline double Median(std::vector<double> values) { return Quantile(values, 0.5); }

// Median and 99th percentile of latency samples, in nanoseconds.
struct LatencySummary {
  double median_ns = 0;
  double p99_ns = 0;
  size_t samples = 0;
};

inline LatencySummary SummarizeTsc(const std::vector<uint64_t>& tsc_samples, uint64_t tsc_hz) {
  std::vector<double> ns;
  ns.reserve(tsc_samples.size());
  for (uint64_t t : tsc_samples) ns.push_back(static_cast<double>(t) * 1e9 / double(tsc_hz));
  LatencySummary s;
  s.samples = ns.size();
  s.median_ns = Quantile(ns, 0.5);
  s.p99_ns = Quantile(ns, 0.99);
  return s;
}

// "15.2M" for 15.2e6.
inline std::string FormatRate(double per_second) {
  if (per_second >= 1e9) return absl::StrFormat("%.2fG", per_second / 1e9);
  if (per_second >= 1e6) return absl::StrFormat("%.2fM", per_second / 1e6);
  if (per_second >= 1e3) return absl::StrFormat("%.2fk", per_second / 1e3);
  return absl::StrFormat("%.0f", per_second);
}

// "1.50 us" for 1500 ns; "850 ns" below a microsecond.
inline std::string FormatNs(double ns) {
  if (ns >= 1000) return absl::StrFormat("%.2f us", ns / 1000);
  return absl::StrFormat("%.0f ns", ns);
}

// One line of the comparison table: what was measured, pollux's figure, the peer's, and
// pollux / peer (for throughput, higher is better; for latency, lower is better).
struct Row {
  std::string what;
  std::string pollux;
  std::string peer;
  double ratio;
  std::string goal;  // "met" / "NOT met" / "" when the row has no goal
};

inline void PrintTable(std::string_view title, std::string_view peer_name,
                       const std::vector<Row>& rows) {
  std::printf("\n%s\n", std::string(title).c_str());
  std::string header =
      absl::StrFormat("  %-44s %14s %14s %8s  %s", "", "pollux", peer_name, "ratio", "goal");
  std::printf("%s\n", header.c_str());
  for (const Row& row : rows) {
    std::string line = absl::StrFormat("  %-44s %14s %14s %8.2f  %s", row.what, row.pollux,
                                       row.peer, row.ratio, row.goal);
    std::printf("%s\n", line.c_str());
  }
  std::fflush(stdout);
}

// How much CPU other processes took from the measured cores while a benchmark ran: these VMs
// are shared (builds run beside the benchmarks), and a figure measured under contention says
// little. Reads /proc/stat (the measured cores) and /proc/self/stat (this process).
class ContentionMeter {
 public:
  explicit ContentionMeter(std::vector<int> cpus) : cpus_(std::move(cpus)) { Restart(); }

  void Restart() {
    start_ = Sample();
    start_time_ = std::chrono::steady_clock::now();
  }

  // CPU time used on the measured cores by everything but this process (busy minus ours),
  // and time stolen by the hypervisor, each in % of one core over the wall time since Restart.
  struct Result {
    double others_pct = 0;
    double steal_pct = 0;
  };
  Result Measure() const {
    Ticks now = Sample();
    double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time_).count();
    double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
    Result r;
    double busy = static_cast<double>(now.busy - start_.busy);
    double self = static_cast<double>(now.self - start_.self);
    r.others_pct = std::max(0.0, (busy - self) / hz / wall * 100);
    r.steal_pct = static_cast<double>(now.steal - start_.steal) / hz / wall * 100;
    return r;
  }

  // One line for the report, with a warning when the figures are likely disturbed.
  std::string Describe() const {
    double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time_).count();
    // /proc/stat counts in clock ticks (10 ms): shorter windows say nothing.
    if (wall < 0.5) return "contention not measured (window under 0.5 s)";
    Result r = Measure();
    return absl::StrFormat(
        "other processes used %.0f%% of a core on the measured cores, "
        "steal %.0f%%%s",
        r.others_pct, r.steal_pct,
        r.others_pct + r.steal_pct > 10 ? " -- CONTENDED: rerun on a quiet machine" : "");
  }

 private:
  struct Ticks {
    uint64_t busy = 0;
    uint64_t steal = 0;
    uint64_t self = 0;
  };

  Ticks Sample() const {
    Ticks t;
    std::ifstream stat("/proc/stat");
    std::string line;
    while (std::getline(stat, line)) {
      if (line.rfind("cpu", 0) != 0 || line.size() < 4 || line[3] == ' ') continue;
      std::istringstream in(line.substr(3));
      int cpu;
      uint64_t user, nice, system, idle, iowait, irq, softirq, steal;
      in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
      if (std::find(cpus_.begin(), cpus_.end(), cpu) == cpus_.end()) continue;
      t.busy += user + nice + system + irq + softirq;
      t.steal += steal;
    }
    std::ifstream self("/proc/self/stat");
    std::string text((std::istreambuf_iterator<char>(self)), std::istreambuf_iterator<char>());
    // Fields after the command name (which may hold spaces): state is field 3, utime 14.
    std::istringstream in(text.substr(text.rfind(')') + 2));
    std::string field;
    uint64_t utime = 0, stime = 0;
    for (int i = 3; i <= 15 && in >> field; ++i) {
      if (i == 14) utime = std::stoull(field);
      if (i == 15) stime = std::stoull(field);
    }
    t.self = utime + stime;
    return t;
  }

  std::vector<int> cpus_;
  Ticks start_;
  std::chrono::steady_clock::time_point start_time_;
};

}  // namespace pollux::bench
