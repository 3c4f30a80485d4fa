#include "vhost_blk_controller.h"

#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <rte_cycles.h>
#include <rte_log.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "pollux/bdev/bdev.h"
#include "pollux/env/cpu_list.h"
#include "pollux/env/log.h"
#include "pollux/reactor/reactor.h"
#include "pollux/reactor/thread.h"
#include "pollux/virtio/vhost_user_protocol.h"
#include "pollux/virtio/vring.h"
#include "vhost_blk_limits.h"

namespace pollux {
namespace {

constexpr uint64_t Bit(int bit) { return uint64_t{1} << bit; }

// Counts acknowledgements from queue threads; rte_vhost's event thread waits for them (it may
// block; pollux threads never wait on it).
class Rendezvous {
 public:
  explicit Rendezvous(int count) : remaining_(count) {}
  void Arrive() {
    std::lock_guard lock(mutex_);
    if (--remaining_ == 0) cv_.notify_all();
  }
  void Wait(const std::string& what) {
    std::unique_lock lock(mutex_);
    while (!cv_.wait_for(lock, std::chrono::seconds(5), [this] { return remaining_ == 0; })) {
      PX_LOG(kWarning, "vhost", "%s: still waiting for %d queue(s)", what, remaining_);
    }
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  int remaining_;
};

std::string CpuMaskHex(const std::vector<int>& cpus) {
  // Hex digits from the highest core down, as SPDK prints masks.
  int top = cpus.empty() ? 0 : cpus.back();
  std::string hex;
  for (int base = (top / 4) * 4; base >= 0; base -= 4) {
    int digit = 0;
    for (int c : cpus) {
      if (c >= base && c < base + 4) digit |= 1 << (c - base);
    }
    hex += "0123456789abcdef"[digit];
  }
  return "0x" + hex;
}

}  // namespace

VhostBlkController::VhostBlkController(const VhostBlkControllerOptions& options,
                                       std::string socket_path)
    : options_(options), socket_path_(std::move(socket_path)) {}

absl::StatusOr<std::unique_ptr<VhostBlkController>> VhostBlkController::Create(
    const VhostBlkControllerOptions& options, std::string socket_path) {
  ReactorRuntime* runtime = ReactorRuntime::Get();
  if (runtime == nullptr || Thread::Current() == nullptr) {
    return absl::FailedPreconditionError("no reactors run");
  }
  std::vector<int> cpus;
  if (options.cpumask.empty()) {
    for (const auto& reactor : runtime->reactors()) cpus.push_back(reactor->cpu());
    std::sort(cpus.begin(), cpus.end());
  } else {
    absl::StatusOr<std::vector<int>> parsed = ParseCpuMaskParam(options.cpumask);
    if (!parsed.ok())
      return absl::InvalidArgumentError(absl::StrCat("cpumask: ", parsed.status().message()));
    for (int cpu : *parsed) {
      if (runtime->ReactorOnCpu(cpu) == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrFormat("cpumask \"%s\": core %d runs no reactor", options.cpumask, cpu));
      }
    }
    cpus = *std::move(parsed);
    if (cpus.empty()) return absl::InvalidArgumentError("cpumask selects no core");
  }

  std::unique_ptr<VhostBlkController> c(new VhostBlkController(options, std::move(socket_path)));
  c->home_ = Thread::Current();
  c->cpus_ = cpus;
  VhostBlkController* self = c.get();
  absl::StatusOr<std::unique_ptr<BdevDesc>> desc =
      BdevDesc::Open(options.bdev_name, !options.readonly, [self](BdevEvent event, Bdev& bdev) {
        if (event == BdevEvent::kRemove) self->OnBdevRemoved();
        // Only growth reaches us: the layer refuses a shrink while we hold the bdev open.
        if (event == BdevEvent::kResize) self->OnBdevResized(bdev.size_bytes() / 512);
      });
  if (!desc.ok()) return desc.status();
  c->desc_ = *std::move(desc);
  const Bdev& bdev = c->desc_->bdev();
  VhostBlkDevice& d = c->device_;
  d.desc = c->desc_.get();
  d.block_size = bdev.block_size();
  d.capacity_sectors = bdev.size_bytes() / 512;
  d.read_only = options.readonly;
  d.write_cache = bdev.write_cache();
  d.discard = bdev.Supports(IoType::kUnmap);
  d.write_zeroes = bdev.Supports(IoType::kWriteZeroes);
  d.max_discard_sectors = kVhostBlkMaxRangeSectors;
  d.max_write_zeroes_sectors = kVhostBlkMaxRangeSectors;
  // GET_ID: the bdev's name, zero-padded; not NUL-terminated when 20 bytes long
  // (virtio 1.2, 5.2.6).
  std::memcpy(d.id, bdev.name().data(), std::min(bdev.name().size(), sizeof(d.id)));

