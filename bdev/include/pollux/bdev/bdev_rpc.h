// What every bdev module's RPC methods share. Call from a `<module>_rpc.cc`, on the app thread.
#pragma once

#include <string_view>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "pollux/rpc/method_registry.h"

namespace pollux {

// A module's delete: removes bdev `name`, then calls done (DeleteMallocBdev, DeleteNullBdev...).
using BdevDeleteFn = void (*)(std::string_view name, absl::AnyInvocable<void(absl::Status)> done);

// The whole `<module>_delete` method: reads {"name"}, deletes it with `delete_fn`, answers true
// once it is gone, or the error prefixed by `method` (a string literal).
void HandleBdevDelete(const rpc::Json& params, rpc::RpcResponder responder, const char* method,
                      BdevDeleteFn delete_fn);

}  // namespace pollux
