#include "virtio_blk_controller.h"

#include <linux/virtio_config.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstring>

#include "absl/strings/str_format.h"
#include "pollux/bdev/bdev.h"
#include "pollux/env/log.h"
#include "pollux/env/shared_io_memory.h"
#include "pollux/reactor/thread.h"
#include "pollux/virtio/vring.h"

namespace pollux {

using vhost_user::Request;

namespace {

// The configuration space read at attach: every field up to write_zeroes_may_unmap and its
// padding (60 bytes, what QEMU 7.2 knows). Asking for the kernel header's whole struct, which
// has grown since, makes older back-ends refuse GET_CONFIG.
constexpr uint32_t kConfigBytes = offsetof(virtio_blk_config, unused1) + 3;
// Data segments a request may carry when the back-end states no limit, and the most any
// request carries (its indirect table is sized for it).
constexpr uint32_t kDefaultSegments = 126;
constexpr uint32_t kMaxSegments = 256;
// Largest request when the back-end states no segment size limit (the descriptor length is
// 32 bits).
constexpr uint64_t kMaxTransferBytes = 1ull << 30;

constexpr uint64_t Bit(int bit) { return uint64_t{1} << bit; }

// What this front-end can use; the back-end's offer is intersected with it.
constexpr uint64_t kWantedFeatures =
    Bit(VIRTIO_F_VERSION_1) | Bit(VIRTIO_RING_F_INDIRECT_DESC) | Bit(VIRTIO_RING_F_EVENT_IDX) |
    Bit(VIRTIO_BLK_F_SIZE_MAX) | Bit(VIRTIO_BLK_F_SEG_MAX) | Bit(VIRTIO_BLK_F_RO) |
    Bit(VIRTIO_BLK_F_BLK_SIZE) | Bit(VIRTIO_BLK_F_TOPOLOGY) | Bit(VIRTIO_BLK_F_MQ) |
    Bit(VIRTIO_BLK_F_FLUSH) | Bit(VIRTIO_BLK_F_CONFIG_WCE) | Bit(VIRTIO_BLK_F_DISCARD) |
    Bit(VIRTIO_BLK_F_WRITE_ZEROES) | Bit(vhost_user::kFProtocolFeatures);
constexpr uint64_t kWantedProtocolFeatures = Bit(vhost_user::kProtocolMq) |
                                             Bit(vhost_user::kProtocolReplyAck) |
                                             Bit(vhost_user::kProtocolConfig);

bool IsPowerOfTwo(uint64_t n) { return n != 0 && (n & (n - 1)) == 0; }

}  // namespace

VirtioBlkController::VirtioBlkController(const VirtioBlkControllerOptions& options)
    : options_(options) {}

VirtioBlkController::~VirtioBlkController() = default;

absl::StatusOr<std::shared_ptr<VirtioBlkController>> VirtioBlkController::Attach(
    const VirtioBlkControllerOptions& options) {
  if (options.vq_count == 0 || options.vq_count > 64) {
    return absl::InvalidArgumentError(
        absl::StrFormat("vq_count %u must be 1 to 64", options.vq_count));
  }
  if (options.vq_size < 2 || options.vq_size > 32768 ||
      (!options.packed_ring && !IsPowerOfTwo(options.vq_size))) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "vq_size %u must be %s from 2 to 32768", options.vq_size,
        options.packed_ring ? "a number" : "a power of two"));
  }
  if (options.reply_timeout_ms == 0) {
    return absl::InvalidArgumentError("reply_timeout_ms must be at least 1");
  }
  std::shared_ptr<VirtioBlkController> controller(new VirtioBlkController(options));
  controller->control_thread_ = Thread::Current();
  absl::StatusOr<VhostUserFrontend> frontend = VhostUserFrontend::Connect(
      options.socket_path, std::chrono::milliseconds(options.reply_timeout_ms));
  if (!frontend.ok()) return frontend.status();
  controller->frontend_ = std::move(*frontend);
  for (auto step : {&VirtioBlkController::Negotiate, &VirtioBlkController::ReadConfig,
                    &VirtioBlkController::ShareMemory, &VirtioBlkController::StartQueues}) {
    if (absl::Status s = (controller.get()->*step)(); !s.ok()) {
      return absl::Status(s.code(), absl::StrFormat("vhost-user back-end at \"%s\": %s",
                                                    options.socket_path, s.message()));
    }
  }
  // The serial, where the back-end has one (figures and bdev_get_bdevs only).
  absl::StatusOr<std::string> serial =
      controller->queues_[0]->GetId(uint64_t{options.reply_timeout_ms} * 1000);
  if (serial.ok()) {
    controller->serial_ = *serial;
  } else if (serial.status().code() == absl::StatusCode::kDataLoss ||
             serial.status().code() == absl::StatusCode::kDeadlineExceeded) {
    return absl::Status(serial.status().code(),
                        absl::StrFormat("vhost-user back-end at \"%s\": GET_ID: %s",
                                        options.socket_path, serial.status().message()));
  }
  return controller;
}