  for (int cpu : cpus) {
    absl::StatusOr<Thread*> thread = AcquireVhostThread(cpu, c->cpus_);
    if (!thread.ok()) return thread.status();  // the destructor releases the threads taken
    c->threads_.push_back(*thread);
  }
  return c;
}

VhostBlkController::~VhostBlkController() {
  // Shutdown released the threads already; a controller that failed half-way releases here.
  for (Thread* thread : threads_) ReleaseVhostThread(thread, cpus_);
}

uint64_t VhostBlkController::OfferedFeatures(const VhostBlkControllerOptions& options) {
  uint64_t features = Bit(VIRTIO_F_VERSION_1) | Bit(VIRTIO_RING_F_INDIRECT_DESC) |
                      Bit(VIRTIO_RING_F_EVENT_IDX) | Bit(vhost_user::kFProtocolFeatures) |
                      Bit(VIRTIO_BLK_F_SIZE_MAX) | Bit(VIRTIO_BLK_F_SEG_MAX) |
                      Bit(VIRTIO_BLK_F_BLK_SIZE) | Bit(VIRTIO_BLK_F_TOPOLOGY) |
                      Bit(VIRTIO_BLK_F_MQ) | Bit(VIRTIO_BLK_F_FLUSH) | Bit(VIRTIO_BLK_F_CONFIG_WCE);
  if (options.packed_ring) features |= Bit(VIRTIO_F_RING_PACKED);
  if (options.readonly) features |= Bit(VIRTIO_BLK_F_RO);
  return features;
}

bool VhostBlkController::connected() {
  std::lock_guard lock(mutex_);
  return vid_ >= 0;
}

absl::Status VhostBlkController::Listen() {
  // rte_vhost narrates every protocol message at INFO: only pollux's debug level shows that.
  rte_log_set_level_pattern("lib.vhost.*",
                            LogEnabled(LogLevel::kDebug) ? RTE_LOG_INFO : RTE_LOG_WARNING);
  const char* path = socket_path_.c_str();
  struct stat st;
  if (::stat(path, &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::AlreadyExistsError(
          absl::StrFormat("socket path \"%s\" exists and is not a socket", socket_path_));
    }
    if (::unlink(path) != 0) {
      return absl::PermissionDeniedError(absl::StrFormat(
          "socket path \"%s\": cannot remove the old socket: %s", socket_path_, strerror(errno)));
    }
  }
  if (rte_vhost_driver_register(path, 0) != 0) {
    return absl::InternalError(absl::StrFormat(
        "socket path \"%s\": rte_vhost cannot register it (too long, or in use)", socket_path_));
  }
  registered_ = true;
  uint64_t features = OfferedFeatures(options_);
  if (device_.discard && !options_.readonly) features |= Bit(VIRTIO_BLK_F_DISCARD);
  if (device_.write_zeroes && !options_.readonly) features |= Bit(VIRTIO_BLK_F_WRITE_ZEROES);
  uint64_t protocol = Bit(vhost_user::kProtocolMq) | Bit(vhost_user::kProtocolReplyAck) |
                      Bit(vhost_user::kProtocolBackendReq) | Bit(vhost_user::kProtocolConfig) |
                      Bit(vhost_user::kProtocolInflightShmfd);
  absl::Status failed;
  if (rte_vhost_driver_set_features(path, features) != 0 ||
      rte_vhost_driver_set_protocol_features(path, protocol) != 0) {
    failed = absl::InternalError("rte_vhost refused the feature set");
  } else if (rte_vhost_driver_callback_register(path, VhostDeviceOps()) != 0) {
    failed = absl::InternalError("rte_vhost refused the callbacks");
  } else if (rte_vhost_driver_start(path) != 0) {
    failed = absl::InternalError(absl::StrFormat("rte_vhost cannot listen on \"%s\"", path));
  } else if (::chmod(path, options_.socket_mode) != 0) {
    failed = absl::PermissionDeniedError(
        absl::StrFormat("chmod \"%s\" %o: %s", path, options_.socket_mode, strerror(errno)));
  }
  if (!failed.ok()) {
    rte_vhost_driver_unregister(path);
    registered_ = false;
  }
  return failed;
}

void VhostBlkController::Shutdown(absl::AnyInvocable<void()> done) {
  const uint64_t home_id = home_->id();
  // rte_vhost_driver_unregister waits for its event thread and may stop a connected device
  // from inside (our OnDestroyDevice, which waits for queue threads): not on a pollux thread.
  std::thread([this, home_id, done = std::move(done)]() mutable {
    if (registered_) rte_vhost_driver_unregister(socket_path_.c_str());
    registered_ = false;
    RunOnThread(home_id,
                [this, done = std::move(done)]() mutable { DestroyQueues(std::move(done)); });
  }).detach();
}

void VhostBlkController::DestroyQueues(absl::AnyInvocable<void()> done) {
  // Each queue is destroyed on its thread; then the threads are released and the descriptor
  // closes (no queue holds a channel of it any more).
  std::vector<std::unique_ptr<VhostBlkQueue>> queues;
  {
    std::lock_guard lock(mutex_);
    queues.swap(queues_);
  }
  struct Teardown {
    size_t remaining = 1;
    absl::AnyInvocable<void()> finish;
  };
  auto teardown = std::make_shared<Teardown>();
  teardown->finish = [this, done = std::move(done)]() mutable {
    for (Thread* thread : threads_) ReleaseVhostThread(thread, cpus_);
    threads_.clear();
    desc_.reset();
    done();
  };
  auto arrive = [teardown] {
    if (--teardown->remaining == 0) teardown->finish();
  };
  const uint64_t home = home_->id();
  for (auto& q : queues) {
    if (q == nullptr) continue;
    ++teardown->remaining;
    VhostBlkQueue* queue = q.release();
    if (!RunOnThread(queue->thread()->id(), [queue, home, arrive] {
          delete queue;
          RunOnThread(home, arrive);
        })) {
      delete queue;  // its thread is gone (shutdown): nothing runs there any more
      arrive();
    }
  }
  arrive();
}

VhostBlkController::QueueCoalescing VhostBlkController::queue_coalescing() const {
  if (coalescing_iops_threshold_ == 0) return {0, 1};  // off
  return {uint64_t{coalescing_delay_us_} * rte_get_tsc_hz() / 1'000'000,
          static_cast<uint32_t>(
              std::max<uint64_t>(1, coalescing_iops_threshold_ / kVhostCoalescingChecksPerSecond))};
}

void VhostBlkController::SetCoalescing(uint32_t delay_base_us, uint32_t iops_threshold) {
  coalescing_delay_us_ = delay_base_us;
  coalescing_iops_threshold_ = iops_threshold;
  const QueueCoalescing c = queue_coalescing();
  std::lock_guard lock(mutex_);
  for (auto& q : queues_) {
    if (q == nullptr) continue;
    VhostBlkQueue* queue = q.get();
    RunOnThread(queue->thread()->id(),
                [queue, c] { queue->SetCoalescing(c.delay_tsc, c.threshold_per_interval); });
  }
}

void VhostBlkController::Info(absl::AnyInvocable<void(rpc::Json)> done) {
  rpc::Json info = {
      {"ctrlr", options_.name},
      {"cpumask", CpuMaskHex(cpus_)},
      {"delay_base_us", coalescing_delay_us_},
      {"iops_threshold", coalescing_iops_threshold_},
      {"socket", socket_path_},
      {"backend_specific",
       {{"block",
         {{"readonly", options_.readonly},
          {"bdev", desc_ != nullptr ? rpc::Json(desc_->bdev().name()) : rpc::Json(nullptr)},
          {"packed_ring", options_.packed_ring},
          {"transport", "vhost_user_blk"}}}}},
  };
  std::vector<VhostBlkQueue*> queues;
  {
    std::lock_guard lock(mutex_);
    rpc::Json sessions = rpc::Json::array();
    if (vid_ >= 0) {
      sessions.push_back({{"vid", vid_},
                          {"id", 0},
                          {"name", absl::StrFormat("%ss%d", options_.name, vid_)},
                          {"started", started_}});
    }
    info["sessions"] = std::move(sessions);
    for (auto& q : queues_) {
      if (q != nullptr) queues.push_back(q.get());
    }
  }
  // One queue after the other on its own thread, then back home with the whole list.
  struct Gather {
    rpc::Json info;
    std::vector<VhostBlkQueue*> queues;
    size_t next = 0;
    uint64_t home;
    absl::AnyInvocable<void(rpc::Json)> done;
  };
  auto gather = std::make_shared<Gather>();
  gather->info = std::move(info);
  gather->info["queues"] = rpc::Json::array();
  gather->queues = std::move(queues);
  gather->home = home_->id();
  gather->done = std::move(done);
  auto step = std::make_shared<absl::AnyInvocable<void()>>();
  *step = [gather, step]() {
    if (gather->next == gather->queues.size()) {
      RunOnThread(gather->home, [gather, step] {
        gather->done(std::move(gather->info));
        *step = nullptr;  // breaks the cycle
      });
      return;
    }
    VhostBlkQueue* q = gather->queues[gather->next++];
    if (!RunOnThread(q->thread()->id(), [gather, step, q] {
          gather->info["queues"].push_back(q->Info());
          (*step)();
        })) {
      (*step)();
    }
  };
  (*step)();
}

void VhostBlkController::ForEachQueue(QueueStep step, absl::AnyInvocable<void()> done) {
  std::vector<VhostBlkQueue*> queues;
  {
    std::lock_guard lock(mutex_);
    for (auto& q : queues_) {
      if (q != nullptr) queues.push_back(q.get());
    }
  }
  struct Walk {
    QueueStep step;
    absl::AnyInvocable<void()> done;
    size_t remaining;  // home thread only
  };
  auto walk = std::make_shared<Walk>(Walk{std::move(step), std::move(done), queues.size() + 1});
  auto arrive = [walk] {
    if (--walk->remaining == 0) walk->done();
  };
  // Safe to come back to `this`: each queue thread answers before it runs a later
  // DestroyQueues message.
  const uint64_t home = home_->id();
  for (VhostBlkQueue* q : queues) {
    RunOnThread(q->thread()->id(), [q, walk, home, arrive] {
      walk->step(*q, [home, arrive] { RunOnThread(home, arrive); });
    });
  }
  arrive();
}

void VhostBlkController::OnBdevRemoved() {
  {
    std::lock_guard lock(mutex_);
    device_.desc = nullptr;
  }
  PX_LOG(kWarning, "vhost", "%s: bdev %s is being removed: guest I/O fails from now on",
         options_.name, options_.bdev_name);
  ForEachQueue([](VhostBlkQueue& q, absl::AnyInvocable<void()> next) { q.DetachBdev(std::move(next)); },
               [this] { desc_.reset(); });
}

void VhostBlkController::OnBdevResized(uint64_t capacity_sectors) {
  {
    std::lock_guard lock(mutex_);
    device_.capacity_sectors = capacity_sectors;  // for GET_CONFIG and queues started later
  }
  PX_LOG(kNotice, "vhost", "%s: bdev %s resized: %lu sectors", options_.name, options_.bdev_name,
         capacity_sectors);
  // The guest hears of the new size only once every queue accepts it.
  ForEachQueue(
      [capacity_sectors](VhostBlkQueue& q, absl::AnyInvocable<void()> next) {
        q.SetCapacity(capacity_sectors);
        next();
      },
      [this] { NotifyConfigChange(); });
}

void VhostBlkController::NotifyConfigChange() {
  int vid;
  {
    std::lock_guard lock(mutex_);
    vid = vid_;
  }
  if (vid < 0) return;  // a front-end connecting later reads the new size
  // Needs the back-end channel (VHOST_USER_PROTOCOL_F_BACKEND_REQ): QEMU gives one; a
  // front-end without it sees the new size at its next GET_CONFIG.
  if (rte_vhost_slave_config_change(vid, false) != 0) {
    PX_LOG(kWarning, "vhost",
           "%s: the front-end has no back-end channel: it sees the new size only when it reads "
           "the config space again",
           options_.name);
  }
}

VhostBlkQueue& VhostBlkController::QueueAt(uint16_t vring) {
  std::lock_guard lock(mutex_);
  if (queues_.size() <= vring) queues_.resize(vring + 1);
  if (queues_[vring] == nullptr) {
    Thread* thread = threads_[vring % threads_.size()];
    queues_[vring] = std::make_unique<VhostBlkQueue>(
        absl::StrFormat("%s queue %u", options_.name, vring), thread);
    // Not running yet: the setting is only stored (no engine to pass it to).
    const QueueCoalescing c = queue_coalescing();
    queues_[vring]->SetCoalescing(c.delay_tsc, c.threshold_per_interval);
  }
  return *queues_[vring];
}

// ---- rte_vhost's callbacks (its event thread) ----

int VhostBlkController::OnNewConnection(int vid) {
  std::lock_guard lock(mutex_);
  if (vid_ >= 0) {
    PX_LOG(kError, "vhost", "%s: refusing a second front-end (one is connected)", options_.name);
    return -1;
  }
  vid_ = vid;
  vring_ready_.assign(kVhostBlkMaxQueues, false);
  resubmit_pending_.assign(kVhostBlkMaxQueues, false);
  return 0;
}

void VhostBlkController::OnDestroyConnection(int vid) {
  if (vid != vid_) return;
  StopDevice();
  std::lock_guard lock(mutex_);
  vid_ = -1;
}

int VhostBlkController::OnNewDevice(int vid) {
  if (vid != vid_) return -1;
  return StartDevice();
}

void VhostBlkController::OnDestroyDevice(int vid) {
  if (vid != vid_) return;
  StopDevice();
}

void VhostBlkController::OnVringStateChanged(int vid, uint16_t vring, bool ready) {
  if (vid != vid_ || vring >= vring_ready_.size()) return;
  if (vring_ready_[vring] == ready) return;
  vring_ready_[vring] = ready;
  if (started_) {
    // Serve exactly the ready queues: stop them all and start the ready ones.
    StopDevice();
    StartDevice();
  }
}

rte_vhost_msg_result VhostBlkController::OnMessageBefore(int vid, void* message) {
  auto* header = static_cast<vhost_user::MessageHeader*>(message);
  auto* payload = reinterpret_cast<uint8_t*>(header + 1);
  switch (static_cast<vhost_user::Request>(header->request)) {
    case vhost_user::Request::kGetConfig: {
      auto* config = reinterpret_cast<vhost_user::ConfigSpace*>(payload);
      if (header->size < vhost_user::kConfigHeaderSize || config->size > sizeof(config->region) ||
          config->offset > sizeof(config->region) - config->size) {
        PX_LOG(kError, "vhost", "%s: GET_CONFIG with a bad window (offset %u size %u)",
               options_.name, config->offset, config->size);
        return RTE_VHOST_MSG_RESULT_ERR;
      }
      FillConfig(config->region, config->offset, config->size);
      header->size = static_cast<uint32_t>(vhost_user::kConfigHeaderSize + config->size);
      return RTE_VHOST_MSG_RESULT_REPLY;
    }
    case vhost_user::Request::kSetConfig:
      // Only the write-cache switch is writable in virtio-blk's config; ours follows the bdev.
      return RTE_VHOST_MSG_RESULT_OK;
    case vhost_user::Request::kSetVringKick:
      if (vid == vid_ && header->size >= sizeof(uint64_t)) {
        uint64_t index = 0;
        std::memcpy(&index, payload, sizeof(index));
        index &= vhost_user::kVringIndexMask;
        if (index < resubmit_pending_.size()) resubmit_pending_[index] = true;
      }
      [[fallthrough]];
    case vhost_user::Request::kSetVringCall:
    case vhost_user::Request::kSetMemTable:
    case vhost_user::Request::kSetVringAddr:
    case vhost_user::Request::kSetVringNum:
    case vhost_user::Request::kSetVringBase:
      // rte_vhost is about to close an fd or unmap memory a running queue uses: drain the
      // queues first and start them again after the message (OnMessageAfter).
      if (vid == vid_ && started_) {
        StopDevice();
        needs_restart_ = true;
      }
      return RTE_VHOST_MSG_RESULT_NOT_HANDLED;
    default:
      return RTE_VHOST_MSG_RESULT_NOT_HANDLED;
  }
}

rte_vhost_msg_result VhostBlkController::OnMessageAfter(int vid, void* /*message*/) {
  if (vid == vid_ && needs_restart_) {
    needs_restart_ = false;
    StartDevice();
  }
  return RTE_VHOST_MSG_RESULT_NOT_HANDLED;
}

void VhostBlkController::FillConfig(uint8_t* out, uint32_t offset, uint32_t size) {
  virtio_blk_config c;
  std::memset(&c, 0, sizeof(c));
  VhostBlkDevice d;
  {
    std::lock_guard lock(mutex_);
    d = device_;
  }
  c.capacity = d.capacity_sectors;
  c.size_max = kVhostBlkSizeMax;
  c.seg_max = kVhostBlkSegMax;
  c.blk_size = d.block_size;
  c.min_io_size = 1;
  c.wce = d.write_cache ? 1 : 0;
  c.num_queues = kVhostBlkMaxQueues;
  c.max_discard_sectors = d.max_discard_sectors;
  c.max_discard_seg = d.max_discard_segments;
  c.discard_sector_alignment = d.block_size / 512;
  c.max_write_zeroes_sectors = d.max_write_zeroes_sectors;
  c.max_write_zeroes_seg = d.max_write_zeroes_segments;
  c.write_zeroes_may_unmap = d.discard ? 1 : 0;
  std::memset(out + offset, 0, size);
  if (offset < sizeof(c)) {
    std::memcpy(out + offset, reinterpret_cast<const uint8_t*>(&c) + offset,
                std::min<size_t>(size, sizeof(c) - offset));
  }
}

int VhostBlkController::StartDevice() {
  if (started_) return 0;
  uint64_t features = 0;
  if (rte_vhost_get_negotiated_features(vid_, &features) != 0) return -1;
  rte_vhost_memory* table = nullptr;
  if (rte_vhost_get_mem_table(vid_, &table) != 0 || table == nullptr) {
    PX_LOG(kError, "vhost", "%s: no guest memory table", options_.name);
    return -1;
  }
  std::vector<GuestMemoryRegion> regions;
  for (uint32_t i = 0; i < table->nregions; ++i) {
    const rte_vhost_mem_region& r = table->regions[i];
    regions.push_back({r.guest_phys_addr, r.size, reinterpret_cast<uint8_t*>(r.host_user_addr)});
  }
  free(table);
  memory_ = std::make_shared<const GuestMemory>(regions);

  const bool packed = (features & Bit(VIRTIO_F_RING_PACKED)) != 0;
  std::vector<std::pair<VhostBlkQueue*, VhostBlkQueueSetup>> starts;
  const uint16_t vrings = std::min<uint16_t>(rte_vhost_get_vring_num(vid_), kVhostBlkMaxQueues);
  VhostBlkDevice device;
  {
    std::lock_guard lock(mutex_);
    device = device_;
  }
  for (uint16_t i = 0; i < vrings; ++i) {
    if (!vring_ready_[i]) continue;
    rte_vhost_vring vring;
    if (rte_vhost_get_vhost_vring(vid_, i, &vring) != 0 || vring.desc == nullptr ||
        vring.size == 0) {
      continue;
    }
    VhostBlkQueueSetup setup;
    setup.name = absl::StrFormat("%s queue %u", options_.name, i);
    setup.vid = vid_;
    setup.vring_index = i;
    setup.packed = packed;
    setup.desc = vring.desc;
    setup.driver_area = vring.avail;
    setup.device_area = vring.used;
    setup.ring.size = vring.size;
    setup.ring.event_idx = (features & Bit(VIRTIO_RING_F_EVENT_IDX)) != 0;
    setup.ring.indirect = (features & Bit(VIRTIO_RING_F_INDIRECT_DESC)) != 0;
    setup.ring.memory = memory_.get();
    rte_vhost_get_vring_base(vid_, i, &setup.position.last_avail_idx,
                             &setup.position.last_used_idx);
    setup.kick_fd = vring.kickfd;
    setup.call_fd = vring.callfd;
    setup.memory = memory_;
    rte_vhost_ring_inflight inflight;
    std::memset(&inflight, 0, sizeof(inflight));
    if (!packed && rte_vhost_get_vhost_ring_inflight(vid_, i, &inflight) == 0 &&
        inflight.inflight_split != nullptr) {
      setup.track_inflight = true;
      if (inflight.resubmit_inflight != nullptr && resubmit_pending_[i]) {
        const rte_vhost_resubmit_info& info = *inflight.resubmit_inflight;
        std::vector<rte_vhost_resubmit_desc> list(info.resubmit_list,
                                                  info.resubmit_list + info.resubmit_num);
        std::sort(list.begin(), list.end(),
                  [](const auto& a, const auto& b) { return a.counter < b.counter; });
        for (const auto& entry : list) setup.resubmit.push_back(entry.index);
        if (!list.empty()) {
          PX_LOG(kInfo, "vhost", "%s: resubmitting %zu request(s) in flight before reconnection",
                 setup.name, list.size());
        }
      }
    }
    resubmit_pending_[i] = false;
    setup.device = device;
    starts.emplace_back(&QueueAt(i), std::move(setup));
  }
  Rendezvous rendezvous(static_cast<int>(starts.size()));
  for (auto& queue_and_setup : starts) {
    VhostBlkQueue* queue = queue_and_setup.first;  // a plain name: clang 14 captures no bindings
    bool sent =
        RunOnThread(queue->thread()->id(),
                    [queue, setup = std::move(queue_and_setup.second), &rendezvous]() mutable {
                      absl::Status s = queue->Start(std::move(setup));
                      if (!s.ok()) {
                        PX_LOG(kError, "vhost", "%s: %s", queue->name(), s.message());
                      }
                      rendezvous.Arrive();
                    });
    if (!sent) rendezvous.Arrive();
  }
  rendezvous.Wait(options_.name + ": starting queues");
  started_ = true;
  return 0;
}

void VhostBlkController::StopDevice() {
  if (!started_) return;
  std::vector<std::pair<uint16_t, VhostBlkQueue*>> running;
  {
    std::lock_guard lock(mutex_);
    for (size_t i = 0; i < queues_.size(); ++i) {
      if (queues_[i] != nullptr) running.emplace_back(static_cast<uint16_t>(i), queues_[i].get());
    }
  }
  std::vector<std::optional<RingPosition>> positions(running.size());
  Rendezvous rendezvous(static_cast<int>(running.size()));
  for (size_t k = 0; k < running.size(); ++k) {
    VhostBlkQueue* queue = running[k].second;
    std::optional<RingPosition>* out = &positions[k];
    bool sent = RunOnThread(queue->thread()->id(), [queue, out, &rendezvous] {
      if (!queue->running()) return rendezvous.Arrive();
      queue->Stop([out, &rendezvous](RingPosition position) {
        *out = position;
        rendezvous.Arrive();
      });
    });
    if (!sent) rendezvous.Arrive();
  }
  rendezvous.Wait(options_.name + ": draining queues");
  for (size_t k = 0; k < running.size(); ++k) {
    if (positions[k]) {
      rte_vhost_set_vring_base(vid_, running[k].first, positions[k]->last_avail_idx,
                               positions[k]->last_used_idx);
    }
  }
  started_ = false;
  memory_.reset();
}

}  // namespace pollux
