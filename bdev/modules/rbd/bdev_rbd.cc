// The rbd bdev: an RBD image through librbd's asynchronous calls. Submit hands each I/O to
// librbd from the submitting thread; librbd completes it on one of its own threads, which puts
// it in the submitting channel's completion ring (pollux/reactor/completion_ring.h); the channel's
// poller completes it there. Creation, deletion and resizing block on the cluster: their cluster
// work runs off the reactor (rbd_connection.h), and an image resized by anyone reaches the bdev
// through librbd's update watch.
#include "pollux/bdev_rbd/bdev_rbd.h"

#include <limits.h>
#include <rbd/librbd.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <set>
#include <utility>

#include "absl/strings/str_format.h"
#include "pollux/bdev/bdev_io_list.h"
#include "pollux/env/log.h"
#include "pollux/reactor/completion_ring.h"
#include "pollux/reactor/poller.h"
#include "pollux/reactor/thread.h"
#include "rbd_clusters.h"
#include "rbd_connection.h"

namespace pollux {
namespace {

// I/O one channel keeps at librbd at once: its completion ring's size. More waits in the bdev
// layer (kNoMemory), which submits it again as completions come back.
constexpr uint32_t kChannelDepth = 1024;
// Completions a poll takes per ring operation.
constexpr unsigned kDrainBurst = 64;

class RbdChannel;

// Per-I/O scratch space (RbdModule::io_context_size).
struct RbdIo {
  RbdChannel* channel;  // where librbd's thread puts the completion
  int64_t result;       // librbd's return value, written on its thread before the push
  BdevIo* next;         // the channel's list of resets waiting for the I/O before them
};

// One thread's channel of an rbd bdev: its completion ring and the poller that drains it. The
// poller runs only while I/O is at librbd (paused otherwise), and in interrupt mode its
// reactor sleeps until a completion writes the ring's eventfd: an idle rbd bdev costs its
// reactor nothing.
class RbdChannel final : public ChannelContext {
 public:
  explicit RbdChannel(const std::string& bdev_name);
  ~RbdChannel() override;

  CompletionRing& completions() { return completions_; }

  // Counts one more I/O at librbd; false at the channel's depth (the I/O is then retried).
  bool Reserve() noexcept {
    if (in_flight_ == completions_.capacity()) return false;
    if (in_flight_++ == 0) {
      poller_->Resume();
      // librbd's threads share the cores with the reactors: an idle reactor sleeps at once
      // rather than spin against them.
      poller_->SetAwaiting(AwaitedWork::kHelperThreads);
    }
    return true;
  }
  // librbd refused the I/O Reserve counted.
  void Unreserve() noexcept { --in_flight_; }

  // A RESET: librbd cannot cancel, so it completes once the I/O already at librbd is back.
  void Reset(BdevIo& io) noexcept {
    if (in_flight_ == 0) return io.Complete(BdevIoStatus::kSuccess);
    resets_.Push(io);
  }

 private:
  PollResult Poll() noexcept;
  static void Finish(BdevIo& io) noexcept;

