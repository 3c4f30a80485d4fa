// The aio bdev: a FileBdev whose channels drive Linux AIO through an AioQueue (one AIO context
// and one eventfd per thread). READ and WRITE become IOCB_CMD_PREADV / PWRITEV iocbs, kept in
// each BdevIo's module context; FLUSH, UNMAP and WRITE_ZEROES go to the shared worker pool
// (file_io.h's fdatasync / fallocate / BLKDISCARD / BLKZEROOUT), since Linux AIO has no
// discard or zeroing and its fsync support depends on the file system. The adaptive depth-1
// choice, the poller and interrupt-mode arming are FileChannel's (bdev_file/file_bdev.h).
#include "pollux/bdev_aio/bdev_aio.h"

#include <libaio.h>

#include <memory>
#include <utility>

#include "absl/strings/str_format.h"
#include "aio_context.h"
#include "aio_queue.h"
#include "pollux/bdev_file/file_engine.h"
#include "pollux/bdev_file/file_io.h"
#include "pollux/bdev_file/file_target.h"
#include "pollux/bdev_file/worker_pool.h"
#include "pollux/env/log.h"

namespace pollux {
namespace {

// In-flight requests per channel (SPDK's bdev_aio queue depth). The layer retries (kNoMemory)
// what does not fit.
constexpr uint32_t kAioQueueDepth = 128;

// Per-I/O scratch space (AioModule::io_context_size): what each path needs, no allocation.
struct AioIo {
  iocb cb;                 // READ / WRITE: the kernel's request; cb.data is the BdevIo
  WorkerRequest offload;   // FLUSH / UNMAP / WRITE_ZEROES: the worker pool's request
  BdevIo* next_inline;     // the channel's list of I/O run synchronously at its next poll
};

class AioBdev;

// One thread's channel of an aio bdev.
class AioChannel final : public FileChannel {
 public:
  AioChannel(AioBdev& bdev, WorkerPool* pool);

 protected:
  bool Enqueue(BdevIo& io) noexcept override;
  unsigned SubmitQueued() noexcept override {
    return queue_ != nullptr ? queue_->SubmitQueued() : 0;
  }
  unsigned Reap() noexcept override {
    unsigned count = queue_ != nullptr ? queue_->Reap() : 0;
    if (inline_head_ != nullptr) [[unlikely]] count += RunInlineList();
    return count;
  }
  bool Arm() noexcept override {
    if (inline_head_ != nullptr) return false;
    return queue_ != nullptr ? queue_->Arm() : true;
  }

 private:
  // The AioQueue's completion function: one iocb finished with `res` (bytes, or -errno).
  static void OnIocbDone(void* arg, iocb& cb, int64_t res) noexcept;
  // The worker pool's functions for FLUSH / UNMAP / WRITE_ZEROES.
  static int OffloadWork(WorkerRequest& request) noexcept;
  static void OffloadDone(WorkerRequest& request, int result) noexcept;

  // Without an AIO context or a worker pool channel (both only when the system refused them),
  // I/O still works: it runs synchronously on this thread at the next poll.
  bool QueueInline(BdevIo& io) noexcept;
  unsigned RunInlineList() noexcept;

  std::unique_ptr<AioQueue> queue_;   // null: io_setup failed on this thread
  IoChannelRef pool_ref_;             // this thread's channel of the worker pool
  WorkerPoolChannel* pool_channel_ = nullptr;
  BdevIo* inline_head_ = nullptr;
  BdevIo** inline_tail_ = &inline_head_;
};

class AioBdev final : public FileBdev {
 public:
  // `pool`: the bdev's reference, released by Destruct (or with the bdev when registration
  // failed).
  AioBdev(const FileBdevOptions& options, std::unique_ptr<FileTarget> target,
          SharedWorkerPoolRef pool)
      : FileBdev(AioModule::Get(), "aio", "AIO disk", options, std::move(target)),
        pool_(std::move(pool)) {}

  std::unique_ptr<FileChannel> CreateFileChannel() override {
    return std::make_unique<AioChannel>(*this, pool_.get());
  }

  void Destruct(absl::AnyInvocable<void()> done) override {
    // Every channel, and with them every pool channel they held, is gone by now: close the
    // file, then drop the pool reference.
    FileBdev::Destruct([pool = std::move(pool_), done = std::move(done)]() mutable {
      pool.Release(std::move(done));
    });
  }

