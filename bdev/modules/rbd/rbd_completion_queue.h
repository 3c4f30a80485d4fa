// RbdCompletionQueue: how an I/O that librbd completed on one of its own threads gets back to
// the pollux Thread that submitted it. The scheme is the worker pool's completion path
// (pollux/bdev_file/worker_pool.h, WorkerPoolChannel): a per-channel lockless ring that
// librbd's threads fill and the channel's poller drains without a syscall, and an eventfd that
// a producer writes only while the owner has armed the queue before its reactor sleeps.
//
//   librbd thread: OnComplete -> Push(io) -- ring (rte_ring, RTS producers, one consumer) --+
//   channel poller: Drain <----------------------------------------------------------------+
//                   (armed? one eventfd write wakes the sleeping reactor)
//
// Never full: the channel keeps at most capacity() I/O in flight (the rest is refused with
// kNoMemory, which the bdev layer retries), and the ring holds more than that.
//
// Threads: Push on any OS thread; everything else on the owning pollux Thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>

struct rte_ring;

namespace pollux {

class BdevIo;

class RbdCompletionQueue {
 public:
  // Room for `capacity` completions (a power of two, at least 2). Aborts only if memory or
  // eventfds are exhausted (a channel cannot be refused).
  explicit RbdCompletionQueue(uint32_t capacity);
  // The owner has drained every completion of its I/O; waits for producers still between
  // their push and their last touch of the queue (a few instructions).
  ~RbdCompletionQueue();
  RbdCompletionQueue(const RbdCompletionQueue&) = delete;
  RbdCompletionQueue& operator=(const RbdCompletionQueue&) = delete;

  uint32_t capacity() const { return capacity_; }
  // The eventfd a producer writes while the queue is armed (the poller's wake_fd).
  int wake_fd() const { return wake_fd_; }

  // Producer side, any thread: queues `io` and wakes the owner if it is armed. The caller
  // must not touch `io` afterwards: the owner may complete and reuse it at once.
  void Push(BdevIo& io) noexcept;

  // Owner side: takes up to `max` completed I/O; returns how many.
  unsigned Drain(BdevIo** out, unsigned max) noexcept;
  // The reactor is about to sleep: from now on the first Push writes the eventfd (once). The
  // reactor fences and polls once more after arming, so a Push that raced it is not lost.
  void Arm() noexcept { armed_.store(true, std::memory_order_relaxed); }
  void Disarm() noexcept { armed_.store(false, std::memory_order_relaxed); }
  // Times a producer wrote the eventfd (only ever while the queue was armed).
  uint64_t wake_writes() const { return wake_writes_.load(std::memory_order_relaxed); }

 private:
  struct FreeDeleter {
    void operator()(void* memory) const noexcept { std::free(memory); }
  };

  uint32_t capacity_;
  std::unique_ptr<void, FreeDeleter> ring_memory_;
  rte_ring* ring_ = nullptr;
  int wake_fd_ = -1;
  // Read by producers after every push; written by the owner only around sleeps.
  alignas(64) std::atomic<bool> armed_{false};
  // Producers between their enqueue and their last touch of the queue (see the destructor).
  std::atomic<uint32_t> pushing_{0};
  std::atomic<uint64_t> wake_writes_{0};
};

}  // namespace pollux