  CompletionRing completions_;  // BdevIo*, pushed by librbd's threads
  uint32_t in_flight_ = 0;
  BdevIoList<RbdIo> resets_;
  PollerHandle poller_;  // last: unregistered before the ring goes
};

// Runs on a librbd thread. Touches `io` only before the push: the channel may complete and
// reuse it right after.
void OnRbdComplete(rbd_completion_t completion, void* arg) {
  BdevIo& io = *static_cast<BdevIo*>(arg);
  RbdIo& context = io.module_context<RbdIo>();
  context.result = rbd_aio_get_return_value(completion);
  // Released here, as QEMU's rbd driver does: librbd holds its own reference until the
  // callback returns.
  rbd_aio_release(completion);
  context.channel->completions().Push(&io);
}

RbdChannel::RbdChannel(const std::string& bdev_name)
    : completions_(kChannelDepth, "pollux_rbd_cq") {
  PollerOptions options;
  options.wake_fd = completions_.wake_fd();
  options.arm = [this] {
    completions_.Arm();
    return true;
  };
  options.disarm = [this] { completions_.Disarm(); };
  poller_ = PollerHandle(Thread::Current()->RegisterPoller(
      absl::StrFormat("rbd %s", bdev_name), [this] { return Poll(); }, std::move(options)));
  poller_->Pause();  // Reserve resumes it
}

RbdChannel::~RbdChannel() {
  // The layer releases a channel only once none of its I/O is outstanding.
  if (in_flight_ != 0 || !resets_.empty()) {
    PX_LOG(kError, "bdev_rbd", "channel destroyed with %u I/O at librbd", in_flight_);
  }
}

PollResult RbdChannel::Poll() noexcept {
  void* completed[kDrainBurst];
  const unsigned n = completions_.Drain(completed, kDrainBurst);
  // Counted before the callbacks run: a callback that submits again reserves anew.
  in_flight_ -= n;
  for (unsigned i = 0; i < n; ++i) Finish(*static_cast<BdevIo*>(completed[i]));
  if (in_flight_ == 0) {
    while (BdevIo* reset = resets_.Pop()) reset->Complete(BdevIoStatus::kSuccess);
  }
  if (in_flight_ == 0) {
    poller_->Pause();
    poller_->SetAwaiting(AwaitedWork::kNothing);
  }
  return n != 0 ? PollResult::kBusy : PollResult::kIdle;
}

void RbdChannel::Finish(BdevIo& io) noexcept {
  const int64_t result = io.module_context<RbdIo>().result;
  if (result < 0) [[unlikely]] {
    // ETIMEDOUT once rados_osd_op_timeout has passed without the cluster.
    return io.Complete(BdevIoStatus::kFailed, static_cast<int>(-result));
  }
  // A read answers the bytes it read; anything short of the request is a failure.
  if (io.type() == IoType::kRead &&
      static_cast<uint64_t>(result) != io.num_blocks() * io.bdev().block_size()) [[unlikely]] {
    return io.Complete(BdevIoStatus::kFailed, EIO);
  }
  io.Complete(BdevIoStatus::kSuccess);
}

// ---- The bdev ----

// Module-wide state of the bdev side. App thread only.
struct RbdState {
  std::set<std::string, std::less<>> creating;  // names of bdevs being created
  uint64_t next_token = 1;                      // tells a bdev from a later one of its name
  bool stopping = false;
};

RbdState& State() {
  static RbdState* state = new RbdState;  // never destroyed, as the module object
  return *state;
}

class RbdBdev final : public Bdev {
 public:
  RbdBdev(BdevProperties properties, RbdBdevOptions options, std::shared_ptr<rbd::Image> image,
          uint64_t token, uint64_t app_thread)
      : Bdev(RbdModule::Get(), std::move(properties)),
        options_(std::move(options)),
        image_(std::move(image)),
        handle_(image_->handle()),
        token_(token),
        app_thread_(app_thread) {}

  // Registration failed (Destruct never ran): the image still has to be closed, off the
  // reactor, and the cluster released (we are on the app thread then).
  ~RbdBdev() override {
    rbd::ReleaseOffReactor(std::move(image_));
    ReleaseCluster();
  }

  void Submit(BdevIo& io) noexcept override {
    RbdChannel& channel = io.module_channel<RbdChannel>();
    if (io.type() == IoType::kReset) return channel.Reset(io);
    if (!channel.Reserve()) return io.Complete(BdevIoStatus::kNoMemory);
    io.module_context<RbdIo>().channel = &channel;
    rbd_completion_t completion;
    int rc = rbd_aio_create_completion(&io, &OnRbdComplete, &completion);
    if (rc == 0) {
      rc = Start(io, completion);
      if (rc < 0) rbd_aio_release(completion);
    }
    if (rc < 0) [[unlikely]] {
      channel.Unreserve();
      io.Complete(BdevIoStatus::kFailed, -rc);
    }
  }