absl::Status VirtioBlkController::Negotiate() {
  absl::StatusOr<uint64_t> offered = frontend_.GetU64(Request::kGetFeatures);
  if (!offered.ok()) return offered.status();
  offered_features_ = *offered;
  if (!(offered_features_ & Bit(VIRTIO_F_VERSION_1))) {
    return absl::FailedPreconditionError(
        "it does not offer VIRTIO_F_VERSION_1 (legacy devices are not supported)");
  }
  if (offered_features_ & Bit(vhost_user::kFProtocolFeatures)) {
    absl::StatusOr<uint64_t> protocol = frontend_.GetU64(Request::kGetProtocolFeatures);
    if (!protocol.ok()) return protocol.status();
    protocol_features_ = *protocol & kWantedProtocolFeatures;
    if (absl::Status s = frontend_.SetU64(Request::kSetProtocolFeatures, protocol_features_);
        !s.ok()) {
      return s;
    }
    frontend_.set_reply_ack((protocol_features_ & Bit(vhost_user::kProtocolReplyAck)) != 0);
  }
  if (protocol_features_ & Bit(vhost_user::kProtocolMq)) {
    absl::StatusOr<uint64_t> queues = frontend_.GetU64(Request::kGetQueueNum);
    if (!queues.ok()) return queues.status();
    if (*queues == 0) return absl::FailedPreconditionError("it reports 0 queues");
    backend_queues_ = static_cast<uint32_t>(std::min<uint64_t>(*queues, 1024));
  }
  if (absl::Status s = frontend_.SetOwner(); !s.ok()) return s;
  uint64_t wanted = kWantedFeatures;
  if (options_.packed_ring) {
    if (!(offered_features_ & Bit(VIRTIO_F_RING_PACKED))) {
      return absl::FailedPreconditionError(
          "packed_ring was asked for, but the back-end does not offer VIRTIO_F_RING_PACKED");
    }
    wanted |= Bit(VIRTIO_F_RING_PACKED);
  }
  features_ = offered_features_ & wanted;
  return absl::OkStatus();
}

absl::Status VirtioBlkController::ReadConfig() {
  if (!(protocol_features_ & Bit(vhost_user::kProtocolConfig))) {
    return absl::FailedPreconditionError(
        "it does not offer its configuration space (protocol feature CONFIG), so the disk's "
        "capacity cannot be known");
  }
  absl::StatusOr<std::vector<uint8_t>> bytes = frontend_.GetConfig(kConfigBytes);
  if (!bytes.ok()) return bytes.status();
  std::memcpy(&config_, bytes->data(), kConfigBytes);

  block_size_ = has_feature(VIRTIO_BLK_F_BLK_SIZE) ? config_.blk_size : 512;
  if (block_size_ < 512 || block_size_ > 65536 || !IsPowerOfTwo(block_size_)) {
    return absl::DataLossError(absl::StrFormat(
        "its block size %u is not a power of two from 512 to 65536", block_size_));
  }
  // The kernel's struct is packed: its fields are copied out before anything binds a
  // reference to them (StrFormat, std::clamp), which is undefined for a misaligned field (the
  // 64-bit capacity can lie 4 bytes off its alignment inside this object).
  const uint64_t capacity = config_.capacity;
  const uint32_t seg_max = config_.seg_max;
  const uint32_t size_max = config_.size_max;
  // capacity counts 512-byte sectors whatever the block size.
  if (capacity == 0 || capacity > (UINT64_MAX >> 9)) {
    return absl::DataLossError(
        absl::StrFormat("its capacity of %u sectors is not usable", capacity));
  }
  block_count_ = (capacity << 9) / block_size_;
  if (block_count_ == 0) {
    return absl::DataLossError(
        absl::StrFormat("its capacity of %u sectors is below one %u-byte "
                        "block",
                        capacity, block_size_));
  }
  if (has_feature(VIRTIO_BLK_F_MQ)) {
    if (config_.num_queues == 0) return absl::DataLossError("its config space says 0 queues");
    // GET_QUEUE_NUM, when asked, bounds it too (1 included: the back-end has one queue).
    backend_queues_ = backend_queues_ == 0
                          ? config_.num_queues
                          : std::min<uint32_t>(backend_queues_, config_.num_queues);
  } else {
    backend_queues_ = 1;
  }
  if (options_.vq_count > backend_queues_) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "vq_count %u asked for, the back-end has %u queue%s", options_.vq_count, backend_queues_,
        backend_queues_ == 1 ? "" : "s"));
  }

  limits_.block_size = block_size_;
  limits_.indirect = has_feature(VIRTIO_RING_F_INDIRECT_DESC);
  limits_.event_idx = has_feature(VIRTIO_RING_F_EVENT_IDX);
  limits_.packed = has_feature(VIRTIO_F_RING_PACKED);
  uint32_t segments = kDefaultSegments;
  if (has_feature(VIRTIO_BLK_F_SEG_MAX)) {
    // 0 says nothing useful; a request always carries one segment (Linux reads it so too).
    segments = std::clamp(seg_max, 1u, kMaxSegments);
  }
  // Without indirect tables a request's header, data and status all take ring entries.
  if (!limits_.indirect) segments = std::min(segments, options_.vq_size - 2);
  if (segments == 0) {
    return absl::InvalidArgumentError(
        "vq_size 2 leaves no room for data without indirect descriptors");
  }
  limits_.max_data_segments = segments;
  // A size_max of 0 (qemu-storage-daemon offers the feature with 0) states no limit.
  if (has_feature(VIRTIO_BLK_F_SIZE_MAX) && size_max != 0) {
    if (size_max < block_size_) {
      return absl::DataLossError(absl::StrFormat(
          "its size_max %u is smaller than its block size %u", size_max, block_size_));
    }
    max_transfer_bytes_ = std::min<uint64_t>(size_max, kMaxTransferBytes);
  }
  if (has_feature(VIRTIO_BLK_F_DISCARD)) limits_.max_discard_sectors = config_.max_discard_sectors;
  if (has_feature(VIRTIO_BLK_F_WRITE_ZEROES)) {
    limits_.max_write_zeroes_sectors = config_.max_write_zeroes_sectors;
  }
  return absl::OkStatus();
}

