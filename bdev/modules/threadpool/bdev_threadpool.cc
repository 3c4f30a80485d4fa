// The threadpool bdev: a FileBdev whose channels hand every asynchronous I/O to the shared
// worker pool. Each channel embeds a WorkerPoolChannel (its own completion ring and eventfd)
// and drives it from FileChannel's poller: the iteration's requests go to the workers in one
// ring operation (SubmitQueued), finished ones are reaped from the completion ring in user
// space (Reap), and in interrupt mode the channel arms before its reactor sleeps, so that a
// worker writes the eventfd only then. The workers run file_io.h's ExecuteFileIo, the same
// synchronous code as the inline depth-1 path (FileChannel::Submit).
#include "pollux/bdev_threadpool/bdev_threadpool.h"

#include <memory>
#include <utility>

#include "absl/strings/str_format.h"
#include "pollux/bdev_file/file_engine.h"
#include "pollux/bdev_file/file_io.h"
#include "pollux/bdev_file/file_target.h"
#include "pollux/bdev_file/worker_pool.h"

namespace pollux {
namespace {

// Per-I/O scratch space (ThreadpoolModule::io_context_size).
struct ThreadpoolIo {
  WorkerRequest request;
};

class ThreadpoolBdev;

// One thread's channel of a threadpool bdev.
class ThreadpoolChannel final : public FileChannel {
 public:
  ThreadpoolChannel(FileBdev& bdev, WorkerPool& pool) : FileChannel(bdev), requests_(pool) {
    // The workers run on the reactors' cores: an idle reactor sleeps at once for them.
    StartPoller(requests_.wake_fd(), AwaitedWork::kHelperThreads);
  }

 protected:
  // Never refuses: what the request ring cannot take now waits in the channel (no allocation:
  // the requests are linked through their BdevIo's context) and goes at the next poll.
  bool Enqueue(BdevIo& io) noexcept override {
    WorkerRequest& request = io.module_context<ThreadpoolIo>().request;
    request.work = &Work;
    request.done = &Done;
    request.arg = this;
    request.io = &io;
    request.io_work = nullptr;
    requests_.Submit(request);
    return true;
  }
  unsigned SubmitQueued() noexcept override { return requests_.Flush(); }
  unsigned Reap() noexcept override { return requests_.Reap(); }
  // Flush first; stay awake if the request ring could not take everything (the poll after
  // waking retries), otherwise let the next completion write the eventfd.
  bool Arm() noexcept override {
    requests_.Flush();
    return requests_.Arm();
  }
  void Disarm() noexcept override { requests_.Disarm(); }

 private:
  // On a worker: the FileTarget is immutable and outlives every channel.
  static int Work(WorkerRequest& request) noexcept {
    return ExecuteFileIo(static_cast<ThreadpoolChannel*>(request.arg)->target(), *request.io);
  }
  // Back on the channel's thread.
  static void Done(WorkerRequest& request, int result) noexcept {
    static_cast<ThreadpoolChannel*>(request.arg)->CompleteAsync(*request.io, result);
  }

  WorkerPoolChannel requests_;
};

class ThreadpoolBdev final : public FileBdev {
 public:
  // `pool`: the bdev's reference, dropped by Destruct (or with the bdev when registration
  // failed and Destruct never runs).
  ThreadpoolBdev(const FileBdevOptions& options, std::unique_ptr<FileTarget> target,
                 SharedWorkerPoolRef pool)
      : FileBdev(ThreadpoolModule::Get(), "threadpool", "Thread pool disk", options,
                 std::move(target)),
        pool_(std::move(pool)) {}

  std::unique_ptr<FileChannel> CreateFileChannel() override {
    return std::make_unique<ThreadpoolChannel>(*this, *pool_.get());
  }

  void Destruct(absl::AnyInvocable<void()> done) override {
    // Every channel is gone, so no request of this bdev is at the workers: close the file,
    // then drop the pool reference (the last one stops the workers).
    FileBdev::Destruct([pool = std::move(pool_), done = std::move(done)]() mutable {
      pool.Release(std::move(done));
    });
  }

 private:
  SharedWorkerPoolRef pool_;
};

}  // namespace

POLLUX_BDEV_MODULE(ThreadpoolModule);

size_t ThreadpoolModule::io_context_size() const { return sizeof(ThreadpoolIo); }

void ThreadpoolModule::WriteConfig(rpc::Json& config) const {
  // The pool is shared with other engines (aio's offloads), whose bdevs may be replayed before
  // ours: a running pool takes a new num_workers at once, so the order does not matter.
  WorkerPoolOptions options = GetSharedWorkerPoolOptions();
  WorkerPoolOptions defaults;
  if (options.num_workers != defaults.num_workers || options.queue_size != defaults.queue_size ||
      options.channel_queue_size != defaults.channel_queue_size) {
    config.push_back({{"method", "bdev_threadpool_set_options"},
                      {"params",
                       {{"num_workers", options.num_workers},
                        {"queue_size", options.queue_size},
                        {"channel_queue_size", options.channel_queue_size}}}});
  }
  BdevModule::WriteConfig(config);
}

absl::Status ProbeThreadpool() { return absl::OkStatus(); }

absl::StatusOr<Bdev*> CreateThreadpoolBdev(const FileBdevOptions& options) {
  absl::StatusOr<std::unique_ptr<FileTarget>> target =
      FileTarget::Open(options.target_options());
  if (!target.ok()) return target.status();
  absl::StatusOr<SharedWorkerPoolRef> pool = SharedWorkerPoolRef::Acquire();
  if (!pool.ok()) {
    return absl::Status(pool.status().code(), absl::StrFormat("starting the worker pool: %s",
                                                              pool.status().message()));
  }
  return RegisterBdev(
      std::make_unique<ThreadpoolBdev>(options, std::move(*target), std::move(*pool)));
}

void DeleteThreadpoolBdev(std::string_view name, absl::AnyInvocable<void(absl::Status)> done) {
  DeleteBdev(name, &ThreadpoolModule::Get(), std::move(done));
}

// bdev_file_create's "auto" falls back to the thread pool last.
POLLUX_FILE_ENGINE(threadpool, FileEngine{"threadpool", 30, &ProbeThreadpool,
                                          &CreateThreadpoolBdev, &DeleteThreadpoolBdev});

}  // namespace pollux
