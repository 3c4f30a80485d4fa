// CompletionRing: how work finished on OS threads that are not pollux Threads (a library's own
// threads, such as librbd's; a pool of blocking workers) gets back to the pollux Thread that
// handed it out, without a syscall on either side while that thread polls, and with its
// reactor woken when it sleeps.
//
//   foreign thread: Push(object) -- rte_ring (RTS producers, one consumer) --+
//   owner's poller: Drain <-------------------------------------------------+
//                   (armed? the push writes the eventfd once: the reactor wakes)
//
// The owner's poller registers wake_fd() as its PollerOptions::wake_fd and Arm/Disarm as its
// arm/disarm: the reactor arms before it sleeps, fences and polls once more, so a push that
// raced the arming is found by that poll or writes the eventfd (a Dekker pair).
//
// Batching wake-ups: an owner that counts what it handed out (HandedOut) may ask a push to
// wake it only when few objects are still out (Push's `wake_when_out_at_most`): while more are,
// the foreign threads stay busy without it, and one wake-up brings in a batch. The last
// object out always wakes it, so nothing is stranded.
//
// Never full: the owner keeps at most capacity() objects out at once; the ring holds that
// many. Threads: Push on any thread; everything else on the owning thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <limits>

struct rte_ring;

namespace pollux {

class CompletionRing {
 public:
  static constexpr uint32_t kAlwaysWake = std::numeric_limits<uint32_t>::max();

  // Room for `capacity` objects (at least 1). `wake_fd`: an eventfd a push writes while the ring
  // is armed, left open at destruction; -1 makes one, owned by the ring. `name` is for logs.
  // Aborts only if memory or eventfds are exhausted (an I/O channel cannot be refused).
  CompletionRing(uint32_t capacity, const char* name, int wake_fd = -1);
  // Every object the owner handed out has been drained; waits for producers still between
  // their push and their last touch of the ring (a few instructions).
  ~CompletionRing();
  CompletionRing(const CompletionRing&) = delete;
  CompletionRing& operator=(const CompletionRing&) = delete;

  uint32_t capacity() const { return capacity_; }
  int wake_fd() const { return wake_fd_; }

  // Producer side, any thread: queues `object` and, if the ring is armed and at most
  // `wake_when_out_at_most` objects the owner handed out are still out after this one, wakes
  // the owner. The caller must not touch `object` afterwards: the owner may reuse it at once.
  void Push(void* object, uint32_t wake_when_out_at_most = kAlwaysWake) noexcept;

  // Owner side: takes up to `max` pushed objects; returns how many.
  unsigned Drain(void** out, unsigned max) noexcept;
  // Owner side: `count` more objects are out (for Push's `wake_when_out_at_most`).
  void HandedOut(uint32_t count) noexcept {
    handed_out_total_.store(handed_out_total_.load(std::memory_order_relaxed) + count,
                            std::memory_order_relaxed);
  }
  // The owner's reactor is about to sleep: from now on a push that would wake writes the
  // eventfd (once).
  void Arm() noexcept { armed_.store(true, std::memory_order_relaxed); }
  void Disarm() noexcept { armed_.store(false, std::memory_order_relaxed); }
  // Times a push wrote the eventfd (only ever while armed).
  uint64_t wake_writes() const { return wake_writes_.load(std::memory_order_relaxed); }

 private:
  uint32_t capacity_;
  void* ring_memory_ = nullptr;
  rte_ring* ring_ = nullptr;
  int wake_fd_ = -1;
  bool owns_wake_fd_ = false;

  // Written by the owner, read by producers deciding whether a push is worth a wake-up. Both
  // totals wrap; their difference is what is still out.
  alignas(64) std::atomic<uint32_t> handed_out_total_{0};
  // Read by producers after every push; written by the owner only around sleeps.
  std::atomic<bool> armed_{false};
  alignas(64) std::atomic<uint32_t> pushed_total_{0};
  // Producers between their enqueue and their last touch of the ring (see the destructor).
  std::atomic<uint32_t> pushing_{0};
  std::atomic<uint64_t> wake_writes_{0};
};

}  // namespace pollux
