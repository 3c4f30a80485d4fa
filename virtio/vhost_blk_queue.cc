#include "vhost_blk_queue.h"

#include <linux/virtio_blk.h>
#include <poll.h>
#include <rte_cycles.h>
#include <rte_vhost.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_format.h"
#include "pollux/env/log.h"
#include "pollux/reactor/thread.h"
#include "queue_counter.h"
#include "vhost_blk_limits.h"
#include "vhost_blk_request.h"

namespace pollux {
namespace {

// Chains popped per poll before completions get a turn (a full ring is popped in a few passes).
constexpr int kPopBudget = 64;
// A queue that found nothing for this long leaves the polled set: kicks on, its poller paused,
// its kick fd watched by an fd handler until the guest's next request (QEMU's aio-posix does
// the same after 7 s). 100 idle queues then cost the busy one nothing.
constexpr uint64_t kParkAfterMs = 1000;
// Idle polls between two looks at the clock (one rdtsc per this many idle polls).
constexpr uint32_t kIdlePollsPerClockCheck = 4096;

uint8_t StatusOf(BdevIoStatus status) {
  if (status == BdevIoStatus::kSuccess) return VIRTIO_BLK_S_OK;
  if (status == BdevIoStatus::kNotSupported) return VIRTIO_BLK_S_UNSUPP;
  return VIRTIO_BLK_S_IOERR;
}

template <typename Ring>
Ring MakeRing(const VhostBlkQueueSetup& setup);

template <>
SplitRingDevice MakeRing<SplitRingDevice>(const VhostBlkQueueSetup& s) {
  return SplitRingDevice(static_cast<vring_desc*>(s.desc), static_cast<vring_avail*>(s.driver_area),
                         static_cast<vring_used*>(s.device_area), s.ring, s.position);
}

template <>
PackedRingDevice MakeRing<PackedRingDevice>(const VhostBlkQueueSetup& s) {
  return PackedRingDevice(static_cast<vring_packed_desc*>(s.desc),
                          static_cast<vring_packed_desc_event*>(s.driver_area),
                          static_cast<vring_packed_desc_event*>(s.device_area), s.ring, s.position);
}

template <typename Ring>
class VhostBlkQueueOn final : public VhostBlkQueueEngine {
 public:
  VhostBlkQueueOn(VhostBlkQueue& queue, VhostBlkQueueSetup setup)
      : queue_(queue),
        setup_(std::move(setup)),
        device_(setup_.device),
        ring_(MakeRing<Ring>(setup_)),
        block_shift_(static_cast<uint32_t>(__builtin_ctz(device_.block_size))),
        tasks_(setup_.ring.size),
        batch_ids_(setup_.track_inflight ? setup_.ring.size : 0),
        counters_(queue.counters()) {
    for (Task& t : tasks_) t.queue = this;
  }

  ~VhostBlkQueueOn() override {
    Unpark();
    poller_.reset();
  }

  absl::Status Start(uint64_t coalescing_delay_tsc, uint32_t coalescing_threshold) {
    SetCoalescing(coalescing_delay_tsc, coalescing_threshold);
    if (device_.desc != nullptr) {
      channel_ = device_.desc->GetIoChannel();
      if (!channel_) device_.desc = nullptr;  // the bdev is being removed
    }
    ring_.DisableNotifications();
    PollerOptions options;
    options.wake_fd = setup_.kick_fd;
    options.arm = [this] { return Arm(); };
    options.disarm = [this] { ring_.DisableNotifications(); };
    poller_ = PollerHandle(Thread::Current()->RegisterPoller(
        absl::StrFormat("vhost_blk %s", setup_.name), [this] { return Poll(); },
        std::move(options)));
    // Requests the previous target had in flight go first, in the order they were made.
    for (uint16_t head : setup_.resubmit) {
      if (!Resubmit(head)) break;
    }
    Publish();
    // The guest may have kicked before the poller existed; one interrupt also wakes a guest
    // that waited on completions the previous target published without telling it.
    SendInterrupt();
    return absl::OkStatus();
  }

  void Stop(absl::AnyInvocable<void(RingPosition)> done) override {
    Unpark();
    stopping_ = true;
    stop_done_ = std::move(done);
    MaybeFinishStop();
  }

  void DetachBdev(absl::AnyInvocable<void()> done) override {
    device_.desc = nullptr;
    detach_done_ = std::move(done);
    MaybeFinishDetach();
  }

