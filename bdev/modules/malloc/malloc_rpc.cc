// RPC methods of the malloc module: bdev_malloc_create and bdev_malloc_delete (SPDK's names
// and parameters). Config replay calls them too; save_config writes bdev_malloc_create back
// (MallocBdev::WriteConfig).
#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "absl/strings/str_format.h"
#include "pollux/bdev_malloc/bdev_malloc.h"
#include "pollux/bdev/bdev_rpc.h"
#include "pollux/rpc/method_registry.h"

namespace pollux {
namespace {

using rpc::Json;
using rpc::ParamReader;
using rpc::ReplyError;
using rpc::RpcResponder;

// SPDK's bdev_malloc_create also takes per-block metadata and protection information, and
// SPDK's save_config writes them. Accept them at their "off" values so that SPDK configs
// replay, and refuse anything else clearly rather than ignore it.
absl::Status ReadMetadataParams(ParamReader& reader, uint64_t block_size) {
  std::optional<uint64_t> md_size = reader.OptionalUint("md_size");
  std::optional<bool> md_interleave = reader.OptionalBool("md_interleave");
  std::optional<int64_t> dif_type = reader.OptionalInt("dif_type");
  std::optional<bool> dif_is_head_of_md = reader.OptionalBool("dif_is_head_of_md");
  std::optional<uint64_t> dif_pi_format = reader.OptionalUint("dif_pi_format");
  std::optional<uint64_t> physical_block_size = reader.OptionalUint("physical_block_size");
  if (md_size.value_or(0) != 0 || md_interleave.value_or(false)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "md_size %u: per-block metadata is not supported (only 0)", md_size.value_or(0)));
  }
  if (dif_type.value_or(0) != 0 || dif_is_head_of_md.value_or(false) ||
      dif_pi_format.value_or(0) != 0) {
    return absl::InvalidArgumentError("protection information (dif_*) is not supported");
  }
  if (physical_block_size.value_or(0) != 0 && *physical_block_size != block_size) {
    return absl::InvalidArgumentError(
        absl::StrFormat("physical_block_size %u differs from block_size %u, which is not supported",
                        *physical_block_size, block_size));
  }
  return absl::OkStatus();
}

// Narrows a 64-bit parameter to the 32 bits its option has; nullopt when it does not fit.
std::optional<uint32_t> To32(uint64_t value) {
  if (value > std::numeric_limits<uint32_t>::max()) return std::nullopt;
  return static_cast<uint32_t>(value);
}

void BdevMallocCreate(const Json& params, RpcResponder responder) {
  constexpr const char* kMethod = "bdev_malloc_create";
  ParamReader reader(params);
  MallocBdevOptions options;
  std::optional<std::string> name = reader.OptionalString("name");
  options.num_blocks = reader.Uint("num_blocks");
  uint64_t block_size = reader.Uint("block_size");
  options.uuid = reader.OptionalString("uuid").value_or("");
  uint64_t optimal_io_boundary = reader.OptionalUint("optimal_io_boundary").value_or(0);
  absl::Status metadata = ReadMetadataParams(reader, block_size);
  if (absl::Status s = reader.Finish(); !s.ok()) return ReplyError(responder, kMethod, s);
  if (!metadata.ok()) return ReplyError(responder, kMethod, metadata);
  // An explicit empty name would otherwise silently mean "generate one".
  if (name && name->empty()) {
    return ReplyError(responder, kMethod,
                      absl::InvalidArgumentError("parameter \"name\" must not be empty"));
  }
  options.name = name.value_or("");
  std::optional<uint32_t> block_size32 = To32(block_size);
  if (!block_size32) {
    return ReplyError(responder, kMethod,
                      absl::InvalidArgumentError(absl::StrFormat(
                          "block_size %u is not a power of two from 512 to 65536", block_size)));
  }
  options.block_size = *block_size32;
  std::optional<uint32_t> boundary32 = To32(optimal_io_boundary);
  if (!boundary32) {
    return ReplyError(responder, kMethod,
                      absl::InvalidArgumentError(absl::StrFormat(
                          "optimal_io_boundary %u does not fit in 32 bits", optimal_io_boundary)));
  }
  options.optimal_io_boundary = *boundary32;
  absl::StatusOr<Bdev*> bdev = CreateMallocBdev(options);
  if (!bdev.ok()) return ReplyError(responder, kMethod, bdev.status());
  responder.Result((*bdev)->name());
}
POLLUX_RPC_METHOD("bdev_malloc_create", BdevMallocCreate);

void BdevMallocDelete(const Json& params, RpcResponder responder) {
  HandleBdevDelete(params, std::move(responder), "bdev_malloc_delete", &DeleteMallocBdev);
}
POLLUX_RPC_METHOD("bdev_malloc_delete", BdevMallocDelete);

}  // namespace
}  // namespace pollux
