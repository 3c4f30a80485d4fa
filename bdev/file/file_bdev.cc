// FileBdev and FileChannel: what every file engine shares (see file_bdev.h).
#include "pollux/bdev_file/file_bdev.h"

#include <rte_cycles.h>

#include <utility>

#include "absl/strings/str_format.h"
#include "pollux/bdev_file/file_io.h"
#include "pollux/env/log.h"
#include "pollux/reactor/reactor.h"
#include "pollux/reactor/thread.h"

namespace pollux {

// ---- FileChannel ----

FileChannel::FileChannel(FileBdev& bdev) : bdev_(&bdev), target_(&bdev.target()) {}

FileChannel::~FileChannel() {
  // The adaptive choice this channel made, for figures at a given depth (pollux-perf -L info).
  if (adaptive_.inline_count() + adaptive_.async_count() != 0) {
    const MeasuredChoice& lone = adaptive_.lone_choice();
    PX_LOG(kInfo, "bdev_file",
           "bdev %s (%s): this thread ran %u requests inline, %u async; lone requests took "
           "%u ticks inline, %u async on average",
           bdev_->name(), bdev_->engine(), adaptive_.inline_count(), adaptive_.async_count(),
           lone.average(AdaptiveSubmit::kInlineOption), lone.average(AdaptiveSubmit::kAsyncOption));
  }
}

void FileChannel::Submit(BdevIo& io) noexcept {
  const Thread& thread = *Thread::Current();
  if (adaptive_.ChooseInline(thread.reactor()->QuietBesides(thread),
                             io.ThreadHasUndeliveredCompletions())) {
    // Depth 1 on an otherwise idle thread, where the synchronous call has been the shorter
    // path. The layer defers this completion to the thread's next poll, so the caller's
    // callback does not run inside its own submission.
    const uint64_t start = rte_rdtsc();
    int err = ExecuteFileIo(*target_, io);
    adaptive_.InlineFinished(rte_rdtsc() - start);
    io.Complete(err == 0 ? BdevIoStatus::kSuccess : BdevIoStatus::kFailed, err);
    return;
  }
  if (!Enqueue(io)) {
    adaptive_.AsyncRefused();
    io.Complete(BdevIoStatus::kNoMemory);
    return;
  }
  adaptive_.AsyncStarted(adaptive_.timing_lone_async() ? rte_rdtsc() : 0);
  // From now on, not only from this channel's next poll: a depth-1 request of another thread
  // on this reactor must not block it meanwhile.
  poller_->SetAwaiting(awaited_);
}

void FileChannel::EndLoneAsync() noexcept { adaptive_.LoneAsyncFinished(rte_rdtsc()); }

bool FileChannel::Arm() noexcept {
  SubmitQueued();
  return true;
}

void FileChannel::StartPoller(int wake_fd, AwaitedWork awaited) {
  awaited_ = awaited;
  PollerOptions options;
  options.wake_fd = wake_fd;
  if (wake_fd >= 0) {
    options.arm = [this] { return Arm(); };
    options.disarm = [this] { Disarm(); };
  }
  poller_ = PollerHandle(Thread::Current()->RegisterPoller(
      absl::StrFormat("bdev_%s/%s", bdev_->engine(), bdev_->name()), [this] { return Poll(); },
      std::move(options)));
}

PollResult FileChannel::Poll() noexcept {
  // Reap first, then hand the queued requests to the kernel: a completion's callback usually
  // submits the next request (a job keeping its depth, a guest's next command), and that one
  // then reaches the kernel in this same call instead of one reactor pass later.
  unsigned work = Reap();
  work += SubmitQueued();
  // What is still in flight completes through the wake fd: the reactor may sleep for it.
  poller_->SetAwaiting(in_flight() != 0 ? awaited_ : AwaitedWork::kNothing);
  return work != 0 ? PollResult::kBusy : PollResult::kIdle;
}

// ---- FileBdev ----

BdevProperties FileBdev::MakeProperties(std::string product_name, const FileBdevOptions& options,
                                        const FileTarget& target) {
  BdevProperties properties;
  properties.name = options.name;
  properties.uuid = options.uuid;
  properties.product_name = std::move(product_name);
  properties.block_size = target.block_size();
  properties.block_count = target.block_count();
  properties.required_alignment = target.buffer_alignment();
  // The kernel may hold written data in a cache (the page cache, a disk's cache): FLUSH must
  // reach the engine, which makes it an fdatasync.
  properties.write_cache = true;
  // preadv / pwritev and io_uring's readv / writev take at most IOV_MAX segments.
  properties.max_segments = IOV_MAX;
  return properties;
}

FileBdev::FileBdev(BdevModule& module, std::string engine, std::string product_name,
                   const FileBdevOptions& options, std::unique_ptr<FileTarget> target)
    : Bdev(module, MakeProperties(std::move(product_name), options, *target)),
      engine_(std::move(engine)),
      target_(std::move(target)) {}

FileBdev::~FileBdev() = default;

bool FileBdev::IoTypeSupported(IoType type) const {
  switch (type) {
    case IoType::kRead:
    case IoType::kFlush:
      return true;
    case IoType::kWrite:
      return !target_->readonly();
    case IoType::kUnmap:
      return target_->supports_unmap();
    case IoType::kWriteZeroes:
      return target_->supports_write_zeroes();
    default:
      return false;
  }
}

void FileBdev::DumpInfo(rpc::Json& driver_specific) const {
  driver_specific[engine_] = {
      {"filename", target_->filename()},
      {"block_size", target_->block_size()},
      {"readonly", target_->readonly()},
      {"direct", target_->direct()},
      {"block_device", target_->is_block_device()},
      {"unmap", target_->supports_unmap()},
      {"write_zeroes", target_->supports_write_zeroes()},
      {"engine", engine_},
  };
}

void FileBdev::WriteConfig(rpc::Json& config) const {
  rpc::Json params = {
      {"name", name()},
      {"filename", target_->filename()},
      {"block_size", target_->block_size()},
      {"readonly", target_->readonly()},
      {"uuid", uuid()},
  };
  // Only what was asked: a default `direct` replays as a default (it may fall back again).
  if (target_->direct_requested().has_value()) params["direct"] = *target_->direct_requested();
  config.push_back({{"method", absl::StrFormat("bdev_%s_create", engine_)}, {"params", params}});
}

void FileBdev::Destruct(absl::AnyInvocable<void()> done) {
  // Every channel (and so every kernel context using the fd) is gone by now.
  target_.reset();
  done();
}

}  // namespace pollux
