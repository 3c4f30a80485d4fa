// FileBdev and FileChannel: the base classes of the file engines (uring, aio, threadpool).
//
// The base does everything that is the same for every engine: the bdev's properties from the
// FileTarget (block size and count, O_DIRECT alignment, write cache on so that FLUSH reaches the
// engine, UNMAP / WRITE_ZEROES only where the probe said the file supports them), the adaptive
// depth-1 choice (adaptive_submit.h: a lone request runs inline with file_io.h), the channel's
// poller (submit what queued during the iteration, reap, interrupt-mode arming), DumpInfo,
// WriteConfig and Destruct. An engine writes:
//
//   class UringChannel final : public FileChannel {      // one per thread: its kernel context
//     UringChannel(FileBdev& bdev) : FileChannel(bdev) { ...ring...; StartPoller(event_fd); }
//     bool Enqueue(BdevIo& io) noexcept override;       // queue (no syscall); false when full
//     unsigned SubmitQueued() noexcept override;        // one syscall for the whole batch
//     unsigned Reap() noexcept override;                // CompleteAsync() for each finished I/O
//     bool Arm() noexcept override;                     // interrupt mode
//   };
//   class UringBdev final : public FileBdev {
//     using FileBdev::FileBdev;
//     std::unique_ptr<FileChannel> CreateFileChannel() override {
//       return std::make_unique<UringChannel>(*this);
//     }
//   };
//
// Threads: a FileBdev is created and destroyed on the app thread; Submit and every FileChannel
// method run on the channel's thread (the thread that submits the I/O), never concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/functional/any_invocable.h"
#include "pollux/bdev/bdev.h"
#include "pollux/bdev/bdev_io.h"
#include "pollux/bdev/bdev_module.h"
#include "pollux/bdev_file/adaptive_submit.h"
#include "pollux/bdev_file/file_target.h"
#include "pollux/reactor/io_channel.h"
#include "pollux/reactor/poller.h"

namespace pollux {

class FileBdev;

// What creates a file bdev: the shared parameters of bdev_<engine>_create and bdev_file_create.
struct FileBdevOptions {
  std::string name;         // required, unique among bdev names and aliases
  std::string filename;     // required
  uint32_t block_size = 0;  // 0: the device's logical block size, or 512 for a regular file
  bool readonly = false;
  std::optional<bool> direct;  // see FileTargetOptions::direct
  std::string uuid;            // empty: the layer generates one

  FileTargetOptions target_options() const { return {filename, block_size, readonly, direct}; }
};

// One thread's state of a file bdev: the engine's kernel context and the poller that drives
// it. Created by FileBdev::CreateFileChannel on the thread that does I/O, destroyed there once
// the layer releases it (after that thread's I/O on the bdev has completed).
//
// Batching has one exception, for engines whose requests go straight to the device (uring,
// aio): while the kernel holds fewer than kStarvingDepth of a channel's requests, Enqueue
// hands the new one over at once. A batch pays one system call for many requests, which is
// what a busy device wants; but a device with little to do starts each request as it arrives,
// and a request held back for the end of the iteration waits behind the completions handled
// before it (the virtual disk here completed a batch of 8 together, and the 8 requests sent
// back as one batch left it idle for every turnaround). 4 KiB random writes at depth 8 through
// io_uring: 75 K -> 81 K IOPS (fio, which submits every request alone: 81 K), p50 101 -> 90
// us, CPU per I/O 6.4 -> 8.9 us (fio 9.4); depth 32 is unchanged (a refill finds the kernel
// busy and is batched). docs/performance.md, issue 4.
inline constexpr uint32_t kStarvingDepth = 8;
inline constexpr uint64_t kStarvingBytes = 64 << 10;

// Whether the kernel, holding `held` of a channel's requests, starves for one of `bytes`: fewer
// than kStarvingDepth requests and, counting each as large as this one, less than
// kStarvingBytes. Large requests keep a device busy long enough to be batched: at 128 KiB only
// the first request of a refill goes at once (every request at once gained 15 % IOPS at depth
// 8 but cost 1.5x fio's CPU per I/O, a virtio notification, a VM exit, for each).
constexpr bool KernelStarves(uint32_t held, uint64_t bytes) {
  return held < kStarvingDepth && held * bytes < kStarvingBytes;
}

class FileChannel : public ChannelContext {
 public:
  explicit FileChannel(FileBdev& bdev);
  // Unregisters the poller. A subclass tears its kernel context down in its own destructor.
  ~FileChannel() override;
  FileChannel(const FileChannel&) = delete;
  FileChannel& operator=(const FileChannel&) = delete;

  FileBdev& bdev() const { return *bdev_; }
  const FileTarget& target() const { return *target_; }
  const AdaptiveSubmit& adaptive() const { return adaptive_; }

  // FileBdev::Submit's body: runs `io` inline (file_io.h) when the adaptive policy says so,
  // otherwise hands it to Enqueue (kNoMemory to the layer when the engine is full).
  void Submit(BdevIo& io) noexcept;

 protected:
  // ---- What an engine implements (all on the channel's thread) ----

