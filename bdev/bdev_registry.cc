#include "bdev_registry.h"

#include <rte_random.h>

#include <algorithm>
#include <bit>
#include <cctype>

#include "absl/strings/str_format.h"
#include "bdev_examine.h"
#include "bdev_layer.h"
#include "bdev_state.h"
#include "pollux/bdev/bdev_module.h"
#include "pollux/env/log.h"
#include "pollux/reactor/thread.h"

namespace pollux {
namespace {

std::string GenerateUuid() {
  uint64_t high = rte_rand();
  uint64_t low = rte_rand();
  high = (high & ~0xf000ULL) | 0x4000ULL;                           // version 4
  low = (low & ~(0xc000ULL << 48)) | (0x8000ULL << 48);            // RFC 4122 variant
  return absl::StrFormat("%08x-%04x-%04x-%04x-%012x", high >> 32, (high >> 16) & 0xffff,
                         high & 0xffff, low >> 48, low & 0xffffffffffffULL);
}

// Checks the form and keeps the UUID in lower case, as it is printed.
bool NormalizeUuid(std::string& uuid) {
  if (!IsValidUuid(uuid)) return false;
  for (char& c : uuid) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return true;
}

uint32_t MaskOf(IoType type) { return 1u << static_cast<int>(type); }

}  // namespace

BdevRegistry& BdevRegistry::Get() {
  static BdevRegistry registry;
  return registry;
}

absl::Status BdevRegistry::Validate(BdevProperties& p) {
  if (p.name.empty()) return absl::InvalidArgumentError("a bdev needs a name");
  if (p.block_size < 512 || p.block_size > 65536 || !std::has_single_bit(p.block_size)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "bdev %s: block size %u is not a power of two from 512 to 65536", p.name, p.block_size));
  }
  if (p.block_count == 0) {
    return absl::InvalidArgumentError(absl::StrFormat("bdev %s: block count is 0", p.name));
  }
  if (p.block_count > (UINT64_MAX >> 16)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("bdev %s: block count %lu is too large", p.name, p.block_count));
  }
  if (p.required_alignment == 0 || !std::has_single_bit(p.required_alignment) ||
      p.required_alignment > p.block_size) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "bdev %s: required alignment %u is not a power of two no larger than the block size",
        p.name, p.required_alignment));
  }
  if (p.uuid.empty()) {
    p.uuid = GenerateUuid();
  } else if (!NormalizeUuid(p.uuid)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "bdev %s: uuid \"%s\" is not of the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", p.name,
        p.uuid));
  }
  return absl::OkStatus();
}

absl::StatusOr<Bdev*> BdevRegistry::Register(std::unique_ptr<Bdev> bdev) {
  if (!BdevLayerInitialized()) {
    return absl::FailedPreconditionError("the bdev layer is not running");
  }
  if (absl::Status s = Validate(bdev->properties_); !s.ok()) return s;
  for (int t = 0; t < kIoTypeCount; ++t) {
    if (bdev->IoTypeSupported(static_cast<IoType>(t))) {
      bdev->module_supported_mask_ |= MaskOf(static_cast<IoType>(t));
    }
  }
  uint32_t mask = bdev->module_supported_mask_;
  if (mask & MaskOf(IoType::kWrite)) mask |= MaskOf(IoType::kWriteZeroes);
  if (!bdev->write_cache()) mask |= MaskOf(IoType::kFlush);
  bdev->supported_mask_ = mask;

  Bdev* raw = bdev.get();
  {
    std::lock_guard lock(mutex_);
    std::vector<std::string> names = bdev->aliases();
    names.insert(names.begin(), bdev->name());
    for (size_t i = 0; i < names.size(); ++i) {
      if (names_.count(names[i]) != 0 ||
          std::find(names.begin(), names.begin() + i, names[i]) != names.begin() + i) {
        return absl::AlreadyExistsError(
            absl::StrFormat("bdev name %s already exists", names[i]));
      }
    }
    bdev->state_ = std::make_unique<BdevState>(*bdev);
    bdev->state_->channels.RegisterIoDevice();
    for (const std::string& name : names) names_.emplace(name, raw);
    bdevs_.push_back(std::move(bdev));
  }
  PX_LOG(kInfo, "bdev", "registered %s (%s, %lu blocks of %u bytes)", raw->name(),
         raw->module().name(), raw->block_count(), raw->block_size());
  // Outside the lock: an examining module may open this bdev or register one over it.
  ExamineNewBdev(*raw);
  return raw;
}