  void SetCapacity(uint64_t sectors) override { device_.capacity_sectors = sectors; }

  void SetCoalescing(uint64_t delay_tsc, uint32_t threshold) override {
    coalescing_delay_tsc_ = delay_tsc;
    coalescing_threshold_ = threshold;
    irq_delay_tsc_ = 0;
  }

  void CollectKicks() override {
    pollfd p{setup_.kick_fd, POLLIN, 0};
    uint64_t value = 0;
    if (setup_.kick_fd >= 0 && ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN) &&
        ::read(setup_.kick_fd, &value, sizeof(value)) == sizeof(value)) {
      AddToCounter(counters_.kicks, value);
      // A parked queue waits for this very count: it was taken here, so wake up now.
      if (parked_) Unpark();
    }
  }

 private:
  struct Task {
    VhostBlkQueueOn* queue = nullptr;
    uint8_t* status = nullptr;
    uint32_t used_len = 0;
    uint16_t id = 0;
    uint16_t ring_slots = 0;
    bool in_flight = false;
    bool on_bdev = false;
    int iovcnt = 0;
    iovec iov[kVhostBlkTaskIovecs];
  };

  PollResult Poll() noexcept {
    bool busy = Publish();
    if (!stopping_ && !broken_ && PopAvailable()) {
      // A device that completes at once (null, malloc) had its callbacks deferred out of the
      // submissions: take them now, so that this pass publishes them.
      if (channel_) BdevDesc::DeliverCompletions(*channel_);
      busy = true;
    }
    busy |= Publish();
    if (interrupt_owed_ && rte_rdtsc() >= next_interrupt_tsc_) busy |= SendInterrupt();
    if (busy) {
      AddToCounter(counters_.polls_busy);
      busy_since_clock_check_ = true;
      return PollResult::kBusy;
    }
    AddToCounter(counters_.polls_idle);
    if (++idle_polls_ == kIdlePollsPerClockCheck) CheckIdleTime();
    return PollResult::kIdle;
  }

  // Every kIdlePollsPerClockCheck idle polls: park the queue once it has been idle for
  // kParkAfterMs.
  void CheckIdleTime() noexcept {
    idle_polls_ = 0;
    const uint64_t now = rte_rdtsc();
    if (busy_since_clock_check_ || quiet_since_tsc_ == 0) {
      busy_since_clock_check_ = false;
      quiet_since_tsc_ = now;
      return;
    }
    if (now - quiet_since_tsc_ < kParkAfterMs * rte_get_tsc_hz() / 1000) return;
    if (stopping_ || in_flight_ != 0 || publish_pending_ || interrupt_owed_) return;
    Park();
  }

  void Park() noexcept {
    if (!ring_.EnableNotifications()) {  // a request came meanwhile
      ring_.DisableNotifications();
      return;
    }
    // Kicks counted so far (the fd stays readable while polling: nobody reads it) must not
    // wake the parked queue at once; one that comes after this read does. A request that came
    // between the two checks is caught by the second.
    CollectKicks();
    if (!ring_.EnableNotifications()) {
      ring_.DisableNotifications();
      return;
    }
    park_fd_ = ::dup(setup_.kick_fd);  // the poller's wake fd is in the reactor's epoll already
    if (park_fd_ < 0 ||
        !Thread::Current()->AddFdHandler(park_fd_, [this] { OnKickWhileParked(); }).ok()) {
      if (park_fd_ >= 0) ::close(park_fd_);
      park_fd_ = -1;
      ring_.DisableNotifications();
      return;
    }
    poller_->Pause();
    parked_ = true;
    AddToCounter(counters_.parks);
  }

  void OnKickWhileParked() noexcept {
    uint64_t kicks = 0;
    if (::read(park_fd_, &kicks, sizeof(kicks)) == sizeof(kicks))
      AddToCounter(counters_.kicks, kicks);
    Unpark();
  }

  void Unpark() noexcept {
    if (!parked_) return;
    parked_ = false;
    Thread::Current()->RemoveFdHandler(park_fd_);
    ::close(park_fd_);
    park_fd_ = -1;
    ring_.DisableNotifications();
    quiet_since_tsc_ = 0;
    poller_->Resume();
  }

  bool Arm() noexcept {
    if (publish_pending_ || interrupt_owed_) return false;
    if (stopping_ || broken_) return true;
    return ring_.EnableNotifications();
  }