  // Every type: UNMAP is rbd_aio_discard, WRITE_ZEROES rbd_aio_write_zeroes (which zeroes what
  // a discard would only skip: rbd_skip_partial_discard leaves data in partly discarded
  // objects), FLUSH rbd_aio_flush, RESET waits for what is at librbd.
  bool IoTypeSupported(IoType) const override { return true; }

  std::unique_ptr<ChannelContext> CreateChannel() override {
    return std::make_unique<RbdChannel>(name());
  }

  void DumpInfo(rpc::Json& driver_specific) const override {
    rpc::Json info = {{"pool_name", options_.pool_name}, {"rbd_name", options_.rbd_name}};
    AddConnection(info);
    driver_specific["rbd"] = std::move(info);
  }

  void WriteConfig(rpc::Json& config) const override {
    rpc::Json params = {{"name", name()},
                        {"pool_name", options_.pool_name},
                        {"rbd_name", options_.rbd_name},
                        {"block_size", block_size()},
                        {"uuid", uuid()}};
    AddConnection(params);
    config.push_back({{"method", "bdev_rbd_create"}, {"params", std::move(params)}});
  }

  // Every descriptor and channel is gone: close the image off the reactor (rbd_close flushes
  // and releases the exclusive lock), then let the removal finish, so that a deleted bdev's
  // image is free for others when bdev_rbd_delete answers.
  void Destruct(absl::AnyInvocable<void()> done) override {
    rbd::RunOffReactor<bool>(
        [image = std::move(image_)]() mutable {
          image.reset();
          return true;
        },
        [this, done = std::move(done)](bool) mutable {
          ReleaseCluster();
          done();
        });
  }

  uint64_t token() const { return token_; }
  const std::shared_ptr<rbd::Image>& image() const { return image_; }

 private:
  int Start(BdevIo& io, rbd_completion_t completion) noexcept {
    const uint64_t offset = io.offset_blocks() * block_size();
    const uint64_t length = io.num_blocks() * block_size();
    switch (io.type()) {
      case IoType::kRead:
        return rbd_aio_readv(handle_, io.iovs(), io.iovcnt(), offset, completion);
      case IoType::kWrite:
        return rbd_aio_writev(handle_, io.iovs(), io.iovcnt(), offset, completion);
      case IoType::kFlush:
        return rbd_aio_flush(handle_, completion);
      case IoType::kUnmap:
        return rbd_aio_discard(handle_, offset, length, completion);
      case IoType::kWriteZeroes:
        return rbd_aio_write_zeroes(handle_, offset, length, completion, 0, 0);
      case IoType::kReset:
        break;
    }
    return -EINVAL;
  }

  // The connection half of the bdev's parameters: its cluster, or its own user and config.
  void AddConnection(rpc::Json& params) const {
    if (!options_.cluster_name.empty()) {
      params["cluster_name"] = options_.cluster_name;
      return;
    }
    if (!options_.user_id.empty()) params["user_id"] = options_.user_id;
    if (!options_.config.empty()) params["config"] = options_.config;
  }

  // Once, on the app thread (where the cluster table lives).
  void ReleaseCluster() {
    if (options_.cluster_name.empty() || cluster_released_) return;
    cluster_released_ = true;
    auto release = [cluster = options_.cluster_name, bdev = name()] {
      rbd::ReleaseClusterUser(cluster, bdev);
    };
    Thread* here = Thread::Current();
    if (here != nullptr && here->id() == app_thread_) return release();
    RunOnThread(app_thread_, std::move(release));
  }

