// The null bdev module (SPDK's bdev_null): a device without data whose every I/O succeeds at
// once. Reads leave the caller's buffers untouched. It measures the bdev layer's own cost.
//
// Threads: CreateNullBdev and DeleteNullBdev run on the app thread (like the RPC methods
// bdev_null_create and bdev_null_delete in null_rpc.cc); I/O runs on any thread.
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

class NullModule final : public BdevModule {
 public:
  NullModule() : BdevModule("null") {}
  static NullModule& Get();
};

struct NullBdevOptions {
  std::string name;         // required
  uint64_t num_blocks = 0;  // > 0
  uint32_t block_size = 512;
  std::string uuid;  // empty: the layer generates one
};

// Validates the options and registers a null bdev. Errors name the bad option; a duplicate
// name is the layer's AlreadyExists.
absl::StatusOr<Bdev*> CreateNullBdev(const NullBdevOptions& options);

// Unregisters the null bdev `name`; done runs on the calling thread. Fails (NotFound,
// FailedPrecondition) when `name` is unknown, not a null bdev, or claimed.
void DeleteNullBdev(std::string_view name, absl::AnyInvocable<void(absl::Status)> done);

}  // namespace pollux