  bool PopAvailable() noexcept {
    int budget = kPopBudget;
    if constexpr (std::is_same_v<Ring, SplitRingDevice>) {
      RingError error = RingError::kNone;
      uint16_t available = ring_.Available(&error);
      if (error != RingError::kNone) return Break(RingErrorText(error));
      if (available == 0) return false;
      budget = std::min<int>(budget, available);
      for (int i = 0; i < budget; ++i) {
        if (!PopOne()) return true;
      }
    } else {
      int i = 0;
      for (; i < budget && ring_.HasAvailable(); ++i) {
        if (!PopOne()) return true;
      }
      if (i == 0) return false;
    }
    ring_.KeepNotificationsOff();
    return true;
  }

  bool PopOne() noexcept {
    DescriptorChain chain;
    RingError error = ring_.Pop(&chain, scratch_, kVhostBlkTaskIovecs);
    if (error != RingError::kNone) return Break(RingErrorText(error));
    return Accept(chain);
  }

  bool Resubmit(uint16_t head) noexcept {
    if constexpr (std::is_same_v<Ring, SplitRingDevice>) {
      DescriptorChain chain;
      RingError error = ring_.ReadChain(head, &chain, scratch_, kVhostBlkTaskIovecs);
      if (error != RingError::kNone) return Break(RingErrorText(error));
      return Accept(chain, /*resubmitted=*/true);
    } else {
      (void)head;
      return true;
    }
  }

  // Takes a popped chain: its task, the decoded request, the inflight record, then the plan.
  bool Accept(const DescriptorChain& chain, bool resubmitted = false) noexcept {
    if (chain.id >= tasks_.size()) return Break("descriptor id out of range");
    Task& t = tasks_[chain.id];
    if (t.in_flight) return Break("descriptor chain made available again while in flight");
    // Not const: GCC keeps a const plan in memory instead of registers (no SRA of a const decl).
    BlkRequestPlan plan = DecodeBlkRequest(chain, scratch_, device_, t.iov);
    if (plan.action == BlkRequestAction::kBrokenChain) {
      return Break("request without a writable status byte");
    }
    t.in_flight = true;
    t.id = chain.id;
    t.ring_slots = chain.ring_slots;
    t.status = plan.status_byte;
    t.used_len = 0;
    ++in_flight_;
    AddToCounter(counters_.requests);
    if (setup_.track_inflight && !resubmitted) {
      rte_vhost_set_inflight_desc_split(setup_.vid, setup_.vring_index, chain.id);
    }
    CarryOut(t, plan);
    return true;
  }

  // Turns a decoded request into a bdev call, or completes it at once (errors, GET_ID).
  void CarryOut(Task& t, const BlkRequestPlan& plan) noexcept {
    if (plan.action == BlkRequestAction::kSubmit) {
      t.iovcnt = plan.iovcnt;
      t.used_len = plan.used_len;
      return Submit(t, plan.io_type, plan.sector, plan.bytes);
    }
    if (plan.action == BlkRequestAction::kGetId) {
      WriteBlkId(t.iov, plan.iovcnt, device_.id, plan.used_len);
      t.used_len = plan.used_len;
    }
    Finish(t, plan.status);
  }

  void Submit(Task& t, IoType type, uint64_t sector, uint64_t bytes) noexcept {
    BdevDesc* desc = device_.desc;
    if (desc == nullptr) return Finish(t, VIRTIO_BLK_S_IOERR);
    const uint64_t offset_blocks = (sector * kBlkSectorBytes) >> block_shift_;
    const uint64_t num_blocks = bytes >> block_shift_;
    t.on_bdev = true;
    ++on_bdev_;
    switch (type) {
      case IoType::kRead:
        return desc->Readv(*channel_, t.iov, t.iovcnt, offset_blocks, num_blocks, &OnBdevDone, &t);
      case IoType::kWrite:
        return desc->Writev(*channel_, t.iov, t.iovcnt, offset_blocks, num_blocks, &OnBdevDone, &t);
      case IoType::kFlush:
        return desc->Flush(*channel_, 0, desc->bdev().block_count(), &OnBdevDone, &t);
      case IoType::kUnmap:
        return desc->Unmap(*channel_, offset_blocks, num_blocks, &OnBdevDone, &t);
      case IoType::kWriteZeroes:
        return desc->WriteZeroes(*channel_, offset_blocks, num_blocks, &OnBdevDone, &t);
      case IoType::kReset:
        break;
    }
  }