Bdev* BdevRegistry::Find(std::string_view name) {
  std::lock_guard lock(mutex_);
  auto it = names_.find(name);
  return it == names_.end() ? nullptr : it->second;
}

std::vector<Bdev*> BdevRegistry::List() {
  std::lock_guard lock(mutex_);
  std::vector<Bdev*> list;
  list.reserve(bdevs_.size());
  for (const auto& bdev : bdevs_) list.push_back(bdev.get());
  return list;
}

bool BdevRegistry::IsLive(Bdev* bdev) {
  std::lock_guard lock(mutex_);
  for (const auto& b : bdevs_) {
    if (b.get() == bdev) {
      std::lock_guard state_lock(bdev->state_->mutex);
      return !bdev->state_->removing;
    }
  }
  return false;
}

void BdevRegistry::Unregister(Bdev& bdev, absl::AnyInvocable<void(absl::Status)> done) {
  Thread* thread = Thread::Current();
  if (thread == nullptr) {
    return done(absl::FailedPreconditionError("UnregisterBdev must be called on a Thread"));
  }
  BdevState& state = *bdev.state_;
  {
    std::lock_guard lock(state.mutex);
    if (state.removing) {
      return done(absl::FailedPreconditionError(
          absl::StrFormat("bdev %s is already being removed", bdev.name())));
    }
    state.removing = true;
    state.unregister_thread_id = thread->id();
    state.unregister_done = std::move(done);
  }
  // The modules hear of it first, on the app thread. Until they have, the removal cannot
  // finish (Close does not continue it), so the bdev outlives the message.
  Bdev* raw = &bdev;
  uint64_t app_thread = BdevAppThreadId();
  if (app_thread == thread->id() || !RunOnThread(app_thread, [this, raw] { Announce(raw); })) {
    Announce(raw);
  }
}

void BdevRegistry::Announce(Bdev* bdev) {
  for (BdevModule* module : BdevModules()) module->OnBdevRemoved(*bdev);
  BdevState& state = *bdev->state_;
  std::vector<BdevDesc*> to_notify;
  bool no_descs;
  {
    std::lock_guard lock(state.mutex);
    state.modules_told = true;
    for (BdevDesc* desc : state.descs) {
      if (!desc->remove_notified_) to_notify.push_back(desc);
    }
    no_descs = state.descs.empty();
  }
  PX_LOG(kInfo, "bdev", "removing %s (%zu open descriptors)", bdev->name(), to_notify.size());
  // Reads waiting for a data buffer end now, with kAborted, instead of holding the removal up
  // until buffers come back (their descriptors wait for them before closing).
  ForEachChannel(
      state.channels,
      [](IoChannel& channel) { channel.context<BdevChannel>().AbortBufferWaiters(); },
      [](absl::Status) {});
  for (BdevDesc* desc : to_notify) {
    if (!RunOnThread(desc->thread_id(), [bdev, desc] { DeliverRemove(bdev, desc); })) {
      PX_LOG(kError, "bdev", "%s: the thread of an open descriptor is gone; removal waits",
             bdev->name());
    }
  }
  if (no_descs) ContinueUnregister(bdev);
}

void BdevRegistry::DeliverRemove(Bdev* bdev, BdevDesc* desc) {
  {
    // The descriptor may have closed since the event was sent: it closes only on this thread,
    // so finding it listed now means it stays open until the callback returns.
    std::lock_guard lock(bdev->state_->mutex);
    auto& descs = bdev->state_->descs;
    if (std::find(descs.begin(), descs.end(), desc) == descs.end() || desc->remove_notified_) {
      return;
    }
    desc->remove_notified_ = true;
  }
  if (desc->event_cb_) desc->event_cb_(BdevEvent::kRemove, *bdev);
}

void BdevRegistry::ContinueUnregister(Bdev* bdev) {
  uint64_t thread_id;
  {
    std::lock_guard lock(bdev->state_->mutex);
    thread_id = bdev->state_->unregister_thread_id;
  }
  // On the unregistering thread: UnregisterIoDevice runs its callback on the calling Thread.
  RunOnThread(thread_id, [this, bdev] {
    bdev->state_->channels.UnregisterIoDevice([this, bdev] { FinishUnregister(bdev); });
  });
}

