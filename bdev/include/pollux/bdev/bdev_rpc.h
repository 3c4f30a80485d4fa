// What every bdev module's RPC methods share. Call from a `<module>_rpc.cc`, on the app thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "pollux/rpc/method_registry.h"

namespace pollux {

// A module's delete: removes bdev `name`, then calls done (DeleteMallocBdev, DeleteNullBdev...).
using BdevDeleteFn = void (*)(std::string_view name, absl::AnyInvocable<void(absl::Status)> done);

// SPDK's per-block metadata and protection information parameters of its bdev_malloc_create and
// bdev_null_create (md_size, dif_type, dif_is_head_of_md, dif_pi_format), which its save_config
// writes: accepted at their "off" values, refused otherwise (ignoring them would lose data).
std::vector<rpc::ParamSpec> SpdkMetadataParams();

// SPDK's physical_block_size: here a bdev's physical block is its logical block, so 0 (SPDK's
// "the block size") or the block size itself are accepted.
rpc::ParamSpec PhysicalBlockSizeParam();
absl::Status ReadPhysicalBlockSize(rpc::ParamReader& reader, uint64_t block_size);

// The spec of a module's `<module>_delete` method: {"name"}; `what` names the kind of bdev
// ("null bdev").
rpc::MethodSpec BdevDeleteSpec(std::string method, std::string component, std::string_view what);

// The whole `<module>_delete` method: reads {"name"}, deletes it with `delete_fn`, answers true
// once it is gone, or the error prefixed by `method` (a string literal).
void HandleBdevDelete(const rpc::Json& params, rpc::RpcResponder responder, const char* method,
                      BdevDeleteFn delete_fn);

}  // namespace pollux