  const RbdBdevOptions options_;
  std::shared_ptr<rbd::Image> image_;  // shared with resize calls under way
  const rbd_image_t handle_;           // image_->handle(), where the data path finds it
  const uint64_t token_;
  const uint64_t app_thread_;
  bool cluster_released_ = false;
};

// The rbd bdev `name`, or nullptr when there is none (or it belongs to another module).
RbdBdev* FindRbdBdev(std::string_view name) {
  Bdev* bdev = FindBdev(name);
  if (bdev == nullptr || &bdev->module() != &RbdModule::Get()) return nullptr;
  return static_cast<RbdBdev*>(bdev);
}

// The image of bdev `name` (the one with `token`: not a later bdev of the same name) is
// `bytes` long now: its block count follows. App thread.
absl::Status ApplyImageSize(const std::string& name, uint64_t token, uint64_t bytes) {
  RbdBdev* bdev = FindRbdBdev(name);
  if (bdev == nullptr || bdev->token() != token) {
    return absl::NotFoundError(absl::StrFormat("bdev %s was deleted meanwhile", name));
  }
  const uint64_t blocks = bytes / bdev->block_size();
  if (blocks == bdev->block_count()) return absl::OkStatus();
  absl::Status status = NotifyBdevBlockCountChange(*bdev, blocks);
  if (!status.ok()) {
    PX_LOG(kWarning, "bdev_rbd", "%s: the image is %u bytes now, the bdev stays at %u blocks: %s",
           name, bytes, bdev->block_count(), status.message());
  }
  return status;
}

// What a create's OS thread hands back: the open image (closed off the reactor if nobody takes
// it) and its size.
struct OpenedImage {
  OpenedImage(std::shared_ptr<rbd::Image> image, uint64_t size)
      : image(std::move(image)), size(size) {}
  OpenedImage(OpenedImage&&) = default;
  ~OpenedImage() { rbd::ReleaseOffReactor(std::move(image)); }

  std::shared_ptr<rbd::Image> image;
  uint64_t size;
};

// Follows the image's size: on a header change (an `rbd resize` anywhere, our own
// bdev_rbd_resize), reads the size on an OS thread and applies it on the app thread. Holds no
// reference: a callback after the bdev went finds nothing to do.
absl::Status WatchSize(const std::shared_ptr<rbd::Image>& image, std::string name, uint64_t token,
                       uint64_t app_thread) {
  return image->Watch(
      [weak = std::weak_ptr<rbd::Image>(image), name = std::move(name), token, app_thread] {
        rbd::internal::StartOffReactor([weak, name, token, app_thread] {
          std::shared_ptr<rbd::Image> image = weak.lock();
          if (image == nullptr) return;
          absl::StatusOr<uint64_t> size = image->Size();
          image.reset();  // here, off the reactor, should it be the last reference
          if (!size.ok()) {
            PX_LOG(kWarning, "bdev_rbd", "%s: reading the image's size: %s", name,
                   size.status().message());
            return;
          }
          RunOnThread(app_thread, [name, token, bytes = *size] {
            ApplyImageSize(name, token, bytes).IgnoreError();
          });
        });
      });
}

// On the create's OS thread: the connection (the cluster's, or a new one of the bdev's own),
// the image, its size and its watch.
absl::StatusOr<OpenedImage> OpenImage(const RbdBdevOptions& options,
                                      std::shared_ptr<rbd::Connection> connection, std::string name,
                                      uint64_t token, uint64_t app_thread) {
  if (connection == nullptr) {
    absl::StatusOr<std::shared_ptr<rbd::Connection>> own =
        rbd::Connection::Connect(rbd::ConnectionSettings{options.user_id, options.config, "", ""});
    if (!own.ok()) return own.status();
    connection = std::move(*own);
  }
  absl::StatusOr<std::unique_ptr<rbd::Image>> opened =
      rbd::Image::Open(std::move(connection), options.pool_name, options.rbd_name);
  if (!opened.ok()) return opened.status();
  std::shared_ptr<rbd::Image> image = std::move(*opened);
  absl::StatusOr<uint64_t> size = image->Size();
  if (!size.ok()) return size.status();
  if (absl::Status s = WatchSize(image, std::move(name), token, app_thread); !s.ok()) return s;
  return OpenedImage(std::move(image), *size);
}

bool ValidBlockSize(uint64_t block_size) {
  return block_size >= 512 && block_size <= 65536 && (block_size & (block_size - 1)) == 0;
}

// "Ceph0", "Ceph1", ... (SPDK's names): the first that no bdev has and no create is making.
std::string FirstFreeName() {
  for (uint64_t i = 0;; ++i) {
    std::string name = absl::StrFormat("Ceph%u", i);
    if (FindBdev(name) == nullptr && State().creating.count(name) == 0) return name;
  }
}

absl::Status CheckOptions(const RbdBdevOptions& options) {
  if (!ValidBlockSize(options.block_size)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "block_size %u is not a power of two from 512 to 65536", options.block_size));
  }
  if (options.pool_name.empty()) return absl::InvalidArgumentError("pool_name is empty");
  if (options.rbd_name.empty()) return absl::InvalidArgumentError("rbd_name is empty");
  if (!options.uuid.empty() && !IsValidUuid(options.uuid)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("uuid \"%s\" is not a UUID (8-4-4-4-12 hexadecimal digits)", options.uuid));
  }
  if (!options.cluster_name.empty() && (!options.user_id.empty() || !options.config.empty())) {
    return absl::InvalidArgumentError(
        "cluster_name excludes user_id and config: the registered cluster's settings apply");
  }
  return absl::OkStatus();
}

