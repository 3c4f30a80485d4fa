#include <memory>

#include "pollux/reactor/thread.h"
#include "thread_registry.h"

namespace pollux {

bool RunOnThread(uint64_t thread_id, absl::AnyInvocable<void()> fn) {
  auto* boxed = new absl::AnyInvocable<void()>(std::move(fn));
  auto run = [](void* arg) {
    std::unique_ptr<absl::AnyInvocable<void()>> fn(static_cast<absl::AnyInvocable<void()>*>(arg));
    (*fn)();
  };
  if (ThreadRegistry::Get().SendToLiveThread(thread_id, run, boxed)) return true;
  delete boxed;
  return false;
}

}  // namespace pollux
