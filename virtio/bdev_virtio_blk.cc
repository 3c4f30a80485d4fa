// The virtio_blk bdev module: a Bdev over a VirtioBlkController, a channel per thread that
// claims one of its queues, and the controllers' registry (by name, on the app thread).
#include "pollux/virtio/bdev_virtio_blk.h"

#include <linux/virtio_blk.h>
#include "pollux/virtio/vring.h"

#include <algorithm>
#include <cerrno>
#include <map>
#include <memory>
#include <utility>

#include "absl/strings/str_format.h"
#include "pollux/env/log.h"
#include "pollux/reactor/thread.h"
#include "virtio_blk_controller.h"

namespace pollux {
namespace {

// Every attached controller by name. App thread only.
std::map<std::string, std::shared_ptr<VirtioBlkController>, std::less<>>& Controllers() {
  static auto* controllers = new std::map<std::string, std::shared_ptr<VirtioBlkController>,
                                          std::less<>>();
  return *controllers;
}

class VirtioBlkChannel final : public ChannelContext {
 public:
  explicit VirtioBlkChannel(std::shared_ptr<VirtioBlkController> controller)
      : controller_(std::move(controller)) {
    Thread* thread = Thread::Current();
    queue_ = controller_->ClaimQueue(thread);
    if (queue_ == nullptr) {
      // Every queue is held by another thread (or the back-end is gone): this thread's I/O
      // fails. Queues are not shared between threads, so that nothing on the data path is.
      PX_LOG(kError, "virtio", "bdev %s: no free queue for thread \"%s\" (vq_count %u, all "
             "held by other threads): its I/O fails; attach with a larger vq_count",
             controller_->name().c_str(), thread->name().c_str(),
             controller_->options().vq_count);
      return;
    }
    PollerOptions options;
    options.wake_fd = queue_->call_fd();
    options.arm = [this] { return queue_->Arm(); };
    options.disarm = [this] { queue_->Disarm(); };
    poller_ = PollerHandle(thread->RegisterPoller(
        queue_->name(), [this] { return Poll(); }, std::move(options)));
  }

  ~VirtioBlkChannel() override {
    // The layer releases a channel only once its I/O completed: nothing is in flight.
    poller_.reset();
    if (queue_ != nullptr) controller_->ReleaseQueue(queue_);
  }

  VirtioBlkQueue* queue() const { return queue_; }

 private:
  PollResult Poll() noexcept {
    const int completed = queue_->Poll();
    poller_->SetAwaitingDevice(queue_->in_flight() != 0);
    if (queue_->broken() && !reported_broken_) [[unlikely]] {
      reported_broken_ = true;
      controller_->ReportBroken(queue_->broken_reason());
    }
    return completed != 0 ? PollResult::kBusy : PollResult::kIdle;
  }

  std::shared_ptr<VirtioBlkController> controller_;
  VirtioBlkQueue* queue_ = nullptr;
  PollerHandle poller_;
  bool reported_broken_ = false;
};

class VirtioBlkBdev final : public Bdev {
 public:
  VirtioBlkBdev(std::shared_ptr<VirtioBlkController> controller, BdevProperties properties)
      : Bdev(VirtioBlkModule::Get(), std::move(properties)), controller_(std::move(controller)) {}

  void Submit(BdevIo& io) noexcept override {
    VirtioBlkQueue* queue = io.module_channel<VirtioBlkChannel>().queue();
    if (queue == nullptr) [[unlikely]] return io.Complete(BdevIoStatus::kFailed, EBUSY);
    if (!queue->Submit(io)) io.Complete(BdevIoStatus::kNoMemory);
  }

  bool IoTypeSupported(IoType type) const override {
    switch (type) {
      case IoType::kRead:
        return true;
      case IoType::kWrite:
        return !controller_->has_feature(VIRTIO_BLK_F_RO);
      case IoType::kFlush:
        return controller_->has_feature(VIRTIO_BLK_F_FLUSH);
      case IoType::kUnmap:
        return controller_->has_feature(VIRTIO_BLK_F_DISCARD) &&
               !controller_->has_feature(VIRTIO_BLK_F_RO);
      case IoType::kWriteZeroes:
        return controller_->has_feature(VIRTIO_BLK_F_WRITE_ZEROES) &&
               !controller_->has_feature(VIRTIO_BLK_F_RO);
      case IoType::kReset:
        return false;
    }
    return false;
  }

  std::unique_ptr<ChannelContext> CreateChannel() override {
    return std::make_unique<VirtioBlkChannel>(controller_);
  }

