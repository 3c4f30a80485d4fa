// The delay bdev: forwards every I/O to its base; a read's or write's completion is then held
// on its thread, in one of four FIFO lists (average and p99, read and write), until the base's
// completion time plus the latency (SPDK's semantics), and released by that thread's poller.
//
// The poller is timed, with a period of a twentieth of the smallest latency (1 us to 10 ms):
// a completion is late by at most that, and in interrupt mode the reactor sleeps between runs.
// It is paused while nothing is held. Like the error bdev, the delay bdev is its own IoDevice
// besides the layer's channel, so that a reset can reach every thread's held completions and a
// latency change every thread's poller.
#include "pollux/bdev_delay/bdev_delay.h"

#include <rte_cycles.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <memory>
#include <utility>

#include "absl/strings/str_format.h"
#include "pollux/bdev/bdev_desc.h"
#include "pollux/bdev/bdev_io_list.h"
#include "pollux/env/log.h"
#include "pollux/reactor/poller.h"
#include "pollux/reactor/thread.h"

namespace pollux {
namespace {

constexpr int kNoDelay = -1;

// Per-I/O scratch space (DelayModule::io_context_size).
struct DelayIo {
  BdevIo* next = nullptr;
  uint64_t deadline_tsc = 0;
  BdevIoStatus status = BdevIoStatus::kSuccess;  // the base's, delivered at the deadline
  int error_number = 0;
  int8_t latency = kNoDelay;                     // a DelayLatency, or kNoDelay
  bool at_base = false;  // its copy is at the base (an abort goes there)
};

DelayIo& Context(BdevIo& io) { return io.module_context<DelayIo>(); }

// A FIFO of held I/Os, linked through their DelayIo. With a constant latency the deadlines
// grow along it, so only the head needs checking (after a latency change the head may hold
// later ones back for a while: SPDK's "dam", wanted when the point is to trigger a timeout).
uint64_t UsToTsc(uint64_t us) {
  // Rounded up, so that a held I/O is never released before its latency has passed; split so
  // that an hour at any TSC rate does not overflow.
  uint64_t hz = rte_get_tsc_hz();
  return us / 1'000'000 * hz + ((us % 1'000'000) * hz + 999'999) / 1'000'000;
}

uint64_t NextRandom(uint64_t& state) {  // xorshift64*: plenty for "one in a hundred"
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return state * 2685821657736338717ULL;
}

class DelayBdev;

// One thread's state of a delay bdev (its IoDevice channel).
struct DelayChannel final : ChannelContext {
  DelayBdev* bdev = nullptr;
  IoChannelRef base;
  BdevIoList<DelayIo> held[kDelayLatencyCount];
  size_t held_count = 0;
  PollerHandle poller;
  std::chrono::microseconds period{0};
  uint64_t random = 0;

  void Hold(BdevIo& io, int latency) {
    held[latency].Push(io);
    if (held_count++ == 0) poller->Resume();
  }

  // The poller: releases every held I/O whose time has come.
  PollResult Release() {
    uint64_t now = rte_rdtsc();
    size_t released = 0;
    for (BdevIoList<DelayIo>& list : held) {
      while (!list.empty() && Context(*list.front()).deadline_tsc <= now) {
        BdevIo* io = list.Pop();
        ++released;
        io->Complete(Context(*io).status, Context(*io).error_number);
      }
    }
    held_count -= released;
    if (held_count == 0) poller->Pause();
    return released > 0 ? PollResult::kBusy : PollResult::kIdle;
  }

  // Takes `io` off its held list (an abort); false when it is not held.
  bool Unhold(BdevIo& io) {
    int latency = Context(io).latency;
    if (latency == kNoDelay || !held[latency].Remove(io)) return false;
    if (--held_count == 0) poller->Pause();
    return true;
  }

  // Completes every held I/O with kAborted (a reset).
  void AbortAll() {
    for (BdevIoList<DelayIo>& list : held) {
      while (!list.empty()) list.Pop()->Complete(BdevIoStatus::kAborted);
    }
    held_count = 0;
    poller->Pause();
  }

  // (Re)registers the poller with `new_period`, on this thread.
  void StartPoller(const std::string& name, std::chrono::microseconds new_period) {
    PollerOptions options;
    options.period = new_period;
    period = new_period;
    poller = PollerHandle(Thread::Current()->RegisterPoller(
        "delay " + name, [this] { return Release(); }, std::move(options)));
    if (held_count == 0) poller->Pause();
  }
};

// What the layer's channel of the bdev holds: this thread's DelayChannel.
struct DelayChannelRef final : ChannelContext {
  IoChannelRef ref;
  DelayChannel* channel = nullptr;
};

DelayChannel& Channel(BdevIo& io) { return *io.module_channel<DelayChannelRef>().channel; }

class DelayBdev final : public Bdev, private IoDevice {
 public:
  DelayBdev(BdevProperties properties, std::string base_name, const uint64_t latency_us[])
      : Bdev(DelayModule::Get(), properties),
        IoDevice("delay bdev " + properties.name),
        base_name_(std::move(base_name)) {
    for (int i = 0; i < kDelayLatencyCount; ++i) {
      SetLatency(static_cast<DelayLatency>(i), latency_us[i]);
    }
    RegisterIoDevice();
  }

  absl::Status OpenBase(const std::string& base_name) {
    absl::StatusOr<std::unique_ptr<BdevDesc>> desc = BdevDesc::OpenAndClaim(
        base_name, DelayModule::Get(), [this](BdevEvent event, Bdev&) { OnBaseEvent(event); });
    if (!desc.ok()) return desc.status();
    base_ = std::move(*desc);
    return absl::OkStatus();
  }

  void Submit(BdevIo& io) noexcept override {
    DelayChannel& channel = Channel(io);
    DelayIo& context = Context(io);
    context.at_base = false;
    // SPDK draws the p99 lottery for every I/O and uses it for reads and writes only.
    bool p99 = NextRandom(channel.random) % 100 == 0;
    switch (io.type()) {
      case IoType::kRead:
        context.latency =
            static_cast<int8_t>(p99 ? DelayLatency::kP99Read : DelayLatency::kAvgRead);
        break;
      case IoType::kWrite:
        context.latency =
            static_cast<int8_t>(p99 ? DelayLatency::kP99Write : DelayLatency::kAvgWrite);
        break;
      case IoType::kReset:
        // Held completions are aborted on every thread first (SPDK's delay bdev), then the base
        // resets; a reset is never delayed itself.
        context.latency = kNoDelay;
        return ForEachChannel(
            static_cast<IoDevice&>(*this),
            [](IoChannel& io_channel) { io_channel.context<DelayChannel>().AbortAll(); },
            [&io](absl::Status) { Forward(io, Channel(io)); });
      default:
        context.latency = kNoDelay;
        break;
    }
    Forward(io, channel);
  }

  bool IoTypeSupported(IoType type) const override { return base_->bdev().Supports(type); }

  // SPDK's vbdev_delay_abort: a held completion is ours to abort; an I/O still at the base is
  // the base's, asked under the cb_arg we gave it (&io). An aborted I/O is not delayed.
  void Abort(BdevIo& io, BdevIoCallback done, void* done_arg) noexcept override {
    DelayChannel& channel = Channel(io);
    if (Context(io).at_base) return base_->Abort(*channel.base, &io, done, done_arg);
    if (!channel.Unhold(io)) return done(done_arg, BdevIoStatus::kFailed, ENOENT);
    io.Complete(BdevIoStatus::kAborted);
    done(done_arg, BdevIoStatus::kSuccess, 0);
  }

  std::unique_ptr<ChannelContext> CreateChannel() override {
    auto context = std::make_unique<DelayChannelRef>();
    context->ref = GetIoChannel(static_cast<IoDevice&>(*this));
    context->channel = &context->ref->context<DelayChannel>();
    return context;
  }

  void DumpInfo(rpc::Json& driver_specific) const override {
    rpc::Json info = {{"name", name()}, {"base_bdev_name", base_name_}};
    for (int i = 0; i < kDelayLatencyCount; ++i) {
      auto latency = static_cast<DelayLatency>(i);
      info[absl::StrFormat("%s_latency", DelayLatencyName(latency))] = latency_us(latency);
    }
    driver_specific["delay"] = std::move(info);
  }

  void Destruct(absl::AnyInvocable<void()> done) override {
    UnregisterIoDevice([this, done = std::move(done)]() mutable {
      CloseBdevDesc(std::move(base_), std::move(done));
    });
  }

  uint64_t latency_us(DelayLatency latency) const {
    return latency_us_[static_cast<int>(latency)].load(std::memory_order_relaxed);
  }

  // App thread. I/O threads read the ticks relaxed: a latency is one value, and an I/O that
  // sees the old one a moment longer is as good as one that completed a moment earlier.
  void SetLatency(DelayLatency latency, uint64_t us) {
    latency_us_[static_cast<int>(latency)].store(us, std::memory_order_relaxed);
    latency_tsc_[static_cast<int>(latency)].store(UsToTsc(us), std::memory_order_relaxed);
  }

  // The poller period that fits the latencies: a twentieth of the smallest non-zero one.
  std::chrono::microseconds PollPeriod() const {
    uint64_t smallest = 0;
    for (int i = 0; i < kDelayLatencyCount; ++i) {
      uint64_t us = latency_us(static_cast<DelayLatency>(i));
      if (us != 0 && (smallest == 0 || us < smallest)) smallest = us;
    }
    if (smallest == 0) return std::chrono::milliseconds(10);  // nothing is ever held
    return std::chrono::microseconds(std::clamp<uint64_t>(smallest / 20, 1, 10'000));
  }

  // After a latency change: every thread's poller gets the period that fits. done on the
  // calling thread.
  void RetunePollers(absl::AnyInvocable<void(absl::Status)> done) {
    std::chrono::microseconds period = PollPeriod();
    ForEachChannel(
        static_cast<IoDevice&>(*this),
        [period](IoChannel& io_channel) {
          DelayChannel& channel = io_channel.context<DelayChannel>();
          if (channel.period != period) channel.StartPoller(channel.bdev->name(), period);
        },
        std::move(done));
  }

 private:
  static void Forward(BdevIo& io, DelayChannel& channel) {
    Context(io).at_base = true;
    channel.bdev->base_->SubmitCopy(*channel.base, io, &BaseDone, &io);
  }

  // On the submitting thread: the latency starts now, when the base is done (SPDK's rule).
  static void BaseDone(void* cb_arg, BdevIoStatus status, int error_number) {
    BdevIo& io = *static_cast<BdevIo*>(cb_arg);
    DelayIo& context = Context(io);
    context.at_base = false;
    if (context.latency == kNoDelay || status == BdevIoStatus::kAborted) {
      return io.Complete(status, error_number);
    }
    DelayChannel& channel = Channel(io);
    uint64_t ticks = channel.bdev->latency_tsc_[context.latency].load(std::memory_order_relaxed);
    // No latency and nobody ahead in the list: nothing to wait for.
    if (ticks == 0 && channel.held[context.latency].empty()) {
      return io.Complete(status, error_number);
    }
    context.status = status;
    context.error_number = error_number;
    context.deadline_tsc = rte_rdtsc() + ticks;
    channel.Hold(io, context.latency);
  }

  std::unique_ptr<ChannelContext> CreateChannelContext() override {
    auto channel = std::make_unique<DelayChannel>();
    channel->bdev = this;
    channel->base = base_->GetIoChannel();
    channel->random = rte_rdtsc() | 1;  // xorshift needs a non-zero state
    channel->StartPoller(name(), PollPeriod());
    return channel;
  }

  void OnBaseEvent(BdevEvent event) {
    if (event != BdevEvent::kRemove) return;
    PX_LOG(kNotice, "delay", "base bdev %s is being removed: removing %s", base_name_, name());
    UnregisterBdev(*this, [](absl::Status) {});
  }

  std::unique_ptr<BdevDesc> base_;
  std::string base_name_;
  std::atomic<uint64_t> latency_us_[kDelayLatencyCount];
  std::atomic<uint64_t> latency_tsc_[kDelayLatencyCount];
};

absl::StatusOr<Bdev*> Attach(const DelayBdevOptions& options, Bdev& base) {
  BdevProperties properties = base.properties();
  properties.name = options.name;
  properties.aliases.clear();
  properties.uuid = options.uuid;
  properties.product_name = "delay";
  auto bdev = std::make_unique<DelayBdev>(std::move(properties), base.name(), options.latency_us);
  if (absl::Status s = bdev->OpenBase(options.base_bdev_name); !s.ok()) {
    return absl::Status(s.code(), absl::StrFormat("cannot attach %s to %s: %s", options.name,
                                                  options.base_bdev_name, s.message()));
  }
  return RegisterBdev(std::move(bdev));
}

absl::Status CheckLatency(DelayLatency latency, uint64_t us) {
  if (us > kMaxDelayLatencyUs) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s_latency %u us is more than an hour (%u us)", DelayLatencyName(latency),
                        us, kMaxDelayLatencyUs));
  }
  return absl::OkStatus();
}

}  // namespace

POLLUX_BDEV_MODULE(DelayModule);

const char* DelayLatencyName(DelayLatency latency) {
  switch (latency) {
    case DelayLatency::kAvgRead:
      return "avg_read";
    case DelayLatency::kP99Read:
      return "p99_read";
    case DelayLatency::kAvgWrite:
      return "avg_write";
    case DelayLatency::kP99Write:
      return "p99_write";
  }
  return "unknown";
}

size_t DelayModule::io_context_size() const { return sizeof(DelayIo); }

DelayModule::DelayModule()
    : BdevModule("delay"),
      configs_(
          *this, [](const DelayBdevOptions& o) { return o.name; },
          [](const DelayBdevOptions& o) -> const std::string& { return o.base_bdev_name; },
          &Attach) {}

void DelayModule::WriteConfig(rpc::Json& config) const {
  for (const DelayBdevOptions& entry : configs_.all()) {
    rpc::Json params = {{"base_bdev_name", entry.base_bdev_name}, {"name", entry.name}};
    for (int i = 0; i < kDelayLatencyCount; ++i) {
      params[absl::StrFormat("%s_latency", DelayLatencyName(static_cast<DelayLatency>(i)))] =
          entry.latency_us[i];
    }
    std::string uuid = configs_.UuidToSave(entry, entry.uuid);
    if (!uuid.empty()) params["uuid"] = uuid;
    config.push_back({{"method", "bdev_delay_create"}, {"params", std::move(params)}});
  }
}

absl::StatusOr<Bdev*> CreateDelayBdev(const DelayBdevOptions& options) {
  if (absl::Status s = CheckVirtualBdevNames(options.name, options.base_bdev_name, options.uuid);
      !s.ok()) {
    return s;
  }
  for (int i = 0; i < kDelayLatencyCount; ++i) {
    if (absl::Status s = CheckLatency(static_cast<DelayLatency>(i), options.latency_us[i]);
        !s.ok()) {
      return s;
    }
  }
  for (auto [avg, p99] : {std::pair(DelayLatency::kAvgRead, DelayLatency::kP99Read),
                          std::pair(DelayLatency::kAvgWrite, DelayLatency::kP99Write)}) {
    uint64_t avg_us = options.latency_us[static_cast<int>(avg)];
    uint64_t p99_us = options.latency_us[static_cast<int>(p99)];
    if (p99_us < avg_us) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s_latency %u us is less than %s_latency %u us: the p99 latency must be at least "
          "the average",
          DelayLatencyName(p99), p99_us, DelayLatencyName(avg), avg_us));
    }
  }
  return DelayModule::Get().configs_.Create(options);
}

