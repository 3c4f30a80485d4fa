// RPC methods of the threadpool module:
//   bdev_threadpool_create {name, filename, block_size?, readonly?, direct?, uuid?} -> name
//   bdev_threadpool_delete {name}                                            -> true
//   bdev_threadpool_set_options {num_workers?, queue_size?, channel_queue_size?} -> true
//   bdev_threadpool_get_options {}  -> the options, the users and the pool's counters
// The create parameters are every file engine's (file_engine.h), so that bdev_uring_create,
// bdev_aio_create and bdev_file_create take the same ones with the same messages. save_config
// writes bdev_threadpool_set_options (when not the defaults) and bdev_threadpool_create back
// (ThreadpoolModule::WriteConfig, FileBdev::WriteConfig).
#include <cstdint>
#include <optional>
#include <utility>

#include "absl/strings/str_format.h"
#include "pollux/bdev/bdev_rpc.h"
#include "pollux/bdev_file/file_engine.h"
#include "pollux/bdev_file/worker_pool.h"
#include "pollux/bdev_threadpool/bdev_threadpool.h"
#include "pollux/rpc/method_registry.h"

namespace pollux {
namespace {

using rpc::Json;
using rpc::MethodSpec;
using rpc::Optional;
using rpc::ParamReader;
using rpc::ParamType;
using rpc::ReplyError;
using rpc::RpcResponder;

void BdevThreadpoolCreate(const Json& params, RpcResponder responder) {
  HandleFileBdevCreate(params, std::move(responder), "bdev_threadpool_create",
                       *FindFileEngine("threadpool"));
}
POLLUX_RPC_METHOD(FileBdevCreateSpec("bdev_threadpool_create", "bdev_threadpool",
                                     "a pool of worker threads (blocking preadv/pwritev)"),
                  BdevThreadpoolCreate);

void BdevThreadpoolDelete(const Json& params, RpcResponder responder) {
  HandleBdevDelete(params, std::move(responder), "bdev_threadpool_delete",
                   &DeleteThreadpoolBdev);
}
POLLUX_RPC_METHOD(BdevDeleteSpec("bdev_threadpool_delete", "bdev_threadpool", "threadpool bdev"),
                  BdevThreadpoolDelete);

void BdevThreadpoolRescan(const Json& params, RpcResponder responder) {
  HandleFileBdevRescan(params, std::move(responder), "bdev_threadpool_rescan", "threadpool");
}
POLLUX_RPC_METHOD(FileBdevRescanSpec("bdev_threadpool_rescan", "bdev_threadpool",
                                     "threadpool bdev"),
                  BdevThreadpoolRescan);

// Reads an optional 32-bit count; out-of-range values are kept as UINT32_MAX so that the pool's
// own range check names them.
void ReadCount(ParamReader& reader, const char* name, uint32_t& value) {
  std::optional<uint64_t> given = reader.OptionalUint(name);
  if (given.has_value()) value = *given > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(*given);
}

// The shared worker pool's options (it serves every threadpool bdev and aio's FLUSH / UNMAP /
// WRITE_ZEROES). num_workers applies at once, also to a running pool; the queue sizes only
// while no bdev uses the pool (they size rings that exist while it runs).
void BdevThreadpoolSetOptions(const Json& params, RpcResponder responder) {
  constexpr const char* kMethod = "bdev_threadpool_set_options";
  ParamReader reader(params);
  WorkerPoolOptions options = GetSharedWorkerPoolOptions();
  ReadCount(reader, "num_workers", options.num_workers);
  ReadCount(reader, "queue_size", options.queue_size);
  ReadCount(reader, "channel_queue_size", options.channel_queue_size);
  if (absl::Status s = reader.Finish(); !s.ok()) return ReplyError(responder, kMethod, s);
  if (absl::Status s = SetSharedWorkerPoolOptions(options); !s.ok()) {
    return ReplyError(responder, kMethod, s);
  }
  responder.Result(true);
}
POLLUX_RPC_METHOD(
    MethodSpec("bdev_threadpool_set_options", "bdev_threadpool",
               "Sets the shared worker pool's options (it serves every threadpool bdev and aio's "
               "FLUSH, UNMAP and WRITE_ZEROES). An absent parameter keeps its current value; "
               "the queue sizes change only while no bdev uses the pool. Answers true.",
               {Optional("num_workers", ParamType::kUnsigned,
                         "worker threads; applies at once, also to a running pool"),
                Optional("queue_size", ParamType::kUnsigned,
                         "requests the pool's shared ring holds"),
                Optional("channel_queue_size", ParamType::kUnsigned,
                         "requests one channel may have at the workers")}),
    BdevThreadpoolSetOptions);

void BdevThreadpoolGetOptions(const Json& params, RpcResponder responder) {
  constexpr const char* kMethod = "bdev_threadpool_get_options";
  ParamReader reader(params);
  if (absl::Status s = reader.Finish(); !s.ok()) return ReplyError(responder, kMethod, s);
  WorkerPoolOptions options = GetSharedWorkerPoolOptions();
  Json result = {{"num_workers", options.num_workers},
                 {"queue_size", options.queue_size},
                 {"channel_queue_size", options.channel_queue_size},
                 {"users", SharedWorkerPoolUsers()}};
  if (std::optional<WorkerPoolStats> stats = SharedWorkerPoolStats(); stats.has_value()) {
    result["requests"] = stats->requests;
    result["wakes"] = stats->wakes;
    result["sleeps"] = stats->sleeps;
  }
  responder.Result(std::move(result));
}
POLLUX_RPC_METHOD(MethodSpec("bdev_threadpool_get_options", "bdev_threadpool",
                             "The shared worker pool's options, its users and, while it runs, "
                             "its requests, wakes and sleeps.",
                             {}),
                  BdevThreadpoolGetOptions);

}  // namespace
}  // namespace pollux
