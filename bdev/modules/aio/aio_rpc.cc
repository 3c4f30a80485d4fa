// RPC methods of the aio module: bdev_aio_create and bdev_aio_delete, with SPDK's parameters
// (name, filename, block_size, readonly, fallocate, uuid) plus pollux's `direct`. The shared
// file-engine code reads and checks them (file_engine.h), so that bdev_uring_create,
// bdev_threadpool_create and bdev_file_create take the same ones with the same messages.
// save_config writes bdev_aio_create back (FileBdev::WriteConfig).
#include <utility>

#include "pollux/bdev/bdev_rpc.h"
#include "pollux/bdev_aio/bdev_aio.h"
#include "pollux/bdev_file/file_engine.h"
#include "pollux/rpc/method_registry.h"

namespace pollux {
namespace {

void BdevAioCreate(const rpc::Json& params, rpc::RpcResponder responder) {
  HandleFileBdevCreate(params, std::move(responder), "bdev_aio_create", *FindFileEngine("aio"));
}
POLLUX_RPC_METHOD(FileBdevCreateSpec("bdev_aio_create", "bdev_aio", "Linux AIO (io_submit)",
                                     {rpc::SpdkHint("nowait", rpc::ParamType::kBoolean,
                                                    "SPDK's RWF_NOWAIT for block devices")}),
                  BdevAioCreate);

void BdevAioDelete(const rpc::Json& params, rpc::RpcResponder responder) {
  HandleBdevDelete(params, std::move(responder), "bdev_aio_delete", &DeleteAioBdev);
}
POLLUX_RPC_METHOD(BdevDeleteSpec("bdev_aio_delete", "bdev_aio", "Linux AIO bdev"), BdevAioDelete);

void BdevAioRescan(const rpc::Json& params, rpc::RpcResponder responder) {
  HandleFileBdevRescan(params, std::move(responder), "bdev_aio_rescan", "aio");
}
POLLUX_RPC_METHOD(FileBdevRescanSpec("bdev_aio_rescan", "bdev_aio", "Linux AIO bdev"),
                  BdevAioRescan);

}  // namespace
}  // namespace pollux