  void DumpInfo(rpc::Json& driver_specific) const override {
    rpc::Json info = controller_->Info()["virtio"];
    info["serial"] = controller_->serial();
    info["read_only"] = controller_->has_feature(VIRTIO_BLK_F_RO);
    driver_specific["virtio_blk"] = std::move(info);
  }

  void WriteConfig(rpc::Json& config) const override {
    const VirtioBlkControllerOptions& o = controller_->options();
    config.push_back({{"method", "bdev_virtio_attach_controller"},
                      {"params",
                       {{"name", o.name},
                        {"trtype", "user"},
                        {"traddr", o.socket_path},
                        {"dev_type", "blk"},
                        {"vq_count", o.vq_count},
                        {"vq_size", o.vq_size},
                        {"packed_ring", o.packed_ring}}}});
  }

  void Destruct(absl::AnyInvocable<void()> done) override {
    // Every channel is gone, so no queue is held. The layer calls this on the unregistering
    // thread, the app thread (RPC, a lost back-end, shutdown), which owns the socket.
    controller_->Stop();
    auto& controllers = Controllers();
    auto it = controllers.find(controller_->name());
    if (it != controllers.end() && it->second == controller_) controllers.erase(it);
    done();
  }

 private:
  std::shared_ptr<VirtioBlkController> controller_;
};

}  // namespace

POLLUX_BDEV_MODULE(VirtioBlkModule);

size_t VirtioBlkModule::io_context_size() const { return sizeof(VirtioBlkIo); }

void VirtioBlkModule::Fini() { Controllers().clear(); }

absl::StatusOr<Bdev*> AttachVirtioBlkController(const VirtioBlkControllerOptions& options) {
  if (options.name.empty()) return absl::InvalidArgumentError("the name must not be empty");
  if (Controllers().contains(options.name)) {
    return absl::AlreadyExistsError(
        absl::StrFormat("a virtio controller named \"%s\" exists already", options.name));
  }
  absl::StatusOr<std::shared_ptr<VirtioBlkController>> controller =
      VirtioBlkController::Attach(options);
  if (!controller.ok()) return controller.status();
  VirtioBlkController& c = **controller;
  BdevProperties properties;
  properties.name = options.name;
  properties.product_name = "VirtioBlk Disk";
  properties.block_size = c.block_size();
  properties.block_count = c.block_count();
  properties.requires_shared_memory = true;
  properties.max_segments = c.limits().max_data_segments;
  // Each data buffer is one descriptor: with a segment size limit, no request may be larger
  // than it (then no buffer is); without one, a descriptor's 32-bit length still bounds it.
  properties.max_transfer_blocks = static_cast<uint32_t>(
      std::max<uint64_t>(1, c.max_transfer_bytes() / c.block_size()));
  properties.write_cache =
      c.has_feature(VIRTIO_BLK_F_FLUSH) &&
      (!c.has_feature(VIRTIO_BLK_F_CONFIG_WCE) || c.config().wce != 0);
  absl::StatusOr<Bdev*> bdev =
      RegisterBdev(std::make_unique<VirtioBlkBdev>(*controller, std::move(properties)));
  if (!bdev.ok()) {
    (*controller)->Stop();
    return bdev.status();
  }
  Controllers()[options.name] = *controller;
  if (absl::Status s = (*controller)->Watch(*bdev); !s.ok()) {
    PX_LOG(kWarning, "virtio", "%s: cannot watch the back-end's socket (%s): a lost back-end "
           "is noticed only through failing I/O", options.name.c_str(),
           std::string(s.message()).c_str());
  }
  return bdev;
}

void DetachVirtioBlkController(std::string_view name,
                               absl::AnyInvocable<void(absl::Status)> done) {
  if (!Controllers().contains(name)) {
    return done(absl::NotFoundError(
        absl::StrFormat("no virtio controller named \"%s\"", name)));
  }
  DeleteBdev(name, &VirtioBlkModule::Get(), std::move(done));
}

absl::StatusOr<rpc::Json> VirtioBlkControllersInfo(std::string_view name) {
  rpc::Json list = rpc::Json::array();
  for (const auto& [controller_name, controller] : Controllers()) {
    if (!name.empty() && controller_name != name) continue;
    list.push_back(controller->Info());
  }
  if (!name.empty() && list.empty()) {
    return absl::NotFoundError(absl::StrFormat("no virtio controller named \"%s\"", name));
  }
  return list;
}

}  // namespace pollux
