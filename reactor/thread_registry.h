// The process-wide table of live Threads, by id. Used off the data path only: creation,
// destruction, lookups by id (RPC, ForEachThread).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "pollux/reactor/thread.h"

namespace pollux {

class ThreadRegistry {
 public:
  static ThreadRegistry& Get();

  uint64_t NextId();
  void Add(Thread* thread);
  // Removes the thread if pred() holds, under the registry lock: a thread found through
  // WithThread can thus not vanish while a message is being queued to it.
  template <typename Pred>
  bool RemoveIf(Thread* thread, uint64_t id, Pred&& pred) {
    std::lock_guard lock(mutex_);
    if (!pred()) return false;
    threads_.erase(id);
    (void)thread;
    return true;
  }
  // Runs fn(thread-or-nullptr) under the registry lock, so the thread cannot be destroyed
  // meanwhile (destruction also takes the lock).
  template <typename Fn>
  auto WithThread(uint64_t id, Fn&& fn) {
    std::lock_guard lock(mutex_);
    auto it = threads_.find(id);
    return fn(it == threads_.end() ? nullptr : it->second);
  }
  std::vector<uint64_t> Ids();

  // Queues fn(arg) on thread `id` if it is alive. The lookup and the enqueue happen under the
  // registry lock (so the thread cannot be destroyed in between); a full ring is retried with
  // the lock released, so that its reactor can drain it and reap exited threads meanwhile.
  // Returns false when the thread is gone. Control paths only.
  bool SendToLiveThread(uint64_t id, MessageFn fn, void* arg);

 private:
  std::mutex mutex_;
  std::map<uint64_t, Thread*> threads_;
  uint64_t next_id_ = 1;
};

}  // namespace pollux