  static void OnBdevDone(void* arg, BdevIoStatus status, int /*error_number*/) noexcept {
    Task& t = *static_cast<Task*>(arg);
    VhostBlkQueueOn& q = *t.queue;
    t.on_bdev = false;
    --q.on_bdev_;
    q.Finish(t, StatusOf(status));
    q.MaybeFinishDetach();
  }

  // Writes the status byte and records the used entry; Publish makes it visible. Inlined: it
  // runs once per request, mostly from OnBdevDone.
  [[gnu::always_inline]] void Finish(Task& t, uint8_t status) noexcept {
    if (status != VIRTIO_BLK_S_OK) {
      AddToCounter(counters_.errors);
      t.used_len = 0;
    }
    *t.status = status;
    if (setup_.track_inflight) {
      rte_vhost_set_last_inflight_io_split(setup_.vid, setup_.vring_index, t.id);
      batch_ids_[batch_count_++] = t.id;
    }
    ring_.PushUsed(t.id, t.ring_slots, t.used_len + 1);
    t.in_flight = false;
    --in_flight_;
    publish_pending_ = true;
    if (stopping_) MaybeFinishStop();
  }

  // Makes the pushed completions visible and interrupts the guest if it asked for it.
  bool Publish() noexcept {
    if (!publish_pending_) return false;
    publish_pending_ = false;
    const bool wants_interrupt = ring_.PublishUsed();
    if (setup_.track_inflight) {
      const uint16_t used_idx = ring_.position().last_used_idx;
      for (uint32_t i = 0; i < batch_count_; ++i) {
        rte_vhost_clr_inflight_desc_split(setup_.vid, setup_.vring_index, used_idx, batch_ids_[i]);
      }
      batch_count_ = 0;
    }
    counters_.in_flight.store(in_flight_, std::memory_order_relaxed);
    if (wants_interrupt) {
      interrupt_owed_ = true;
      if (coalescing_delay_tsc_ != 0) UpdateCoalescing();
      if (rte_rdtsc() >= next_interrupt_tsc_) SendInterrupt();
    }
    return true;
  }

  bool SendInterrupt() noexcept {
    interrupt_owed_ = false;
    if (setup_.call_fd < 0) return false;
    uint64_t one = 1;
    if (::write(setup_.call_fd, &one, sizeof(one)) == sizeof(one))
      AddToCounter(counters_.interrupts);
    if (irq_delay_tsc_ != 0) next_interrupt_tsc_ = rte_rdtsc() + irq_delay_tsc_;
    return true;
  }

  // SPDK's coalescing: above `threshold` requests per interval, interrupts are spaced by a
  // delay that grows with the excess (delay_base * (rate - threshold) / threshold).
  void UpdateCoalescing() noexcept {
    const uint64_t now = rte_rdtsc();
    if (now < next_rate_check_tsc_) return;
    const uint64_t requests = counters_.requests.load(std::memory_order_relaxed);
    const uint64_t rate = requests - requests_at_check_;
    requests_at_check_ = requests;
    next_rate_check_tsc_ = now + rte_get_tsc_hz() / kVhostCoalescingChecksPerSecond;
    if (coalescing_threshold_ == 0 || rate <= coalescing_threshold_) {
      irq_delay_tsc_ = 0;
      next_interrupt_tsc_ = 0;
      return;
    }
    irq_delay_tsc_ = coalescing_delay_tsc_ * (rate - coalescing_threshold_) / coalescing_threshold_;
  }

  // Log once and stop popping: the guest broke the ring. Requests in flight still complete.
  bool Break(const char* why) noexcept {
    if (!broken_) {
      broken_ = true;
      PX_LOG(kError, "vhost", "%s: %s; the queue is stopped until the guest resets it", setup_.name,
             why);
    }
    return false;
  }

  void MaybeFinishStop() {
    if (!stopping_ || in_flight_ != 0 || !stop_done_) return;
    Publish();
    poller_.reset();
    channel_.reset();
    CollectKicks();
    auto done = std::move(stop_done_);
    done(ring_.position());  // may destroy this
  }

  void MaybeFinishDetach() {
    if (!detach_done_ || on_bdev_ != 0) return;
    channel_.reset();
    auto done = std::move(detach_done_);
    done();
  }

