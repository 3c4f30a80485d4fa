// What a guest workload printed, read back on the host. Workloads print through the shell
// functions of guest_workloads.cc: "RESULT key=value" lines and fio runs as JSON sections.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace pollux::testing {

// Every "RESULT key=value" line; a later line with the same key wins.
std::map<std::string, std::string> ParseResults(const std::string& output);

// One fio job, from fio's JSON output (--output-format=json).
struct FioJobResult {
  std::string name;
  int error = 0;            // fio's errno for the job: EILSEQ (84) after a verify failure
  uint64_t read_bytes = 0;  // includes what the verify phase read
  uint64_t write_bytes = 0;
  double read_iops = 0;
  double write_iops = 0;
};

// One fio run: its exit code, its jobs, and what it printed besides the JSON.
struct FioResult {
  int exit_code = -1;
  std::vector<FioJobResult> jobs;
  std::string log;  // fio's stdout and stderr: verify failures are reported there

  uint64_t read_bytes() const;
  uint64_t write_bytes() const;
  // The first non-zero job error, 0 if none.
  int error() const;
  // For failure messages: exit code, per-job figures and the log.
  std::string Describe() const;
};

// The fio run named `name` in `output` (the section the workload's run_fio printed); an error
// if there is no such section or its JSON does not parse.
absl::StatusOr<FioResult> ParseFio(const std::string& output, const std::string& name);

}  // namespace pollux::testing
