// Start-up and shutdown of the layer: the BdevIo pool and the modules' life cycle.
#include "bdev_layer.h"

#include <algorithm>
#include <atomic>
#include <memory>

#include "absl/strings/str_format.h"
#include "bdev_io_pool.h"
#include "bdev_module_sequence.h"
#include "bdev_registry.h"
#include "pollux/bdev/bdev.h"
#include "pollux/bdev/bdev_module.h"
#include "pollux/env/log.h"
#include "pollux/reactor/thread.h"

namespace pollux {
namespace {

using Done = absl::AnyInvocable<void()>;

BdevLayerOptions layer_options;
std::atomic<bool> layer_initialized{false};
std::atomic<uint64_t> app_thread_id{0};
// How many modules (from the first) completed InitAsync: shutdown finishes just those.
size_t initialized_modules = 0;

std::vector<BdevModule*> FirstModules(size_t count) {
  const auto& modules = BdevModules();
  return std::vector<BdevModule*>(modules.begin(), modules.begin() + count);
}

// UnregisterAllBdevs, with done shared by its steps.
void UnregisterAll(std::shared_ptr<Done> done) {
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
      UnregisterAll(done);
    });
    return;
  }
  if (removing) {
    // Someone else's removal is under way: look again once it has had a chance to progress.
    RunOnThread(thread->id(), [done] { UnregisterAll(done); });
    return;
  }
  (*done)();
}

void FreePool(Done done) {
  std::shared_ptr<BdevIoPool> pool = TakeBdevIoPool();
  layer_initialized = false;
  BdevIoPool* raw = pool.get();
  // Waits for every thread's cache (a channel of the pool) to be gone before freeing it.
  raw->UnregisterIoDevice([pool, done = std::move(done)]() mutable {
    pool.reset();
    done();
  });
}

// The shutdown of the first `count` modules (all those whose init completed): SPDK's order,
// fini_start of each, every bdev unregistered, fini of each in reverse, then the pool.
void ShutDown(size_t count, Done done) {
  initialized_modules = 0;
  RunModuleSequence(
      "fini_start", FirstModules(count),
      [](BdevModule& module, absl::AnyInvocable<void(absl::Status)> step_done) {
        module.FiniStart(
            [step_done = std::move(step_done)]() mutable { step_done(absl::OkStatus()); });
      },
      [count, done = std::move(done)](absl::Status, size_t) mutable {
        UnregisterAll(std::make_shared<Done>([count, done = std::move(done)]() mutable {
          std::vector<BdevModule*> modules = FirstModules(count);
          std::reverse(modules.begin(), modules.end());
          RunModuleSequence(
              "fini", std::move(modules),
              [](BdevModule& module, absl::AnyInvocable<void(absl::Status)> step_done) {
                module.FiniAsync(
                    [step_done = std::move(step_done)]() mutable { step_done(absl::OkStatus()); });
              },
              [done = std::move(done)](absl::Status, size_t) mutable {
                FreePool(std::move(done));
              });
        }));
      });
}

// A pool for `options`, its objects sized for the largest module context.
absl::StatusOr<std::unique_ptr<BdevIoPool>> CreatePool(const BdevLayerOptions& options) {
  size_t context_size = 0;
  for (BdevModule* module : BdevModules()) {
    context_size = std::max(context_size, module->io_context_size());
  }
  return BdevIoPool::Create(options, context_size);
}

}  // namespace

void UnregisterAllBdevs(absl::AnyInvocable<void()> done) {
  UnregisterAll(std::make_shared<Done>(std::move(done)));
}

absl::Status SetBdevLayerOptions(const BdevLayerOptions& options) {
  if (options == layer_options) {
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

void InitBdevLayer(const BdevLayerOptions& options, absl::AnyInvocable<void(absl::Status)> done) {
  if (layer_initialized) {
    return done(absl::FailedPreconditionError("the bdev layer is already running"));
  }
  Thread* thread = Thread::Current();
  if (thread == nullptr) {
    return done(absl::FailedPreconditionError("InitBdevLayer must be called on a Thread"));
  }
  auto pool = CreatePool(options);
  if (!pool.ok()) return done(pool.status());
  SetBdevIoPool(std::move(*pool));
  layer_options = options;
  app_thread_id = thread->id();
  // Running before the modules start: a module's init may register its bdevs.
  layer_initialized = true;
  initialized_modules = 0;
  RunModuleSequence(
      "init", BdevModules(),
      [](BdevModule& module, absl::AnyInvocable<void(absl::Status)> step_done) {
        module.InitAsync(std::move(step_done));
      },
      [done = std::move(done)](absl::Status status, size_t completed) mutable {
        initialized_modules = completed;
        if (status.ok()) return done(absl::OkStatus());
        // Undo what the modules that started did (their bdevs included), then report.
        ShutDown(completed, [done = std::move(done), status]() mutable { done(status); });
      });
}

void FiniBdevLayer(absl::AnyInvocable<void()> done) {
  if (!layer_initialized) return done();
  ShutDown(initialized_modules, std::move(done));
}

bool BdevLayerInitialized() { return layer_initialized; }

const BdevLayerOptions& GetBdevLayerOptions() { return layer_options; }

uint64_t BdevAppThreadId() { return app_thread_id; }

}  // namespace pollux
