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
using rpc::Optional;
using rpc::ParamReader;
using rpc::ParamType;
using rpc::ReplyError;
using rpc::Required;
using rpc::RpcResponder;

void BdevNullCreate(const Json& params, RpcResponder responder) {
  constexpr const char* kMethod = "bdev_null_create";
  ParamReader reader(params);
  NullBdevOptions options;
  options.name = reader.String("name");
  options.num_blocks = reader.Uint("num_blocks");
  uint64_t block_size = reader.Uint("block_size");
  options.uuid = reader.OptionalString("uuid").value_or("");
  absl::Status physical = ReadPhysicalBlockSize(reader, block_size);
  if (absl::Status s = reader.Finish(); !s.ok()) return ReplyError(responder, kMethod, s);
  if (!physical.ok()) return ReplyError(responder, kMethod, physical);
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
// SPDK's parameters and the ones pollux ignores, so that SPDK's saved configs load.
rpc::MethodSpec NullCreateSpec() {
  std::vector<rpc::ParamSpec> params = {
      Required("name", ParamType::kString, "name of the new bdev"),
      Required("num_blocks", ParamType::kUnsigned, "size in blocks"),
      Required("block_size", ParamType::kUnsigned,
               "bytes per block: a power of two from 512 to 65536"),
      Optional("uuid", ParamType::kString, "UUID of the bdev (default: a random one)"),
      PhysicalBlockSizeParam(),
  };
  for (rpc::ParamSpec& param : SpdkMetadataParams()) params.push_back(std::move(param));
  for (const char* hint :
       {"preferred_write_alignment", "preferred_write_granularity", "optimal_write_size",
        "preferred_unmap_alignment", "preferred_unmap_granularity"}) {
    params.push_back(
        rpc::SpdkHint(hint, ParamType::kUnsigned, "SPDK's hint to the bdev's users, in blocks"));
  }
  return rpc::MethodSpec("bdev_null_create", "bdev_null",
                         "Creates a null bdev: every I/O completes at once with success, writes "
                         "store nothing and reads leave the buffers as they were. Answers the "
                         "bdev's name.",
                         std::move(params));
}
POLLUX_RPC_METHOD(NullCreateSpec(), BdevNullCreate);

void BdevNullDelete(const Json& params, RpcResponder responder) {
  HandleBdevDelete(params, std::move(responder), "bdev_null_delete", &DeleteNullBdev);
}
POLLUX_RPC_METHOD(BdevDeleteSpec("bdev_null_delete", "bdev_null", "null bdev"), BdevNullDelete);

}  // namespace
}  // namespace pollux