 private:
  SharedWorkerPoolRef pool_;
};

AioChannel::AioChannel(AioBdev& bdev, WorkerPool* pool) : FileChannel(bdev) {
  AioQueue::Options options;
  options.depth = kAioQueueDepth;
  absl::StatusOr<std::unique_ptr<AioQueue>> queue = AioQueue::Create(options, &OnIocbDone, this);
  if (queue.ok()) {
    queue_ = std::move(*queue);
  } else {
    PX_LOG(kError, "aio", "%s: %s: this thread's reads and writes run synchronously",
           bdev.name(), queue.status().ToString());
  }
  if (pool != nullptr) pool_ref_ = GetIoChannel(*pool);
  if (pool_ref_) {
    pool_channel_ = &pool_ref_->context<WorkerPoolChannel>();
  } else {
    PX_LOG(kError, "aio", "%s: the worker pool is not available on this thread: FLUSH, UNMAP "
           "and WRITE_ZEROES run synchronously", bdev.name());
  }
  StartPoller(queue_ != nullptr ? queue_->event_fd() : -1);
}

bool AioChannel::Enqueue(BdevIo& io) noexcept {
  AioIo& context = io.module_context<AioIo>();
  switch (io.type()) {
    case IoType::kRead:
    case IoType::kWrite: {
      if (queue_ == nullptr) [[unlikely]] return QueueInline(io);
      auto offset = static_cast<long long>(io.offset_blocks() * target().block_size());
      if (io.type() == IoType::kRead) {
        io_prep_preadv(&context.cb, target().fd(), io.iovs(), io.iovcnt(), offset);
      } else {
        io_prep_pwritev(&context.cb, target().fd(), io.iovs(), io.iovcnt(), offset);
      }
      context.cb.data = &io;
      if (!queue_->Enqueue(context.cb)) return false;
      // A starving kernel gets the request now, not at the end of the poll (kStarvingDepth).
      if (KernelStarves(queue_->in_flight(), io.num_blocks() * target().block_size())) {
        queue_->SubmitQueued();
      }
      return true;
    }
    default: {
      // FLUSH, UNMAP, WRITE_ZEROES (IoTypeSupported admits nothing else): blocking calls.
      if (pool_channel_ == nullptr) [[unlikely]] return QueueInline(io);
      WorkerRequest& request = context.offload;
      request.work = &OffloadWork;
      request.done = &OffloadDone;
      request.arg = this;
      request.io = &io;
      request.io_work = nullptr;
      pool_channel_->Submit(request);
      return true;
    }
  }
}

void AioChannel::OnIocbDone(void* arg, iocb& cb, int64_t res) noexcept {
  auto& channel = *static_cast<AioChannel*>(arg);
  BdevIo& io = *static_cast<BdevIo*>(cb.data);
  int error_number = 0;
  if (res < 0) [[unlikely]] {
    error_number = static_cast<int>(-res);
  } else {
    auto expected = io.num_blocks() * channel.target().block_size();
    if (static_cast<uint64_t>(res) < expected) [[unlikely]] {
      // A short transfer: the kernel may split (a signal, a partly cached range), so finish it
      // synchronously; a read that meets the end of the file (truncated while open) fails
      // with EIO, a write that runs out of space with ENOSPC.
      error_number = ContinueFileIo(channel.target(), io, static_cast<uint64_t>(res));
    }
  }
  channel.CompleteAsync(io, error_number);
}

int AioChannel::OffloadWork(WorkerRequest& request) noexcept {
  // On a worker: the FileTarget is immutable and outlives every channel.
  return ExecuteFileIo(static_cast<AioChannel*>(request.arg)->target(), *request.io);
}

void AioChannel::OffloadDone(WorkerRequest& request, int result) noexcept {
  static_cast<AioChannel*>(request.arg)->CompleteAsync(*request.io, result);
}

bool AioChannel::QueueInline(BdevIo& io) noexcept {
  AioIo& context = io.module_context<AioIo>();
  context.next_inline = nullptr;
  *inline_tail_ = &io;
  inline_tail_ = &context.next_inline;
  return true;
}

unsigned AioChannel::RunInlineList() noexcept {
  // Detach first: a completion's callback may submit again (onto a fresh list).
  BdevIo* io = inline_head_;
  inline_head_ = nullptr;
  inline_tail_ = &inline_head_;
  unsigned count = 0;
  while (io != nullptr) {
    BdevIo* next = io->module_context<AioIo>().next_inline;
    CompleteAsync(*io, ExecuteFileIo(target(), *io));
    io = next;
    ++count;
  }
  return count;
}

}  // namespace

POLLUX_BDEV_MODULE(AioModule);

size_t AioModule::io_context_size() const { return sizeof(AioIo); }

absl::Status ProbeAio() {
  absl::StatusOr<AioContext> context = AioContext::Create(1);
  return context.status();
}

absl::StatusOr<Bdev*> CreateAioBdev(const FileBdevOptions& options) {
  // Say so now if this kernel refuses AIO, rather than degrade every channel later.
  if (absl::Status probe = ProbeAio(); !probe.ok()) return probe;
  absl::StatusOr<std::unique_ptr<FileTarget>> target =
      FileTarget::Open(options.target_options());
  if (!target.ok()) return target.status();
  absl::StatusOr<SharedWorkerPoolRef> pool = SharedWorkerPoolRef::Acquire();
  if (!pool.ok()) {
    return absl::Status(pool.status().code(),
                        absl::StrFormat("starting the worker pool for FLUSH, UNMAP and "
                                        "WRITE_ZEROES: %s",
                                        pool.status().message()));
  }
  return RegisterBdev(std::make_unique<AioBdev>(options, std::move(*target), std::move(*pool)));
}

void DeleteAioBdev(std::string_view name, absl::AnyInvocable<void(absl::Status)> done) {
  DeleteBdev(name, &AioModule::Get(), std::move(done));
}

// bdev_file_create's "auto" tries aio after io_uring.
POLLUX_FILE_ENGINE(aio, FileEngine{"aio", 20, &ProbeAio, &CreateAioBdev, &DeleteAioBdev});

}  // namespace pollux