// Back on the app thread with the open image: the bdev over it.
absl::StatusOr<std::string> FinishCreate(RbdBdevOptions options, OpenedImage opened,
                                         uint64_t token) {
  const uint64_t blocks = opened.size / options.block_size;
  if (blocks == 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("image \"%s/%s\" is %u bytes, less than one block of %u", options.pool_name,
                        options.rbd_name, opened.size, options.block_size));
  }
  BdevProperties properties;
  properties.name = options.name;
  properties.uuid = options.uuid;
  properties.product_name = "Ceph Rbd Disk";  // SPDK's
  properties.block_size = options.block_size;
  properties.block_count = blocks;
  // librbd may cache writes (rbd_cache, on by default): FLUSH means something.
  properties.write_cache = true;
  properties.max_segments = IOV_MAX;  // librbd refuses more iovecs
  const uint64_t app_thread = Thread::Current()->id();
  absl::StatusOr<Bdev*> bdev = RegisterBdev(std::make_unique<RbdBdev>(
      std::move(properties), std::move(options), std::move(opened.image), token, app_thread));
  if (!bdev.ok()) return bdev.status();
  return (*bdev)->name();
}

}  // namespace

// ---- The module ----

POLLUX_BDEV_MODULE(RbdModule);

RbdModule::RbdModule() : BdevModule("rbd") {
  // Runs while the library loads, before any reactor pins a thread: the affinity the
  // off-reactor threads (and so librados' threads) take.
  rbd::RecordStartupAffinity();
}

absl::Status RbdModule::Init() {
  State().stopping = false;
  rbd::AllowClusters();
  return absl::OkStatus();
}

void RbdModule::FiniStart(Done done) {
  State().stopping = true;
  done();
}

void RbdModule::FiniAsync(Done done) {
  State().stopping = true;
  rbd::ForgetAllClusters();
  if (rbd::OffReactorCallsInFlight() == 0) return done();
  PX_LOG(kNotice, "bdev_rbd",
         "waiting for %u Ceph calls (connections, closes) to end, each within its librados timeout",
         rbd::OffReactorCallsInFlight());
  // A timed poller, so that the reactor sleeps between looks. It unregisters itself.
  auto self = std::make_shared<Poller*>(nullptr);
  PollerOptions options;
  options.period = std::chrono::milliseconds(10);
  *self = Thread::Current()->RegisterPoller(
      "rbd shutdown",
      [self, done = std::move(done)]() mutable {
        if (rbd::OffReactorCallsInFlight() != 0) return PollResult::kIdle;
        (*self)->Unregister();  // freed once this call returns
        done();
        return PollResult::kBusy;
      },
      std::move(options));
}

void RbdModule::WriteConfig(rpc::Json& config) const {
  // Clusters first: the bdevs that name them replay after them.
  rbd::WriteClustersConfig(config);
  BdevModule::WriteConfig(config);
}

