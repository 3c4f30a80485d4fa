// The durability check's two halves, run on a pollux thread against one bdev:
//  - write: rounds 1, 2, ... each writes every block of the bdev's first `units` 4 KiB units
//    (block_record.h) with `depth` requests in flight, then FLUSHes the bdev; once the FLUSH
//    has completed, the round's number is appended to the state file. Runs until killed (or
//    `rounds` rounds).
//  - check: reads the state file's last round R and every block back: each must be whole (no
//    torn block, whatever the engine), and when R > 0 from round R or R + 1 (what was flushed
//    is there; only the round after may have been lost or written in part).
#pragma once

#include <cstdint>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"

namespace pollux::durability {

struct DurabilityOptions {
  std::string bdev;
  std::string state_path;
  bool check = false;
  uint32_t depth = 16;
  uint64_t units = 256;  // of 4 KiB (or one block, when blocks are larger)
  uint64_t rounds = 0;   // write: stop after this many flushed rounds; 0: until killed
};

// Starts on the calling Thread; done(status) runs there when the check or the rounds are over
// (with the reason if anything failed). The check prints its findings as JSON on stdout.
void StartDurabilityRun(const DurabilityOptions& options,
                        absl::AnyInvocable<void(absl::Status)> done);

}  // namespace pollux::durability