  VhostBlkQueue& queue_;
  VhostBlkQueueSetup setup_;
  VhostBlkDevice device_;
  Ring ring_;
  const uint32_t block_shift_;
  std::vector<Task> tasks_;
  std::vector<uint16_t> batch_ids_;  // completions since the last publish (inflight tracking)
  uint32_t batch_count_ = 0;
  VhostBlkQueueCounters& counters_;
  IoChannelRef channel_;
  PollerHandle poller_;
  uint32_t in_flight_ = 0;
  uint32_t on_bdev_ = 0;
  bool publish_pending_ = false;
  bool interrupt_owed_ = false;
  bool parked_ = false;
  int park_fd_ = -1;
  uint32_t idle_polls_ = 0;
  bool busy_since_clock_check_ = false;
  uint64_t quiet_since_tsc_ = 0;
  bool stopping_ = false;
  bool broken_ = false;
  absl::AnyInvocable<void(RingPosition)> stop_done_;
  absl::AnyInvocable<void()> detach_done_;
  uint64_t coalescing_delay_tsc_ = 0;
  uint32_t coalescing_threshold_ = 0;
  uint64_t irq_delay_tsc_ = 0;
  uint64_t next_interrupt_tsc_ = 0;
  uint64_t next_rate_check_tsc_ = 0;
  uint64_t requests_at_check_ = 0;
  iovec scratch_[kVhostBlkTaskIovecs];
};

}  // namespace

absl::Status VhostBlkQueue::Start(VhostBlkQueueSetup setup) {
  if (engine_ != nullptr) return absl::FailedPreconditionError(name_ + " is already running");
  retired_engine_.reset();
  if (setup.packed) {
    auto engine = std::make_unique<VhostBlkQueueOn<PackedRingDevice>>(*this, std::move(setup));
    absl::Status s = engine->Start(coalescing_delay_tsc_, coalescing_threshold_);
    if (!s.ok()) return s;
    engine_ = std::move(engine);
  } else {
    auto engine = std::make_unique<VhostBlkQueueOn<SplitRingDevice>>(*this, std::move(setup));
    absl::Status s = engine->Start(coalescing_delay_tsc_, coalescing_threshold_);
    if (!s.ok()) return s;
    engine_ = std::move(engine);
  }
  return absl::OkStatus();
}

void VhostBlkQueue::Stop(absl::AnyInvocable<void(RingPosition)> done) {
  if (engine_ == nullptr) return done(RingPosition{});
  engine_->Stop([this, done = std::move(done)](RingPosition position) mutable {
    // The engine may be inside its own code here (a completion finished the stop): it is
    // retired, not destroyed, and freed at the next Start or with the queue.
    retired_engine_ = std::move(engine_);
    done(position);
  });
}

void VhostBlkQueue::DetachBdev(absl::AnyInvocable<void()> done) {
  if (engine_ == nullptr) return done();
  engine_->DetachBdev(std::move(done));
}

void VhostBlkQueue::SetCapacity(uint64_t sectors) {
  // A stopped queue takes the controller's device, with the new size, when it starts again.
  if (engine_ != nullptr) engine_->SetCapacity(sectors);
}

void VhostBlkQueue::SetCoalescing(uint64_t delay_tsc, uint32_t threshold_per_interval) {
  coalescing_delay_tsc_ = delay_tsc;
  coalescing_threshold_ = threshold_per_interval;
  if (engine_ != nullptr) engine_->SetCoalescing(delay_tsc, threshold_per_interval);
}

rpc::Json VhostBlkQueue::Info() {
  if (engine_ != nullptr) engine_->CollectKicks();
  auto get = [](const std::atomic<uint64_t>& c) { return c.load(std::memory_order_relaxed); };
  return rpc::Json{{"queue", name_},
                   {"thread", thread_->name()},
                   {"running", running()},
                   {"requests", get(counters_.requests)},
                   {"kicks", get(counters_.kicks)},
                   {"interrupts", get(counters_.interrupts)},
                   {"in_flight", get(counters_.in_flight)},
                   {"errors", get(counters_.errors)},
                   {"polls_busy", get(counters_.polls_busy)},
                   {"polls_idle", get(counters_.polls_idle)},
                   {"parks", get(counters_.parks)}};
}

}  // namespace pollux
