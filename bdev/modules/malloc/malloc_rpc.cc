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
using rpc::Optional;
using rpc::ParamReader;
using rpc::ParamType;
using rpc::ReplyError;
using rpc::Required;
using rpc::RpcResponder;

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
  uint64_t optimal_io_boundary = reader.Uint("optimal_io_boundary");
  absl::Status physical = ReadPhysicalBlockSize(reader, block_size);
  if (absl::Status s = reader.Finish(); !s.ok()) return ReplyError(responder, kMethod, s);
  if (!physical.ok()) return ReplyError(responder, kMethod, physical);
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
// SPDK's parameters and the ones pollux ignores, so that SPDK's saved configs load.
rpc::MethodSpec MallocCreateSpec() {
  std::vector<rpc::ParamSpec> params = {
      Optional("name", ParamType::kString,
               "name of the new bdev (default: MallocN, the first N free)"),
      Required("num_blocks", ParamType::kUnsigned, "size in blocks"),
      Required("block_size", ParamType::kUnsigned,
               "bytes per block: a power of two from 512 to 65536"),
      Optional("uuid", ParamType::kString, "UUID of the bdev (default: a random one)"),
      Optional("optimal_io_boundary", ParamType::kUnsigned,
               "split I/O that crosses a multiple of this many blocks; 0 never splits", "0"),
      PhysicalBlockSizeParam(),
      rpc::SpdkOnlyAtDefault("md_interleave", ParamType::kBoolean, "false",
                             "per-block metadata interleaved with the data"),
  };
  for (rpc::ParamSpec& param : SpdkMetadataParams()) params.push_back(std::move(param));
  params.push_back(
      rpc::SpdkHint("numa_id", ParamType::kInteger, "SPDK's NUMA node for the memory (-1: any)"));
  return rpc::MethodSpec("bdev_malloc_create", "bdev_malloc",
                         "Creates a bdev held in memory, zeroed at creation. Answers the "
                         "bdev's name.",
                         std::move(params));
}
POLLUX_RPC_METHOD(MallocCreateSpec(), BdevMallocCreate);

void BdevMallocDelete(const Json& params, RpcResponder responder) {
  HandleBdevDelete(params, std::move(responder), "bdev_malloc_delete", &DeleteMallocBdev);
}
POLLUX_RPC_METHOD(BdevDeleteSpec("bdev_malloc_delete", "bdev_malloc", "malloc bdev"),
                  BdevMallocDelete);

}  // namespace
}  // namespace pollux
