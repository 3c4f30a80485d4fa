#include "bdev_examine.h"

#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "bdev_registry.h"
#include "first_call_only.h"
#include "pollux/bdev/bdev_module.h"
#include "pollux/env/log.h"
#include "pollux/reactor/thread.h"

namespace pollux {
namespace {

// The examinations under way and who waits for none to be. Any thread: module code calls its
// examine done wherever its I/O completed.
class ExamineTracker {
 public:
  static ExamineTracker& Get() {
    static ExamineTracker tracker;
    return tracker;
  }

  // One examination of `bdev_name` by `module` (nullptr: the registration itself, between its
  // first ExamineConfig and its last ExamineDisk call) has started; returns its id for End.
  uint64_t Begin(const BdevModule* module, std::string bdev_name) {
    std::lock_guard lock(mutex_);
    uint64_t id = ++last_id_;
    under_way_.push_back({id, module, std::move(bdev_name)});
    return id;
  }

  void End(uint64_t id) {
    std::vector<Waiter> ready;
    {
      std::lock_guard lock(mutex_);
      std::erase_if(under_way_, [id](const Examination& e) { return e.id == id; });
      if (under_way_.empty()) ready.swap(waiters_);
    }
    for (Waiter& waiter : ready) Wake(std::move(waiter));
  }

  void Wait(absl::AnyInvocable<void()> done) {
    uint64_t thread_id = Thread::Current() != nullptr ? Thread::Current()->id() : 0;
    std::string pending;
    {
      std::lock_guard lock(mutex_);
      if (!under_way_.empty()) {
        waiters_.push_back({thread_id, std::move(done)});
        pending = absl::StrJoin(under_way_, ", ", [](std::string* out, const Examination& e) {
          absl::StrAppend(out, e.bdev_name, " by ", e.module != nullptr ? e.module->name() : "all");
        });
      }
    }
    if (pending.empty()) return done();
    // Once, not periodically: a module that never calls its examine done is a bug that this
    // line names; SPDK's bdev_wait_for_examine waits just as long, silently.
    PX_LOG(kNotice, "bdev", "waiting for the examination of %s", pending);
  }

 private:
  struct Examination {
    uint64_t id;
    const BdevModule* module;
    std::string bdev_name;
  };
  struct Waiter {
    uint64_t thread_id;  // 0: not a Thread, called where the last examination ended
    absl::AnyInvocable<void()> done;
  };

  // Always a message, even to the thread that ended the last examination: the waiter then
  // never runs inside a module's call.
  static void Wake(Waiter waiter) {
    if (waiter.thread_id == 0) return waiter.done();
    if (!RunOnThread(waiter.thread_id, std::move(waiter.done))) {
      PX_LOG(kWarning, "bdev", "a thread waiting for examination to finish is gone");
    }
  }

  std::mutex mutex_;
  uint64_t last_id_ = 0;
  std::vector<Examination> under_way_;
  std::vector<Waiter> waiters_;
};

}  // namespace

void ExamineNewBdev(Bdev& bdev) {
  ExamineTracker& tracker = ExamineTracker::Get();
  BdevRegistry& registry = BdevRegistry::Get();
  // Held across both passes, so that a wait that starts between them (from another thread)
  // does not see an examined bdev whose ExamineDisk calls have not started yet.
  // The bdev outlives this call even if a module unregisters it: its deletion comes in a later
  // message on this thread.
  const std::string name = bdev.name();
  uint64_t registration = tracker.Begin(nullptr, name);
  for (BdevModule* module : BdevModules()) {
    if (registry.IsLive(&bdev)) module->ExamineConfig(bdev);
  }
  const BdevModule* claimer = registry.IsLive(&bdev) ? bdev.claimed_by() : nullptr;
  for (BdevModule* module : BdevModules()) {
    if (claimer != nullptr && module != claimer) continue;
    if (!registry.IsLive(&bdev)) break;
    uint64_t id = tracker.Begin(module, name);
    module->ExamineDisk(bdev, FirstCallOnly<>(absl::StrFormat("bdev module %s: examine done of %s",
                                                              module->name(), name),
                                              [id] { ExamineTracker::Get().End(id); }));
  }
  tracker.End(registration);
}

void WaitForBdevExamine(absl::AnyInvocable<void()> done) {
  ExamineTracker::Get().Wait(std::move(done));
}

}  // namespace pollux