  // Takes `io` for asynchronous execution without a syscall (the poller's SubmitQueued hands
  // it to the kernel at the end of the iteration; a kernel engine submits it at once while the
  // kernel starves, see kStarvingDepth). Returns false when the engine has no room
  // (ring full): the base then completes it with kNoMemory, and the layer retries it once
  // another I/O of this channel completes. Once it returns true, the engine must call
  // CompleteAsync(io, ...) exactly once, later (never from inside Enqueue).
  virtual bool Enqueue(BdevIo& io) noexcept = 0;

  // Hands everything Enqueue took since the last call to the kernel (or the workers) in one
  // call. Called by the poller once per poll iteration, and by Arm before sleeping. Returns
  // how many requests it handed over (0: nothing was queued, and no syscall was made).
  virtual unsigned SubmitQueued() noexcept = 0;

  // Completes (CompleteAsync) the requests that finished, reading the engine's completion
  // ring in user space; makes no syscall when nothing finished. Returns how many it completed.
  virtual unsigned Reap() noexcept = 0;

  // Interrupt mode, before the reactor sleeps: flush what is queued (SubmitQueued) and enable
  // the wake-up (the eventfd given to StartPoller). Return false when completions are already
  // waiting to be reaped: the reactor stays awake. The reactor polls once more after arming,
  // so a completion that raced the arming is not lost. Default: SubmitQueued(), then true.
  virtual bool Arm() noexcept;
  // After the reactor woke (or gave up sleeping). Default: nothing.
  virtual void Disarm() noexcept {}

  // ---- What an engine calls ----

  // Registers this channel's poller on the current thread. Call once, at the end of the
  // subclass constructor, when the kernel context exists. `wake_fd` is the eventfd the engine's
  // completions signal (-1: none; the reactor then cannot sleep with this channel). The engine
  // keeps owning the fd and may close it once StopPoller returned (the reactor unwatches a
  // poller's wake fd when it is unregistered).
  // `awaited`: what a request in flight waits on, for an idle reactor (AwaitedWork): the kernel
  // (kDevice, the default) or the engine's own threads on the reactors' cores (kHelperThreads).
  void StartPoller(int wake_fd, AwaitedWork awaited = AwaitedWork::kDevice);
  // Unregisters the poller now (the base destructor does it otherwise). Call first in a
  // subclass destructor that tears down what the poller's hooks use.
  void StopPoller() { poller_.reset(); }

  // Completes an asynchronous request: error_number 0 is success, otherwise kFailed carrying
  // that errno (positive: EIO, ENOSPC, ...). Call exactly once per request Enqueue accepted.
  void CompleteAsync(BdevIo& io, int error_number) noexcept {
    if (adaptive_.AsyncFinished()) [[unlikely]]
      EndLoneAsync();
    io.Complete(error_number == 0 ? BdevIoStatus::kSuccess : BdevIoStatus::kFailed, error_number);
  }

  // Asynchronous requests of this channel the engine has not completed yet.
  uint32_t in_flight() const { return adaptive_.in_flight(); }

 private:
  PollResult Poll() noexcept;
  // A lone asynchronous request completed: its time goes to the adaptive choice.
  void EndLoneAsync() noexcept;

  AwaitedWork awaited_ = AwaitedWork::kDevice;
  FileBdev* bdev_;
  const FileTarget* target_;
  AdaptiveSubmit adaptive_;
  PollerHandle poller_;
};

// A bdev over a FileTarget. The engine module subclasses it for CreateFileChannel, and may
// override IoTypeSupported to narrow what the base allows.
class FileBdev : public Bdev {
 public:
  // `engine`: the engine's name ("uring"), which names its RPC (bdev_<engine>_create) in
  // save_config and appears in DumpInfo. `product_name`: bdev_get_bdevs' product_name.
  // Call on the app thread, then RegisterBdev.
  FileBdev(BdevModule& module, std::string engine, std::string product_name,
           const FileBdevOptions& options, std::unique_ptr<FileTarget> target);
  ~FileBdev() override;

  const FileTarget& target() const { return *target_; }
  const std::string& engine() const { return engine_; }

  // The thread's FileChannel decides inline or asynchronous (FileChannel::Submit).
  void Submit(BdevIo& io) noexcept override { io.module_channel<FileChannel>().Submit(io); }
  // READ always; WRITE unless readonly; FLUSH (write cache is on); UNMAP / WRITE_ZEROES when
  // the FileTarget's probe found them supported (and not readonly); never RESET.
  bool IoTypeSupported(IoType type) const override;
  std::unique_ptr<ChannelContext> CreateChannel() final { return CreateFileChannel(); }
  // {"filename", "block_size", "readonly", "direct" (in effect), "engine"}.
  void DumpInfo(rpc::Json& driver_specific) const override;
  // {"method": "bdev_<engine>_create", "params": {name, filename, block_size, readonly, uuid,
  // and direct when it was given}}.
  void WriteConfig(rpc::Json& config) const override;
  // Closes the file (all channels are gone by now), then done.
  void Destruct(absl::AnyInvocable<void()> done) override;

  // The engine's channel for the calling thread. Called by the layer on that thread.
  virtual std::unique_ptr<FileChannel> CreateFileChannel() = 0;

  // The properties a FileBdev registers with (exposed for tests and engines that override).
  static BdevProperties MakeProperties(std::string product_name, const FileBdevOptions& options,
                                       const FileTarget& target);

 private:
  std::string engine_;
  std::unique_ptr<FileTarget> target_;
};

}  // namespace pollux
