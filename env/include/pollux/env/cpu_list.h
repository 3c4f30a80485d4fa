// Parsing and checking of core lists given by users ("0-1", "0,2-3", "[0,1]", "0x3").
#pragma once

#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace pollux {

// Parses a core list or a hexadecimal core mask into ascending, unique core numbers.
absl::StatusOr<std::vector<int>> ParseCpuList(std::string_view text);

// A `cpumask` parameter of an RPC method, as SPDK's spdk_cpuset_parse reads it: hexadecimal
// digits with or without "0x" are a mask ("1" is core 0, as SPDK's save_config writes it);
// a list needs brackets, a range or a comma ("[1]", "0-1", "0,2").
absl::StatusOr<std::vector<int>> ParseCpuMaskParam(std::string_view text);

// The cores this process may run on (sched_getaffinity), ascending.
std::vector<int> AllowedCpus();

// Checks that every core exists and is allowed for this process; the error names the first
// offending core and lists the allowed ones.
absl::Status CheckCpusAllowed(const std::vector<int>& cpus);

// "0-3,6" for {0,1,2,3,6}.
std::string FormatCpuList(const std::vector<int>& cpus);

}  // namespace pollux