size_t RbdModule::io_context_size() const { return sizeof(RbdIo); }

void CreateRbdBdev(const RbdBdevOptions& given,
                   absl::AnyInvocable<void(absl::StatusOr<std::string>)> done) {
  if (absl::Status s = CheckOptions(given); !s.ok()) return done(s);
  RbdState& state = State();
  if (state.stopping) return done(absl::UnavailableError("the rbd module is stopping"));
  RbdBdevOptions options = given;
  if (options.name.empty()) options.name = FirstFreeName();
  // The layer's own check comes at registration; this one spares a connection for nothing.
  if (FindBdev(options.name) != nullptr || state.creating.count(options.name) != 0) {
    return done(
        absl::AlreadyExistsError(absl::StrFormat("bdev name %s already exists", options.name)));
  }
  std::shared_ptr<rbd::Connection> connection;
  if (!options.cluster_name.empty()) {
    auto cluster = rbd::AcquireClusterUser(options.cluster_name, options.name);
    if (!cluster.ok()) return done(cluster.status());
    connection = std::move(*cluster);
  }
  state.creating.insert(options.name);
  const uint64_t token = state.next_token++;
  const uint64_t app_thread = Thread::Current()->id();
  rbd::RunOffReactor<absl::StatusOr<OpenedImage>>(
      [options, connection = std::move(connection), token, app_thread]() mutable {
        return OpenImage(options, std::move(connection), options.name, token, app_thread);
      },
      [options, token, done = std::move(done)](absl::StatusOr<OpenedImage> opened) mutable {
        RbdState& state = State();
        state.creating.erase(options.name);
        absl::StatusOr<std::string> name =
            absl::UnavailableError("the rbd module stopped meanwhile");
        if (!state.stopping && !opened.ok()) {
          name = opened.status();
        } else if (!state.stopping) {
          name = FinishCreate(options, std::move(*opened), token);
        }
        // A failed create leaves nothing: the image (in `opened` or in the bdev the layer
        // refused) closes off the reactor, and the cluster forgets the name.
        if (!name.ok() && !options.cluster_name.empty()) {
          rbd::ReleaseClusterUser(options.cluster_name, options.name);
        }
        done(std::move(name));
      });
}

void DeleteRbdBdev(std::string_view name, absl::AnyInvocable<void(absl::Status)> done) {
  DeleteBdev(name, &RbdModule::Get(), std::move(done));
}

void ResizeRbdBdev(std::string_view name, uint64_t new_size_mib,
                   absl::AnyInvocable<void(absl::Status)> done) {
  RbdBdev* bdev = FindRbdBdev(name);
  if (bdev == nullptr) {
    return done(absl::NotFoundError(absl::StrFormat("no rbd bdev named %s", name)));
  }
  if (new_size_mib == 0 || new_size_mib > (UINT64_MAX >> 20) / 2) {
    return done(absl::InvalidArgumentError(
        absl::StrFormat("new_size %u MiB is not a size an image can have", new_size_mib)));
  }
  const uint64_t bytes = new_size_mib << 20;
  if (bytes < bdev->size_bytes()) {
    return done(absl::InvalidArgumentError(absl::StrFormat(
        "bdev %s: new_size %u MiB is smaller than its %u MiB now (rbd bdevs only grow)", name,
        new_size_mib, bdev->size_bytes() >> 20)));
  }
  rbd::RunOffReactor<absl::StatusOr<uint64_t>>(
      [image = bdev->image(), bytes]() mutable -> absl::StatusOr<uint64_t> {
        absl::Status resized = image->Resize(bytes);
        absl::StatusOr<uint64_t> size =
            resized.ok() ? image->Size() : absl::StatusOr<uint64_t>(resized);
        image.reset();  // here, off the reactor, should it be the last reference
        return size;
      },
      [name = std::string(name), token = bdev->token(),
       done = std::move(done)](absl::StatusOr<uint64_t> size) mutable {
        done(size.ok() ? ApplyImageSize(name, token, *size) : size.status());
      });
}

}  // namespace pollux
