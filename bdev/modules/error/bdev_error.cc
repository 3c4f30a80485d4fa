// The error bdev: passthru plus an injection table consulted on every submission.
//
// Per thread, the bdev has its own IoDevice channel (ErrorChannel) holding the base channel,
// the I/Os that "pending" holds and the count of I/Os at the base (for queue_depth). It is an
// IoDevice of its own, besides the layer's channel, so that ForEachChannel can reach every
// thread's held I/Os: to resume them (clear), to abort them (reset, removal).
#include "pollux/bdev_error/bdev_error.h"

#include <algorithm>
#include <atomic>
#include <limits>
#include <memory>
#include <utility>

#include "absl/strings/str_format.h"
#include "pollux/bdev/bdev_desc.h"
#include "pollux/bdev/bdev_io_list.h"
#include "pollux/env/log.h"

namespace pollux {
namespace {

// Per-I/O scratch space (ErrorModule::io_context_size): what the injection decided, and the
// link of the held list.
struct ErrorIo {
  BdevIo* next = nullptr;
  ErrorInjectionType error = ErrorInjectionType::kNone;
  uint8_t corrupt_value = 0;
  uint64_t corrupt_offset = 0;
};

ErrorIo& Context(BdevIo& io) { return io.module_context<ErrorIo>(); }

class ErrorBdev;

// One thread's state of an error bdev (its IoDevice channel).
struct ErrorChannel final : ChannelContext {
  ErrorBdev* bdev = nullptr;
  IoChannelRef base;            // this thread's channel of the base
  uint64_t at_base = 0;         // I/Os submitted to the base and not back yet
  BdevIoList<ErrorIo> held;     // I/Os held by kPending, oldest first

  ~ErrorChannel() override {
    // Users wait for their I/O before letting their channel go, so nothing can be held here.
    if (!held.empty()) PX_LOG(kError, "error", "channel destroyed with held I/Os");
  }
};

// What the layer's channel of the bdev (Bdev::CreateChannel) holds: a reference to this
// thread's ErrorChannel, found without a lookup on every I/O.
struct ErrorChannelRef final : ChannelContext {
  IoChannelRef ref;
  ErrorChannel* channel = nullptr;
};

ErrorChannel& Channel(BdevIo& io) { return *io.module_channel<ErrorChannelRef>().channel; }

// One I/O type's injection, written by the app thread and read by every I/O thread.
// `remaining` is published last (release) and read first (acquire), so a thread that sees a
// count sees the fields written before it.
struct Injection {
  static constexpr uint64_t kAlways = std::numeric_limits<uint64_t>::max();
  std::atomic<uint64_t> remaining{0};
  std::atomic<ErrorInjectionType> type{ErrorInjectionType::kNone};
  std::atomic<uint64_t> queue_depth{0};
  std::atomic<uint64_t> corrupt_offset{0};
  std::atomic<uint8_t> corrupt_value{0};
};

// XORs the byte `offset` of the request's data with `value` (nothing when past the end).
void Corrupt(BdevIo& io, uint64_t offset, uint8_t value) {
  for (int i = 0; i < io.iovcnt(); ++i) {
    const iovec& iov = io.iovs()[i];
    if (offset < iov.iov_len) {
      static_cast<uint8_t*>(iov.iov_base)[offset] ^= value;
      return;
    }
    offset -= iov.iov_len;
  }
}

class ErrorBdev final : public Bdev, private IoDevice {
 public:
  ErrorBdev(BdevProperties properties, std::string base_name)
      : Bdev(ErrorModule::Get(), properties),
        IoDevice("error bdev " + properties.name),
        base_name_(std::move(base_name)) {
    RegisterIoDevice();
  }

  absl::Status OpenBase(const std::string& base_name) {
    absl::StatusOr<std::unique_ptr<BdevDesc>> desc = BdevDesc::OpenAndClaim(
        base_name, ErrorModule::Get(), [this](BdevEvent event, Bdev&) { OnBaseEvent(event); });
    if (!desc.ok()) return desc.status();
    base_ = std::move(*desc);
    return absl::OkStatus();
  }

