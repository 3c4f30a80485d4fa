// The threadpool bdev module: a bdev over a file or a block device whose I/O runs as plain
// blocking calls (preadv / pwritev / fdatasync / fallocate, BLKDISCARD / BLKZEROOUT) on the
// shared worker pool (bdev_file/worker_pool.h). The fallback that works everywhere: it needs no
// io_uring and no libaio, only threads, so a seccomp profile or a kernel that refuses both still
// gets a file bdev. Requests reach the workers through a lockless ring, once per poll iteration;
// completions come back through the channel's own ring, reaped without a syscall; in interrupt
// mode a reactor with I/O in flight sleeps and a worker wakes it (eventfd) when it completes.
// A lone request on an idle thread runs inline instead (bdev_file/adaptive_submit.h).
//
// Threads: every function here runs on the app thread (like the RPC methods in
// threadpool_rpc.cc, and bdev_file_create with engine "threadpool"); I/O runs on any thread.
#pragma once

#include <cstddef>
#include <string_view>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pollux/bdev/bdev.h"
#include "pollux/bdev/bdev_module.h"
#include "pollux/bdev_file/file_bdev.h"
#include "pollux/rpc/json_rpc.h"

namespace pollux {

class ThreadpoolModule final : public BdevModule {
 public:
  ThreadpoolModule() : BdevModule("threadpool") {}
  static ThreadpoolModule& Get();

  // Each BdevIo carries its worker-pool request (no allocation per I/O).
  size_t io_context_size() const override;
  // bdev_threadpool_set_options first when the pool options differ from the defaults, then one
  // bdev_threadpool_create per bdev.
  void WriteConfig(rpc::Json& config) const override;
};

// The engine registry's probe: always OK (threads are all this engine needs).
absl::Status ProbeThreadpool();

// Opens options.filename (FileTarget: O_DIRECT by default, size, block size), takes a
// reference to the shared worker pool (starting it if needed) and registers a threadpool bdev.
// Errors name the file and the reason; nothing is left behind on error.
absl::StatusOr<Bdev*> CreateThreadpoolBdev(const FileBdevOptions& options);

// Unregisters the threadpool bdev `name` (once its users closed it), closes the file and drops
// its pool reference (the last one stops the pool); done runs on the calling thread. Fails
// (NotFound, FailedPrecondition) when `name` is unknown, not a threadpool bdev, or claimed.
void DeleteThreadpoolBdev(std::string_view name, absl::AnyInvocable<void(absl::Status)> done);

}  // namespace pollux