void BdevRegistry::FinishUnregister(Bdev* bdev) {
  std::unique_ptr<Bdev> owned;
  {
    std::lock_guard lock(mutex_);
    for (auto it = names_.begin(); it != names_.end();) {
      it = it->second == bdev ? names_.erase(it) : std::next(it);
    }
    auto it = std::find_if(bdevs_.begin(), bdevs_.end(),
                           [bdev](const auto& b) { return b.get() == bdev; });
    owned = std::move(*it);
    bdevs_.erase(it);
  }
  uint64_t thread_id = bdev->state_->unregister_thread_id;
  PX_LOG(kInfo, "bdev", "removed %s", bdev->name());
  Bdev* raw = owned.release();
  raw->Destruct([raw, thread_id] {
    // Destruct may finish on any thread; the caller's callback runs on its own.
    RunOnThread(thread_id, [raw] {
      auto done = std::move(raw->state_->unregister_done);
      delete raw;
      if (done) done(absl::OkStatus());
    });
  });
}

absl::StatusOr<std::unique_ptr<BdevDesc>> BdevRegistry::Open(std::string_view name,
                                                             bool writable,
                                                             BdevEventCallback event_cb) {
  Thread* thread = Thread::Current();
  if (thread == nullptr) {
    return absl::FailedPreconditionError("bdev descriptors must be opened on a Thread");
  }
  std::lock_guard lock(mutex_);
  auto it = names_.find(name);
  if (it == names_.end()) {
    return absl::NotFoundError(absl::StrFormat("bdev %s not found", name));
  }
  Bdev* bdev = it->second;
  BdevState& state = *bdev->state_;
  std::lock_guard state_lock(state.mutex);
  if (state.removing) {
    return absl::UnavailableError(absl::StrFormat("bdev %s is being removed", bdev->name()));
  }
  if (writable && state.claim_module != nullptr) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "bdev %s is claimed by module %s: it cannot be opened for writing", bdev->name(),
        state.claim_module->name()));
  }
  std::unique_ptr<BdevDesc> desc(
      new BdevDesc(bdev, writable, std::move(event_cb), thread->id()));
  state.descs.push_back(desc.get());
  return desc;
}

void BdevRegistry::Close(BdevDesc& desc) {
  Bdev* bdev = desc.bdev_;
  BdevState& state = *bdev->state_;
  bool continue_removal;
  {
    std::lock_guard lock(state.mutex);
    std::erase(state.descs, &desc);
    if (state.claim_desc == &desc) {
      state.claim_desc = nullptr;
      state.claim_module = nullptr;
    }
    continue_removal = state.removing && state.modules_told && state.descs.empty();
  }
  if (continue_removal) ContinueUnregister(bdev);
}

absl::Status BdevRegistry::Claim(BdevDesc& desc, const BdevModule& module) {
  Bdev* bdev = desc.bdev_;
  if (!desc.writable_) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "module %s cannot claim bdev %s through a read-only descriptor", module.name(),
        bdev->name()));
  }
  BdevState& state = *bdev->state_;
  std::lock_guard lock(state.mutex);
  if (state.claim_module != nullptr) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "bdev %s is already claimed by module %s", bdev->name(), state.claim_module->name()));
  }
  for (BdevDesc* other : state.descs) {
    if (other != &desc && other->writable_) {
      return absl::PermissionDeniedError(absl::StrFormat(
          "module %s cannot claim bdev %s: another descriptor has it open for writing",
          module.name(), bdev->name()));
    }
  }
  state.claim_module = &module;
  state.claim_desc = &desc;
  return absl::OkStatus();
}

void BdevRegistry::ReleaseClaim(BdevDesc& desc) {
  BdevState& state = *desc.bdev_->state_;
  std::lock_guard lock(state.mutex);
  if (state.claim_desc == &desc) {
    state.claim_desc = nullptr;
    state.claim_module = nullptr;
  }
}

bool BdevRegistry::Listed(const Bdev* bdev) const {
  return std::any_of(bdevs_.begin(), bdevs_.end(), [bdev](const auto& b) { return b.get() == bdev; });
}