absl::Status VirtioBlkController::ShareMemory() {
  if (absl::Status s = frontend_.SetU64(Request::kSetFeatures, features_); !s.ok()) return s;
  absl::StatusOr<SharedIoArenaInfo> arena = SharedIoArena();
  if (!arena.ok()) return arena.status();
  // One region, identity-mapped: descriptor addresses are this process's own virtual
  // addresses, and the back-end translates them with this one entry.
  vhost_user::MemoryTable table{};
  table.nregions = 1;
  const uint64_t base = reinterpret_cast<uint64_t>(arena->base);
  table.regions[0] = {base, arena->size, base, 0};
  return frontend_.SetMemTable(table, &arena->fd, 1);
}

absl::Status VirtioBlkController::StartQueues() {
  owners_.assign(options_.vq_count, nullptr);
  for (uint32_t i = 0; i < options_.vq_count; ++i) {
    absl::StatusOr<std::unique_ptr<VirtioBlkQueue>> queue = VirtioBlkQueue::Create(
        absl::StrFormat("%s queue %u", options_.name, i), static_cast<uint16_t>(i),
        options_.vq_size, limits_);
    if (!queue.ok()) return queue.status();
    VirtioBlkQueue& q = **queue;
    vhost_user::VringAddress address{};
    address.index = i;
    address.desc_user_addr = q.desc_address();
    address.avail_user_addr = q.avail_address();
    address.used_user_addr = q.used_address();
    absl::Status s = frontend_.SetVringState(Request::kSetVringNum, i, options_.vq_size);
    if (s.ok()) s = frontend_.SetVringState(Request::kSetVringBase, i, q.initial_base());
    if (s.ok()) s = frontend_.SetVringAddress(address);
    if (s.ok()) s = frontend_.SetU64(Request::kSetVringCall, i, q.call_fd());
    if (s.ok()) s = frontend_.SetU64(Request::kSetVringKick, i, q.kick_fd());
    // With protocol features a ring starts disabled until enabled.
    if (s.ok() && (features_ & Bit(vhost_user::kFProtocolFeatures))) {
      s = frontend_.SetVringState(Request::kSetVringEnable, i, 1);
    }
    if (!s.ok()) return s;
    queues_.push_back(std::move(*queue));
  }
  return absl::OkStatus();
}

VirtioBlkQueue* VirtioBlkController::ClaimQueue(Thread* thread) {
  std::lock_guard lock(claims_mutex_);
  if (lost_) return nullptr;
  for (size_t i = 0; i < owners_.size(); ++i) {
    if (owners_[i] == nullptr) {
      owners_[i] = thread;
      return queues_[i].get();
    }
  }
  return nullptr;
}