  // A read-only descriptor on ourselves, for its remove event: the layer tells a bdev's
  // descriptors, not the bdev, that it is being removed, and held I/Os must be aborted then or
  // their callers would wait for them forever (and the removal for the callers).
  void WatchRemoval() {
    absl::StatusOr<std::unique_ptr<BdevDesc>> desc =
        BdevDesc::Open(name(), /*writable=*/false, [this](BdevEvent, Bdev&) { OnRemoving(); });
    if (desc.ok()) {
      self_ = std::move(*desc);
    } else {
      PX_LOG(kWarning, "error", "%s: held I/Os will not be aborted on removal: %s", name(),
             desc.status().message());
    }
  }

  void Submit(BdevIo& io) noexcept override {
    ErrorChannel& channel = Channel(io);
    ErrorIo& context = Context(io);
    context.error = TakeInjection(io.type(), channel, context);
    switch (context.error) {
      case ErrorInjectionType::kFailure:
        return io.Complete(BdevIoStatus::kFailed);
      case ErrorInjectionType::kNoMemory:
        return io.Complete(BdevIoStatus::kNoMemory);
      case ErrorInjectionType::kPending:
        // After the removal walk started, holding would be forever: abort instead. The walk
        // reaches this thread through a message, so from then on this load sees true.
        if (removing_.load(std::memory_order_relaxed)) return io.Complete(BdevIoStatus::kAborted);
        return channel.held.Push(io);
      case ErrorInjectionType::kCorruptData:
        if (io.type() == IoType::kWrite) Corrupt(io, context.corrupt_offset, context.corrupt_value);
        break;
      case ErrorInjectionType::kNone:
        break;
    }
    if (io.type() == IoType::kReset) return Reset(io);
    Forward(io, channel);
  }

  bool IoTypeSupported(IoType type) const override { return base_->bdev().Supports(type); }

  // A held I/O (kPending) is ours to abort; any other is at the base (or already done there),
  // whose layer knows it by the cb_arg we submitted its copy with (&io) and answers.
  void Abort(BdevIo& io, BdevIoCallback done, void* done_arg) noexcept override {
    ErrorChannel& channel = Channel(io);
    if (!channel.held.Remove(io)) return base_->Abort(*channel.base, &io, done, done_arg);
    io.Complete(BdevIoStatus::kAborted);
    done(done_arg, BdevIoStatus::kSuccess, 0);
  }

  std::unique_ptr<ChannelContext> CreateChannel() override {
    auto context = std::make_unique<ErrorChannelRef>();
    context->ref = GetIoChannel(static_cast<IoDevice&>(*this));
    context->channel = &context->ref->context<ErrorChannel>();
    return context;
  }

  void DumpInfo(rpc::Json& driver_specific) const override {
    driver_specific["error_disk"] = {{"base_bdev", base_name_}};
  }

  // After every descriptor and layer channel is gone: wait for our own channels (they hold the
  // base's), then close the base on its thread.
  void Destruct(absl::AnyInvocable<void()> done) override {
    UnregisterIoDevice([this, done = std::move(done)]() mutable {
      CloseBdevDesc(std::move(base_), std::move(done));
    });
  }

  // ---- Injection control, on the app thread ----

  void Arm(IoType io_type, const ErrorInjection& injection) {
    Injection& slot = injections_[static_cast<int>(io_type)];
    // Disarm first, so that no I/O thread pairs the old count with the new fields.
    slot.remaining.store(0, std::memory_order_relaxed);
    slot.type.store(injection.type, std::memory_order_relaxed);
    slot.queue_depth.store(injection.queue_depth, std::memory_order_relaxed);
    slot.corrupt_offset.store(injection.corrupt_offset, std::memory_order_relaxed);
    slot.corrupt_value.store(injection.corrupt_value, std::memory_order_relaxed);
    slot.remaining.store(injection.always ? Injection::kAlways : injection.count,
                         std::memory_order_release);
  }

  // Disarms (every injection, or only kPending ones) and lets every thread's held I/Os go to
  // the base.
  void Release(bool pending_only, absl::AnyInvocable<void(absl::Status)> done) {
    for (Injection& slot : injections_) {
      if (!pending_only ||
          slot.type.load(std::memory_order_relaxed) == ErrorInjectionType::kPending) {
        slot.remaining.store(0, std::memory_order_relaxed);
      }
    }
    ForEachChannel(
        static_cast<IoDevice&>(*this),
        [](IoChannel& io_channel) {
          ErrorChannel& channel = io_channel.context<ErrorChannel>();
          while (BdevIo* io = channel.held.Pop()) Forward(*io, channel);
        },
        std::move(done));
  }