void DeleteDelayBdev(std::string_view name, absl::AnyInvocable<void(absl::Status)> done) {
  DelayModule::Get().configs_.Delete(name, std::move(done));
}

void UpdateDelayLatency(std::string_view name, DelayLatency latency, uint64_t latency_us,
                        absl::AnyInvocable<void(absl::Status)> done) {
  if (absl::Status s = CheckLatency(latency, latency_us); !s.ok()) return done(s);
  DelayModule& module = DelayModule::Get();
  Bdev* bdev = FindBdev(name);
  if (bdev != nullptr && &bdev->module() != &module) {
    return done(absl::InvalidArgumentError(absl::StrFormat(
        "bdev %s is not a delay bdev (its module is %s)", name, bdev->module().name())));
  }
  DelayBdevOptions* config = module.configs_.Find(name);
  if (bdev == nullptr && config == nullptr) {
    return done(absl::NotFoundError(absl::StrFormat("bdev %s not found", name)));
  }
  // The configuration too, so that save_config writes what the bdev does now.
  if (config != nullptr) config->latency_us[static_cast<int>(latency)] = latency_us;
  if (bdev == nullptr) return done(absl::OkStatus());
  auto* delay = static_cast<DelayBdev*>(bdev);
  delay->SetLatency(latency, latency_us);
  delay->RetunePollers(std::move(done));
}

}  // namespace pollux
