// The passthru bdev: each I/O goes to the base bdev as it came, and completes with the base's
// status. This file is the worked example of docs/bdev-module-guide.md; read it top to bottom:
// the per-thread channel, Submit and its completion, the claim, hot remove, examine, config.
#include "pollux/bdev_passthru/bdev_passthru.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/str_format.h"
#include "pollux/bdev/bdev_desc.h"
#include "pollux/env/log.h"

namespace pollux {
namespace {

// Per-thread state of a passthru bdev: this thread's channel of the base. The layer creates one
// on each thread that does I/O on the passthru bdev (CreateChannel, on that thread) and
// destroys it there, so Submit finds it without a lock.
struct PassthruChannel final : ChannelContext {
  IoChannelRef base;  // empty only if the base was already going away
};

class PassthruBdev final : public Bdev {
 public:
  PassthruBdev(BdevProperties properties, std::string base_name)
      : Bdev(PassthruModule::Get(), std::move(properties)), base_name_(std::move(base_name)) {}

  // Opens the base writable and takes this module's write claim on it: from now on nobody else
  // writes to the base behind our back, and its own module cannot delete it (DeleteBdev refuses
  // claimed bdevs). On the app thread, which therefore owns the descriptor.
  absl::Status OpenBase(const std::string& base_name) {
    absl::StatusOr<std::unique_ptr<BdevDesc>> desc = BdevDesc::OpenAndClaim(
        base_name, PassthruModule::Get(), [this](BdevEvent event, Bdev&) { OnBaseEvent(event); });
    if (!desc.ok()) return desc.status();
    base_ = std::move(*desc);
    return absl::OkStatus();
  }

  // The hot path: the I/O itself goes down to the base (BdevDesc::Forward): no second
  // BdevIo, no second set of request checks, no completion callback of ours; the base's
  // completion completes it, counted in both bdevs' statistics. A virtual bdev that must see
  // or change the result (the error and delay modules) submits its own I/O to the base
  // instead (Readv, Writev, ...) with a callback that completes this one.
  void Submit(BdevIo& io) noexcept override {
    IoChannel* channel = io.module_channel<PassthruChannel>().base.get();
    if (channel == nullptr) return io.Complete(BdevIoStatus::kAborted);
    base_->Forward(*channel, io);
  }

  // Whatever the base does (natively or emulated by the layer), passthru does.
  bool IoTypeSupported(IoType type) const override { return base_->bdev().Supports(type); }

  std::unique_ptr<ChannelContext> CreateChannel() override {
    auto channel = std::make_unique<PassthruChannel>();
    channel->base = base_->GetIoChannel();
    return channel;
  }

  void DumpInfo(rpc::Json& driver_specific) const override {
    driver_specific["passthru"] = {{"name", name()}, {"base_bdev_name", base_name_}};
  }

  // Runs once our last descriptor and channel are gone (so no I/O of ours is at the base), on
  // whichever thread that happened. CloseBdevDesc closes the base descriptor on the thread that
  // opened it (the app thread), which lets a removal of the base complete.
  void Destruct(absl::AnyInvocable<void()> done) override {
    CloseBdevDesc(std::move(base_), std::move(done));
  }

 private:
  // On the app thread, where the base descriptor was opened. When the base goes, so do we:
  // our users get remove events and close; then Destruct closes the base descriptor. When it
  // grows or shrinks, so do we, and our users get resize events.
  void OnBaseEvent(BdevEvent event) {
    switch (event) {
      case BdevEvent::kRemove:
        PX_LOG(kNotice, "passthru", "base bdev %s is being removed: removing %s", base_name_,
               name());
        // An error here only means that we are being removed already (a delete raced the base).
        UnregisterBdev(*this, [](absl::Status) {});
        return;
      case BdevEvent::kResize:
        // Refused only for a shrink under our open descriptors: we keep the old size, and I/O
        // beyond the base's new end fails there.
        if (absl::Status s = NotifyBdevBlockCountChange(*this, base_->bdev().block_count());
            !s.ok()) {
          PX_LOG(kWarning, "passthru", "%s keeps %u blocks after base bdev %s resized: %s", name(),
                 block_count(), base_name_, s.message());
        }
        return;
    }
  }

  std::unique_ptr<BdevDesc> base_;
  std::string base_name_;  // the base's own name (the config may have named an alias)
};

// Builds the passthru bdev of `options` over `base` and registers it. On the app thread, with
// `base` just looked up (FindBdev's pointer is valid until this thread moves on).
absl::StatusOr<Bdev*> Attach(const PassthruBdevOptions& options, Bdev& base) {
  // The base's geometry, alignment, transfer limits, boundary and write cache, our identity:
  // the layer then splits and bounces for us exactly as the base needs.
  BdevProperties properties = base.properties();
  properties.name = options.name;
  properties.aliases.clear();
  properties.uuid = options.uuid;
  properties.product_name = "passthru";
  auto bdev = std::make_unique<PassthruBdev>(std::move(properties), base.name());
  if (absl::Status s = bdev->OpenBase(options.base_bdev_name); !s.ok()) {
    return absl::Status(s.code(), absl::StrFormat("cannot attach %s to %s: %s", options.name,
                                                  options.base_bdev_name, s.message()));
  }
  // RegisterBdev lets every module examine the new bdev: a passthru configured over this one
  // attaches now. On failure it destroys the bdev, which closes the base descriptor here.
  return RegisterBdev(std::move(bdev));
}

}  // namespace

POLLUX_BDEV_MODULE(PassthruModule);

PassthruModule::PassthruModule()
    : BdevModule("passthru"),
      configs_(
          *this, [](const PassthruBdevOptions& o) { return o.name; },
          [](const PassthruBdevOptions& o) -> const std::string& { return o.base_bdev_name; },
          &Attach) {}

void PassthruModule::WriteConfig(rpc::Json& config) const {
  for (const PassthruBdevOptions& entry : configs_.all()) {
    rpc::Json params = {{"base_bdev_name", entry.base_bdev_name}, {"name", entry.name}};
    std::string uuid = configs_.UuidToSave(entry, entry.uuid);
    if (!uuid.empty()) params["uuid"] = uuid;
    config.push_back({{"method", "bdev_passthru_create"}, {"params", std::move(params)}});
  }
}

absl::StatusOr<Bdev*> CreatePassthruBdev(const PassthruBdevOptions& options) {
  if (absl::Status s = CheckVirtualBdevNames(options.name, options.base_bdev_name, options.uuid);
      !s.ok()) {
    return s;
  }
  return PassthruModule::Get().configs_.Create(options);
}

void DeletePassthruBdev(std::string_view name, absl::AnyInvocable<void(absl::Status)> done) {
  PassthruModule::Get().configs_.Delete(name, std::move(done));
}

}  // namespace pollux