 private:
  // Decides the fate of one I/O: usually a single relaxed-cost load that finds nothing armed.
  ErrorInjectionType TakeInjection(IoType io_type, const ErrorChannel& channel, ErrorIo& context) {
    Injection& slot = injections_[static_cast<int>(io_type)];
    uint64_t left = slot.remaining.load(std::memory_order_acquire);
    if (left == 0) return ErrorInjectionType::kNone;
    if (channel.at_base < slot.queue_depth.load(std::memory_order_relaxed)) {
      return ErrorInjectionType::kNone;
    }
    // Several threads may race for the last counts: each decrement is one compare-and-swap,
    // and a thread that loses simply retries with the value it found.
    while (left != Injection::kAlways) {
      if (left == 0) return ErrorInjectionType::kNone;
      if (slot.remaining.compare_exchange_weak(left, left - 1, std::memory_order_acquire)) break;
    }
    context.corrupt_offset = slot.corrupt_offset.load(std::memory_order_relaxed);
    context.corrupt_value = slot.corrupt_value.load(std::memory_order_relaxed);
    return slot.type.load(std::memory_order_relaxed);
  }

  static void Forward(BdevIo& io, ErrorChannel& channel) {
    ++channel.at_base;
    channel.bdev->base_->SubmitCopy(*channel.base, io, &BaseDone, &io);
  }

  // On the submitting thread, as every base completion.
  static void BaseDone(void* cb_arg, BdevIoStatus status, int error_number) {
    BdevIo& io = *static_cast<BdevIo*>(cb_arg);
    --Channel(io).at_base;
    const ErrorIo& context = Context(io);
    if (status == BdevIoStatus::kSuccess && io.type() == IoType::kRead &&
        context.error == ErrorInjectionType::kCorruptData) {
      Corrupt(io, context.corrupt_offset, context.corrupt_value);
    }
    io.Complete(status, error_number);
  }

  // SPDK's error bdev: a reset aborts every held I/O, on every thread; then the base resets.
  void Reset(BdevIo& io) {
    AbortHeld([&io](absl::Status) { Forward(io, Channel(io)); });
  }

  void AbortHeld(absl::AnyInvocable<void(absl::Status)> done) {
    ForEachChannel(
        static_cast<IoDevice&>(*this),
        [](IoChannel& io_channel) {
          ErrorChannel& channel = io_channel.context<ErrorChannel>();
          while (BdevIo* io = channel.held.Pop()) io->Complete(BdevIoStatus::kAborted);
        },
        std::move(done));
  }

  std::unique_ptr<ChannelContext> CreateChannelContext() override {
    auto channel = std::make_unique<ErrorChannel>();
    channel->bdev = this;
    channel->base = base_->GetIoChannel();
    return channel;
  }

  // On the app thread: the base goes, so do we (see passthru).
  void OnBaseEvent(BdevEvent event) {
    if (event != BdevEvent::kRemove) return;
    PX_LOG(kNotice, "error", "base bdev %s is being removed: removing %s", base_name_, name());
    UnregisterBdev(*this, [](absl::Status) {});
  }

  // On the app thread, when our own removal starts (by any path: RPC, base removal, shutdown).
  void OnRemoving() {
    removing_.store(true, std::memory_order_relaxed);
    // Our own descriptor closes last, so that the bdev outlives the walk.
    AbortHeld([this](absl::Status) { self_.reset(); });
  }

