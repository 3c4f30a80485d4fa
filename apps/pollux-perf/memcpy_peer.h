// The memcpy peer (--memcpy-peer): what plain memcpy does with the run's access pattern, measured
// in the same process right after the bdev jobs, on the same cores, for the same time. A RAM
// bdev cannot beat it, so "pollux / memcpy" says how much of the machine's copy bandwidth the
// bdev layer and the module leave on the table.
//
// Per core, one OS thread pinned to that core copies io_size bytes between a region as large as
// the bdev share the core's jobs covered and `buffers` I/O buffers (one per queue slot, as the
// jobs have), at the offsets the workload would pick (random or sequential, reads copy out of
// the region, writes into it). With -o MIN-MAX each copy picks its length as the jobs pick
// theirs, in io_size_step steps (--buffer-offset does not apply: the buffers stay where they
// are). The region is the best memory the machine offers: private anonymous memory with
// transparent huge pages asked for (MADV_HUGEPAGE), populated before the clock starts. All cores
// run at once, as the jobs did.
//
// Threads: RunMemcpyPeers blocks the calling thread (the control thread, after RunApp returned:
// the reactors no longer run on those cores).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "command_line.h"

namespace pollux::perf {

struct MemcpyPeerSpec {
  int cpu = -1;
  uint64_t region_bytes = 0;  // what the core's jobs addressed, summed over its bdevs
  uint64_t io_size = 0;       // a slot; with -o MIN-MAX, MAX
  uint64_t io_size_min = 0;   // -o MIN-MAX: MIN; 0: every copy is io_size long
  uint64_t io_size_step = 1;  // -o MIN-MAX: lengths are MIN plus a multiple of this
  uint32_t buffers = 1;       // the queue depth: the jobs' buffers rotate as much
  Workload workload = Workload::kRandRead;
  uint32_t read_percent = 50;
  uint64_t seconds = 1;
};

struct MemcpyPeerResult {
  int cpu = -1;
  bool ran = false;
  std::string error;  // why it did not run (no memory for the region, no such core)
  uint64_t ops = 0;
  uint64_t bytes = 0;
  double seconds = 0;
};

// Runs one peer per spec, all at once, and returns their figures in the specs' order.
std::vector<MemcpyPeerResult> RunMemcpyPeers(const std::vector<MemcpyPeerSpec>& specs);

}  // namespace pollux::perf
