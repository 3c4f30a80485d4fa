// RPC methods of the null module: bdev_null_create and bdev_null_delete (SPDK's names and
// parameters). Config replay calls them too; save_config writes bdev_null_create back
// (NullBdev::WriteConfig).
#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "absl/strings/str_format.h"
#include "pollux/bdev_null/bdev_null.h"
#include "pollux/bdev/bdev_rpc.h"
#include "pollux/rpc/method_registry.h"

namespace pollux {
namespace {

using rpc::Json;
using rpc::ParamReader;
using rpc::ReplyError;
using rpc::RpcResponder;

// SPDK's create methods also take per-block metadata and protection information, and SPDK's
// save_config writes them. Accept them at their "off" values so that SPDK configs replay, and
// refuse anything else clearly rather than ignore it.
absl::Status ReadMetadataParams(ParamReader& reader, uint64_t block_size) {
  std::optional<uint64_t> md_size = reader.OptionalUint("md_size");
  std::optional<int64_t> dif_type = reader.OptionalInt("dif_type");
  std::optional<bool> dif_is_head_of_md = reader.OptionalBool("dif_is_head_of_md");
  std::optional<uint64_t> dif_pi_format = reader.OptionalUint("dif_pi_format");
  std::optional<uint64_t> physical_block_size = reader.OptionalUint("physical_block_size");
  if (md_size.value_or(0) != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("md_size %u: per-block metadata is not supported (only 0)", *md_size));
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

void BdevNullCreate(const Json& params, RpcResponder responder) {
  constexpr const char* kMethod = "bdev_null_create";
  ParamReader reader(params);
  NullBdevOptions options;
  options.name = reader.String("name");
  options.num_blocks = reader.Uint("num_blocks");
  uint64_t block_size = reader.Uint("block_size");
  options.uuid = reader.OptionalString("uuid").value_or("");
  absl::Status metadata = ReadMetadataParams(reader, block_size);
  if (absl::Status s = reader.Finish(); !s.ok()) return ReplyError(responder, kMethod, s);
  if (!metadata.ok()) return ReplyError(responder, kMethod, metadata);
  // CreateNullBdev takes a 32-bit size; anything wider is out of range anyway.
  if (block_size > std::numeric_limits<uint32_t>::max()) {
    return ReplyError(responder, kMethod,
                      absl::InvalidArgumentError(absl::StrFormat(
                          "block_size %u is not a power of two from 512 to 65536", block_size)));
  }
  options.block_size = static_cast<uint32_t>(block_size);
  absl::StatusOr<Bdev*> bdev = CreateNullBdev(options);
  if (!bdev.ok()) return ReplyError(responder, kMethod, bdev.status());
  responder.Result((*bdev)->name());
}
POLLUX_RPC_METHOD("bdev_null_create", BdevNullCreate);

void BdevNullDelete(const Json& params, RpcResponder responder) {
  HandleBdevDelete(params, std::move(responder), "bdev_null_delete", &DeleteNullBdev);
}
POLLUX_RPC_METHOD("bdev_null_delete", BdevNullDelete);

}  // namespace
}  // namespace pollux
