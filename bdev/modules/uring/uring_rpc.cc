// RPC methods of the uring module: bdev_uring_create {name, filename, block_size?, readonly?,
// direct?, uuid?} (SPDK's names plus readonly and direct) and bdev_uring_delete {name}.
// save_config writes bdev_uring_create back (FileBdev::WriteConfig).
#include <utility>

#include "pollux/bdev/bdev_rpc.h"
#include "pollux/bdev_file/file_engine.h"
#include "pollux/bdev_uring/bdev_uring.h"
#include "pollux/rpc/method_registry.h"

namespace pollux {
namespace {

void BdevUringCreate(const rpc::Json& params, rpc::RpcResponder responder) {
  static const FileEngine engine{"uring", 10, &ProbeUring, &CreateUringBdev, nullptr};
  HandleFileBdevCreate(params, std::move(responder), "bdev_uring_create", engine);
}
POLLUX_RPC_METHOD(FileBdevCreateSpec("bdev_uring_create", "bdev_uring", "io_uring"),
                  BdevUringCreate);

void BdevUringDelete(const rpc::Json& params, rpc::RpcResponder responder) {
  HandleBdevDelete(params, std::move(responder), "bdev_uring_delete", &DeleteUringBdev);
}
POLLUX_RPC_METHOD(BdevDeleteSpec("bdev_uring_delete", "bdev_uring", "io_uring bdev"),
                  BdevUringDelete);

void BdevUringRescan(const rpc::Json& params, rpc::RpcResponder responder) {
  HandleFileBdevRescan(params, std::move(responder), "bdev_uring_rescan", "uring");
}
POLLUX_RPC_METHOD(FileBdevRescanSpec("bdev_uring_rescan", "bdev_uring", "io_uring bdev"),
                  BdevUringRescan);

}  // namespace
}  // namespace pollux
