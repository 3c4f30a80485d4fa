// The malloc bdev module (SPDK's bdev_malloc): a RAM disk whose memory comes from DPDK's
// hugepages, or without hugepages from the kernel with transparent huge pages (see
// pollux/env/io_memory.h for why). Reads and writes are memcpy on the submitting thread, done
// in a batch at the thread's next poll (no offload engine: a 4 KiB copy costs less than handing
// it to another thread). UNMAP and WRITE_ZEROES zero the range; FLUSH and RESET succeed
// (there is no cache).
//
// Threads: CreateMallocBdev and DeleteMallocBdev run on the app thread (like the RPC methods
// bdev_malloc_create and bdev_malloc_delete in malloc_rpc.cc); I/O runs on any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pollux/bdev/bdev.h"
#include "pollux/bdev/bdev_module.h"

namespace pollux {

class MallocModule final : public BdevModule {
 public:
  MallocModule() : BdevModule("malloc") {}
  static MallocModule& Get();
  size_t io_context_size() const override;
};

struct MallocBdevOptions {
  std::string name;           // empty: the first free of "Malloc0", "Malloc1", ...
  uint64_t num_blocks = 0;    // > 0
  uint32_t block_size = 512;  // power of two, 512 to 65536
  std::string uuid;           // empty: the layer generates one
  // Blocks; requests crossing a multiple are split there by the layer. 0: none.
  uint32_t optimal_io_boundary = 0;
};

// Validates the options, allocates num_blocks * block_size bytes of zeroed memory and
// registers the bdev. A size that cannot be had is ResourceExhausted, with the size asked and
// what is available in the message; nothing stays allocated after any error.
absl::StatusOr<Bdev*> CreateMallocBdev(const MallocBdevOptions& options);

// Unregisters the malloc bdev `name` (its memory is freed once every descriptor has closed);
// done runs on the calling thread. Fails when `name` is unknown, not a malloc bdev, or claimed.
void DeleteMallocBdev(std::string_view name, absl::AnyInvocable<void(absl::Status)> done);

}  // namespace pollux