void VirtioBlkController::ReleaseQueue(VirtioBlkQueue* queue) {
  std::lock_guard lock(claims_mutex_);
  owners_.at(queue->index()) = nullptr;
}

absl::Status VirtioBlkController::Watch(Bdev* bdev) {
  bdev_ = bdev;
  std::weak_ptr<VirtioBlkController> weak = weak_from_this();
  absl::Status s = control_thread_->AddFdHandler(frontend_.fd(), [weak] {
    if (auto controller = weak.lock()) controller->OnSocketReadable();
  });
  watching_ = s.ok();
  return s;
}

void VirtioBlkController::OnSocketReadable() {
  // Nothing was negotiated that lets the back-end send messages of its own: readable means
  // it closed the connection (or sent something this front-end never asked for).
  char byte;
  ssize_t n = recv(frontend_.fd(), &byte, 1, MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  Lose(n == 0 ? "the back-end closed the connection"
       : n < 0 ? absl::StrFormat("the connection failed: %s", strerror(errno))
               : "the back-end sent a message nobody asked for");
}

void VirtioBlkController::ReportBroken(const char* why) {
  std::shared_ptr<VirtioBlkController> self = shared_from_this();
  std::string reason = absl::StrFormat("a queue caught the back-end breaking the protocol: %s",
                                       why);
  (void)control_thread_->SendMessage([self, reason] { self->Lose(reason); });
}

void VirtioBlkController::Lose(const std::string& why) {
  if (lost_) return;
  PX_LOG(kError, "virtio", "%s (vhost-user \"%s\"): %s; requests in flight fail and the bdev is "
         "removed", options_.name.c_str(), options_.socket_path.c_str(), why.c_str());
  lost_reason_ = why;
  std::vector<std::pair<Thread*, VirtioBlkQueue*>> held;
  {
    std::lock_guard lock(claims_mutex_);
    lost_ = true;
    for (size_t i = 0; i < owners_.size(); ++i) {
      if (owners_[i] != nullptr) held.emplace_back(owners_[i], queues_[i].get());
    }
  }
  if (watching_) {
    control_thread_->RemoveFdHandler(frontend_.fd());
    watching_ = false;
  }
  frontend_.Close();
  // Each queue fails its requests on its own thread (a sleeping reactor wakes for the
  // message: a dead back-end would never signal the call fd).
  std::shared_ptr<VirtioBlkController> self = shared_from_this();
  for (const auto& owner_and_queue : held) {
    auto* queue = owner_and_queue.second;  // a plain name: clang 14 captures no bindings
    (void)owner_and_queue.first->SendMessage([self, queue] { queue->FailAll(ENOTCONN); });
  }
  if (bdev_ != nullptr) {
    std::string name = options_.name;
    UnregisterBdev(*bdev_, [name](absl::Status status) {
      if (!status.ok()) {
        PX_LOG(kError, "virtio", "%s: hot removal: %s", name.c_str(),
               std::string(status.message()).c_str());
      }
    });
  }
}

void VirtioBlkController::Stop() {
  if (watching_) {
    control_thread_->RemoveFdHandler(frontend_.fd());
    watching_ = false;
  }
  if (frontend_.connected()) {
    // GET_VRING_BASE stops each ring: the back-end lets go of our memory before we free it.
    for (const auto& queue : queues_) {
      absl::StatusOr<uint32_t> base = frontend_.GetVringBase(queue->index());
      if (!base.ok()) {
        PX_LOG(kWarning, "virtio", "%s: stopping %s: %s", options_.name.c_str(),
               queue->name().c_str(), std::string(base.status().message()).c_str());
        break;
      }
    }
    frontend_.Close();
  }
}

rpc::Json VirtioBlkController::Info() const {
  rpc::Json queues = rpc::Json::array();
  for (const auto& queue : queues_) {
    const VirtioBlkQueueCounters& c = queue->counters();
    queues.push_back({{"index", queue->index()},
                      {"requests", c.requests.load(std::memory_order_relaxed)},
                      {"completions", c.completions.load(std::memory_order_relaxed)},
                      {"kicks", c.kicks.load(std::memory_order_relaxed)},
                      {"interrupt_arms", c.arms.load(std::memory_order_relaxed)}});
  }
  return {{"name", options_.name},
          {"virtio",
           {{"type", "user"},
            {"socket", options_.socket_path},
            {"vq_count", options_.vq_count},
            {"vq_size", options_.vq_size},
            {"packed_ring", limits_.packed},
            {"event_idx", limits_.event_idx},
            {"indirect_desc", limits_.indirect},
            {"features", absl::StrFormat("0x%016x", features_)},
            {"connected", !lost_},
            {"queues", std::move(queues)}}}};
}

}  // namespace pollux