  std::unique_ptr<BdevDesc> base_;
  std::unique_ptr<BdevDesc> self_;
  std::string base_name_;
  std::atomic<bool> removing_{false};
  Injection injections_[kIoTypeCount];
};

absl::StatusOr<Bdev*> Attach(const ErrorBdevOptions& options, Bdev& base) {
  BdevProperties properties = base.properties();
  properties.name = ErrorBdevName(options.base_name);
  properties.aliases.clear();
  properties.uuid = options.uuid;
  properties.product_name = "Error Injection Disk";
  auto bdev = std::make_unique<ErrorBdev>(std::move(properties), base.name());
  if (absl::Status s = bdev->OpenBase(options.base_name); !s.ok()) {
    return absl::Status(
        s.code(), absl::StrFormat("cannot attach %s to %s: %s", ErrorBdevName(options.base_name),
                                  options.base_name, s.message()));
  }
  ErrorBdev* raw = bdev.get();
  absl::StatusOr<Bdev*> registered = RegisterBdev(std::move(bdev));
  if (registered.ok()) raw->WatchRemoval();
  return registered;
}

// The error bdev `name`, or an error that says why there is none.
absl::StatusOr<ErrorBdev*> FindErrorBdev(std::string_view name) {
  Bdev* bdev = FindBdev(name);
  if (bdev == nullptr) return absl::NotFoundError(absl::StrFormat("bdev %s not found", name));
  if (&bdev->module() != &ErrorModule::Get()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "bdev %s is not an error bdev (its module is %s)", name, bdev->module().name()));
  }
  return static_cast<ErrorBdev*>(bdev);
}

}  // namespace

POLLUX_BDEV_MODULE(ErrorModule);

std::string ErrorBdevName(std::string_view base_name) {
  return absl::StrFormat("EE_%s", base_name);
}

size_t ErrorModule::io_context_size() const { return sizeof(ErrorIo); }

ErrorModule::ErrorModule()
    : BdevModule("error"),
      configs_(
          *this, [](const ErrorBdevOptions& o) { return ErrorBdevName(o.base_name); },
          [](const ErrorBdevOptions& o) -> const std::string& { return o.base_name; }, &Attach) {}

void ErrorModule::WriteConfig(rpc::Json& config) const {
  for (const ErrorBdevOptions& entry : configs_.all()) {
    rpc::Json params = {{"base_name", entry.base_name}};
    std::string uuid = configs_.UuidToSave(entry, entry.uuid);
    if (!uuid.empty()) params["uuid"] = uuid;
    config.push_back({{"method", "bdev_error_create"}, {"params", std::move(params)}});
  }
}

absl::StatusOr<Bdev*> CreateErrorBdev(const ErrorBdevOptions& options) {
  if (absl::Status s =
          CheckVirtualBdevNames(ErrorBdevName(options.base_name), options.base_name, options.uuid);
      !s.ok()) {
    return s;
  }
  return ErrorModule::Get().configs_.Create(options);
}

void DeleteErrorBdev(std::string_view name, absl::AnyInvocable<void(absl::Status)> done) {
  ErrorModule::Get().configs_.Delete(name, std::move(done));
}

absl::Status InjectError(std::string_view name, std::optional<IoType> io_type,
                         const ErrorInjection& injection) {
  if (injection.type == ErrorInjectionType::kNone) {
    return absl::InvalidArgumentError("no error type given");
  }
  if (injection.type == ErrorInjectionType::kCorruptData && injection.corrupt_value == 0) {
    return absl::InvalidArgumentError("corrupt_value must not be 0 (it is XORed into the data)");
  }
  absl::StatusOr<ErrorBdev*> bdev = FindErrorBdev(name);
  if (!bdev.ok()) return bdev.status();
  if (io_type) {
    (*bdev)->Arm(*io_type, injection);
  } else {
    // SPDK's "all": the data types; a reset is hit only when named.
    for (int type = 0; type < kIoTypeCount; ++type) {
      auto each = static_cast<IoType>(type);
      if (each != IoType::kReset) (*bdev)->Arm(each, injection);
    }
  }
  return absl::OkStatus();
}

void ClearErrors(std::string_view name, absl::AnyInvocable<void(absl::Status)> done) {
  absl::StatusOr<ErrorBdev*> bdev = FindErrorBdev(name);
  if (!bdev.ok()) return done(bdev.status());
  (*bdev)->Release(/*pending_only=*/false, std::move(done));
}

void ResumePendingErrors(std::string_view name, absl::AnyInvocable<void(absl::Status)> done) {
  absl::StatusOr<ErrorBdev*> bdev = FindErrorBdev(name);
  if (!bdev.ok()) return done(bdev.status());
  (*bdev)->Release(/*pending_only=*/true, std::move(done));
}

}  // namespace pollux
