#include "thread_registry.h"

#include <sched.h>

#include "pollux/reactor/thread.h"

namespace pollux {

ThreadRegistry& ThreadRegistry::Get() {
  static ThreadRegistry registry;
  return registry;
}

uint64_t ThreadRegistry::NextId() {
  std::lock_guard lock(mutex_);
  return next_id_++;
}

void ThreadRegistry::Add(Thread* thread) {
  std::lock_guard lock(mutex_);
  threads_[thread->id()] = thread;
}

bool ThreadRegistry::SendToLiveThread(uint64_t id, MessageFn fn, void* arg) {
  while (true) {
    {
      std::lock_guard lock(mutex_);
      auto it = threads_.find(id);
      if (it == threads_.end()) return false;
      if (it->second->SendMessage(fn, arg)) return true;
    }
    sched_yield();
  }
}

std::vector<uint64_t> ThreadRegistry::Ids() {
  std::lock_guard lock(mutex_);
  std::vector<uint64_t> ids;
  for (auto& [id, thread] : threads_) ids.push_back(id);
  return ids;
}

}  // namespace pollux
