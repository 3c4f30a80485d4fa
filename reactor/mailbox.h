// Mailbox: a lockless multi-producer/single-consumer ring of Messages (DPDK rte_ring, elements
// stored inline) plus the eventfd that wakes its consumer, written only while the consumer has
// published that it is going to sleep. Private to the reactor component.
#pragma once

#include <rte_ring.h>
#include <rte_ring_elem.h>

#include <atomic>
#include <cstdint>

#include "pollux/reactor/thread.h"

namespace pollux {

class Mailbox {
 public:
  // `capacity` is rounded up to a power of two. Aborts only if memory is exhausted.
  explicit Mailbox(uint32_t capacity);
  ~Mailbox();
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;

  // Producer side: any thread. The ring's producers use DPDK's RTS mode (set at init; the
  // generic enqueue functions follow it), not the classic MP mode: see the constructor.
  bool Send(const Message& message) noexcept {
    if (rte_ring_enqueue_elem(ring_, const_cast<Message*>(&message), sizeof(Message)) != 0) {
      return false;
    }
    WakeIfArmed();
    return true;
  }
  unsigned SendBurst(const Message* messages, unsigned count) noexcept {
    unsigned sent = rte_ring_enqueue_burst_elem(ring_, messages, sizeof(Message), count, nullptr);
    if (sent != 0) WakeIfArmed();
    return sent;
  }

  // Consumer side: the owning reactor only.
  unsigned Drain(Message* out, unsigned max) noexcept {
    return rte_ring_sc_dequeue_burst_elem(ring_, out, sizeof(Message), max, nullptr);
  }
  bool Empty() const noexcept { return rte_ring_empty(ring_) != 0; }
  unsigned Count() const noexcept { return rte_ring_count(ring_); }

  // The consumer is about to sleep: from now on a producer writes the eventfd (once).
  // The caller must issue a seq_cst fence after arming and then re-check Empty().
  void Arm() noexcept { armed_.store(true, std::memory_order_relaxed); }
  void Disarm() noexcept { armed_.store(false, std::memory_order_relaxed); }
  // Wakes the consumer unconditionally (shutdown, mode change).
  void Kick() noexcept;

  int event_fd() const { return event_fd_; }

 private:
  void WakeIfArmed() noexcept {
    // Dekker with the consumer's Arm(); fence; Empty(): our enqueue (a store of the ring's
    // tail) must be visible before we read `armed_`, or both sides could miss each other and
    // the consumer would sleep on a queued message. x86 reorders a store with a later load,
    // so this needs a full fence; without it a wake-up can be lost.
    // With RTS producers, a message becomes visible only when the last producer in flight
    // moves the tail; that producer comes through here after its tail update, so the message
    // is covered by its check even if its own sender checked before it was visible.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (armed_.load(std::memory_order_relaxed) &&
        armed_.exchange(false, std::memory_order_acq_rel)) {
      Kick();
    }
  }

  rte_ring* ring_ = nullptr;
  void* memory_ = nullptr;
  int event_fd_ = -1;
  // On its own cache line: producers read it on every send, the consumer writes it only
  // around sleeps, so it stays shared-clean in the producers' caches while polling.
  alignas(64) std::atomic<bool> armed_{false};
};

}  // namespace pollux
