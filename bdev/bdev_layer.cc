// Start-up and shutdown of the layer: the BdevIo pool and the modules.
#include <algorithm>
#include <atomic>
#include <memory>

#include "absl/strings/str_format.h"
#include "bdev_io_pool.h"
#include "bdev_registry.h"
#include "pollux/bdev/bdev.h"
#include "pollux/bdev/bdev_module.h"
#include "pollux/env/log.h"
#include "pollux/reactor/thread.h"

namespace pollux {
namespace {

BdevLayerOptions layer_options;
std::atomic<bool> layer_initialized{false};

void FinishModules(size_t count) {
  const auto& modules = BdevModules();
  for (size_t i = count; i-- > 0;) modules[i]->Fini();
}

// Removes bdevs one at a time, those nothing is built on first (a virtual bdev before its
// base), then finishes the modules and frees the pool.
void FiniStep(std::shared_ptr<absl::AnyInvocable<void()>> done) {
  std::vector<Bdev*> bdevs = ListBdevs();
  Bdev* next = nullptr;
  bool removing = false;
  for (auto it = bdevs.rbegin(); it != bdevs.rend(); ++it) {
    if (!BdevRegistry::Get().IsLive(*it)) {
      removing = true;
      continue;
    }
    if ((*it)->claimed_by() == nullptr) {
      next = *it;
      break;
    }
    if (next == nullptr) next = *it;  // everything left is claimed: take the newest
  }
  Thread* thread = Thread::Current();
  if (next != nullptr) {
    UnregisterBdev(*next, [done](absl::Status status) {
      if (!status.ok()) PX_LOG(kWarning, "bdev", "shutdown: %s", status.ToString());
      FiniStep(done);
    });
    return;
  }
  if (removing) {
    // Someone else's removal is under way: look again once it has had a chance to progress.
    RunOnThread(thread->id(), [done] { FiniStep(done); });
    return;
  }
  FinishModules(BdevModules().size());
  std::shared_ptr<BdevIoPool> pool = TakeBdevIoPool();
  layer_initialized = false;
  BdevIoPool* raw = pool.get();
  // Waits for every thread's cache (a channel of the pool) to be gone before freeing it.
  raw->UnregisterIoDevice([pool, done]() mutable {
    pool.reset();
    (*done)();
  });
}

// A pool for `options`, its objects sized for the largest module context.
absl::StatusOr<std::unique_ptr<BdevIoPool>> CreatePool(const BdevLayerOptions& options) {
  size_t context_size = 0;
  for (BdevModule* module : BdevModules()) {
    context_size = std::max(context_size, module->io_context_size());
  }
  return BdevIoPool::Create(options.bdev_io_pool_size, context_size, options.bdev_io_cache_size);
}

}  // namespace

absl::Status SetBdevLayerOptions(const BdevLayerOptions& options) {
  if (options.bdev_io_pool_size == layer_options.bdev_io_pool_size &&
      options.bdev_io_cache_size == layer_options.bdev_io_cache_size) {
    return absl::OkStatus();  // a saved config replayed into a running target
  }
  if (!layer_initialized) {
    layer_options = options;  // InitBdevLayer checks them
    return absl::OkStatus();
  }
  // The pool is replaced, which is safe only while no thread holds a cache of it: before any
  // bdev exists and any I/O ran (as SPDK, which takes this method only before start-up; here
  // the bdev subsystem is up when a config is replayed, so it comes first in the config).
  BdevIoPool* current = GetBdevIoPool();
  if (!ListBdevs().empty() || current->channel_count() != 0) {
    return absl::FailedPreconditionError(
        "bdev_set_options must come before any bdev is created (the BdevIo pool is in use); "
        "put it first in the bdev subsystem's config");
  }
  absl::StatusOr<std::unique_ptr<BdevIoPool>> pool = CreatePool(options);
  if (!pool.ok()) return pool.status();
  std::shared_ptr<BdevIoPool> old = TakeBdevIoPool();
  SetBdevIoPool(std::move(*pool));
  layer_options = options;
  BdevIoPool* raw = old.get();
  raw->UnregisterIoDevice([old]() mutable { old.reset(); });
  return absl::OkStatus();
}

absl::Status InitBdevLayer(const BdevLayerOptions& options) {
  if (layer_initialized) return absl::FailedPreconditionError("the bdev layer is already running");
  if (Thread::Current() == nullptr) {
    return absl::FailedPreconditionError("InitBdevLayer must be called on a Thread");
  }
  auto pool = CreatePool(options);
  if (!pool.ok()) return pool.status();
  SetBdevIoPool(std::move(*pool));
  layer_options = options;
  layer_initialized = true;
  const auto& modules = BdevModules();
  for (size_t i = 0; i < modules.size(); ++i) {
    if (absl::Status s = modules[i]->Init(); !s.ok()) {
      FinishModules(i);
      layer_initialized = false;
      TakeBdevIoPool();
      return absl::Status(s.code(), absl::StrFormat("bdev module %s: %s", modules[i]->name(),
                                                    std::string(s.message())));
    }
  }
  return absl::OkStatus();
}

void FiniBdevLayer(absl::AnyInvocable<void()> done) {
  if (!layer_initialized) return done();
  FiniStep(std::make_shared<absl::AnyInvocable<void()>>(std::move(done)));
}

bool BdevLayerInitialized() { return layer_initialized; }

const BdevLayerOptions& GetBdevLayerOptions() { return layer_options; }

}  // namespace pollux