absl::Status BdevRegistry::ChangeBlockCount(Bdev& bdev, uint64_t block_count) {
  Thread* thread = Thread::Current();
  if (thread == nullptr || thread->id() != BdevAppThreadId()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "bdev %s: a block count changes on the app thread only", bdev.name()));
  }
  if (block_count == 0 || block_count > (UINT64_MAX >> 16)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("bdev %s: block count %lu is out of range", bdev.name(), block_count));
  }
  BdevState& state = *bdev.state_;
  {
    std::lock_guard lock(state.mutex);
    if (state.removing) {
      return absl::FailedPreconditionError(
          absl::StrFormat("bdev %s is being removed", bdev.name()));
    }
    if (block_count < bdev.properties_.block_count && !state.descs.empty()) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "bdev %s cannot shrink from %lu to %lu blocks while %zu descriptors are open",
          bdev.name(), bdev.properties_.block_count, block_count, state.descs.size()));
    }
    if (block_count == bdev.properties_.block_count) return absl::OkStatus();
    PX_LOG(kInfo, "bdev", "%s: %lu blocks now (was %lu)", bdev.name(), block_count,
           bdev.properties_.block_count);
    bdev.properties_.block_count = block_count;
    bdev.block_count_.store(block_count, std::memory_order_relaxed);
  }
  // Channels first, so that a descriptor that hears of the new size can use it at once. A
  // removal may finish during the walk: the walk only compares the device's address, each step
  // touches a live channel (whose bdev is alive), and AnnounceResize looks the bdev up again.
  Bdev* raw = &bdev;
  ForEachChannel(
      state.channels, [](IoChannel& channel) { channel.context<BdevChannel>().RefreshBlockCount(); },
      [this, raw](absl::Status) { AnnounceResize(raw); });
  return absl::OkStatus();
}

void BdevRegistry::AnnounceResize(Bdev* bdev) {
  // Back on the app thread: the bdev may have been removed meanwhile.
  {
    std::lock_guard lock(mutex_);
    if (!Listed(bdev)) return;
  }
  std::vector<BdevDesc*> descs;
  {
    std::lock_guard lock(bdev->state_->mutex);
    descs = bdev->state_->descs;
  }
  for (BdevDesc* desc : descs) {
    RunOnThread(desc->thread_id(), [this, bdev, desc] { DeliverResize(bdev, desc); });
  }
}

void BdevRegistry::DeliverResize(Bdev* bdev, BdevDesc* desc) {
  {
    // As DeliverRemove: a descriptor still listed stays open until its callback returns (it
    // closes on this thread only), and so the bdev stays. Whether the bdev itself is still
    // here is asked of the table first: it may be gone with the descriptor.
    std::lock_guard lock(mutex_);
    if (!Listed(bdev)) return;
    std::lock_guard state_lock(bdev->state_->mutex);
    auto& descs = bdev->state_->descs;
    if (std::find(descs.begin(), descs.end(), desc) == descs.end() || desc->remove_notified_) {
      return;
    }
  }
  if (desc->event_cb_) desc->event_cb_(BdevEvent::kResize, *bdev);
}

// ---- public functions ----

absl::StatusOr<Bdev*> RegisterBdev(std::unique_ptr<Bdev> bdev) {
  return BdevRegistry::Get().Register(std::move(bdev));
}

void UnregisterBdev(Bdev& bdev, absl::AnyInvocable<void(absl::Status)> done) {
  BdevRegistry::Get().Unregister(bdev, std::move(done));
}

void DeleteBdev(std::string_view name, const BdevModule* module,
                absl::AnyInvocable<void(absl::Status)> done) {
  Bdev* bdev = FindBdev(name);
  if (bdev == nullptr) return done(absl::NotFoundError(absl::StrFormat("bdev %s not found", name)));
  if (module != nullptr && &bdev->module() != module) {
    // NotFound, as SPDK's -ENODEV: there is no such bdev of this module.
    return done(absl::NotFoundError(absl::StrFormat(
        "bdev %s is not a %s bdev (it belongs to module %s)", name, module->name(),
        bdev->module().name())));
  }
  if (const BdevModule* claimer = bdev->claimed_by(); claimer != nullptr) {
    return done(absl::FailedPreconditionError(absl::StrFormat(
        "bdev %s is claimed by module %s: delete the bdev built on it first", name,
        claimer->name())));
  }
  UnregisterBdev(*bdev, std::move(done));
}

absl::Status NotifyBdevBlockCountChange(Bdev& bdev, uint64_t block_count) {
  return BdevRegistry::Get().ChangeBlockCount(bdev, block_count);
}

Bdev* FindBdev(std::string_view name) { return BdevRegistry::Get().Find(name); }

std::vector<Bdev*> ListBdevs() { return BdevRegistry::Get().List(); }

}  // namespace pollux
