// Mailbox: the lockless multi-producer/single-consumer queue of one Thread (or Reactor): two
// DPDK rte_rings of inline 16-byte Messages, one for senders that are reactors and one for every
// other thread, plus the eventfd that wakes the consumer, written only while the consumer has
// published that it is going to sleep. Private to the reactor component.
//
// Why two rings. A ring's producer mode is a trade:
// - classic MP (multi-producer): one locked CAS per send, but a producer that reserved its slot
//   publishes only after every earlier producer has published. A sender preempted in between
//   makes every later sender spin until the scheduler runs it again. With four OS threads and
//   two reactors sending on a two-core machine (test/unit/reactor/mailbox_test.cc), 300k
//   messages through a 256-entry ring took 25 s instead of 0.25 s.
// - RTS (relaxed tail sync): producers do not wait for each other, but each send costs two
//   locked CAS; raw RTS single enqueue is about half of raw MP here (docs/performance.md).
// Reactors are pinned, one per core, so a reactor preempted in the middle of an enqueue waits
// only for its own core (one scheduler slice at worst): the reactors that spin meanwhile spin on
// their own cores and do not keep it from running again. They use the
// MP ring (the data path). Everything else (the control thread, RPC, plain std::threads, which
// float over the cores and may be preempted by the very senders that would spin on them) uses
// the RTS ring. A given sender always uses the same ring, also a Thread that moves between
// reactors, so messages from one sender still run in the order sent. Messages from different
// senders are not ordered, not even causally related ones that took different rings.
#pragma once

#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <rte_ring_rts.h>

#include <atomic>
#include <cstdint>

#include "pollux/reactor/reactor.h"
#include "pollux/reactor/thread.h"
#include "tsan_order.h"

namespace pollux {

class Mailbox {
 public:
  // Each ring holds `capacity` (rounded up to a power of two, at least 64) minus one messages.
  // Aborts only if memory is exhausted.
  explicit Mailbox(uint32_t capacity);
  ~Mailbox();
  // Mailboxes not yet freed, process-wide (a retired one counts until its reactor frees it).
  static size_t LiveCount() { return live_count_.load(std::memory_order_relaxed); }
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;

  // Producer side: any thread. Returns false, having queued nothing, when the ring is full.
  // Inline for senders on reactors (the data path); the other ring's code is out of line.
  bool Send(const Message& message) noexcept {
    if (Reactor::Current() == nullptr) return SendFromOtherThread(message);
    TsanPublish(reactor_ring_);
    if (rte_ring_mp_enqueue_bulk_elem(reactor_ring_, &message, sizeof(Message), 1, nullptr) == 0) {
      return false;
    }
    WakeIfArmed();
    return true;
  }
  // Queues as many of `messages` as fit, in order; returns how many.
  unsigned SendBurst(const Message* messages, unsigned count) noexcept {
    if (Reactor::Current() == nullptr) return SendBurstFromOtherThread(messages, count);
    TsanPublish(reactor_ring_);
    unsigned sent =
        rte_ring_mp_enqueue_burst_elem(reactor_ring_, messages, sizeof(Message), count, nullptr);
    if (sent != 0) WakeIfArmed();
    return sent;
  }

  // Consumer side: the owning reactor only. Takes up to `max` messages from the two rings.
  unsigned Drain(Message* out, unsigned max) noexcept {
    // The rings take turns going first, so that a flood in one cannot starve the other.
    rte_ring* first = consumer_.other_first ? other_ring_ : reactor_ring_;
    rte_ring* second = consumer_.other_first ? reactor_ring_ : other_ring_;
    consumer_.other_first = !consumer_.other_first;
    unsigned n = rte_ring_sc_dequeue_burst_elem(first, out, sizeof(Message), max, nullptr);
    if (n < max) {
      n += rte_ring_sc_dequeue_burst_elem(second, out + n, sizeof(Message), max - n, nullptr);
    }
    if (n != 0) {
      TsanReceive(first);
      TsanReceive(second);
    }
    return n;
  }
  // Published messages, both rings (a message whose producer is still in flight is not counted).
  bool Empty() const noexcept {
    return rte_ring_empty(reactor_ring_) != 0 && rte_ring_empty(other_ring_) != 0;
  }
  unsigned Count() const noexcept {
    return rte_ring_count(reactor_ring_) + rte_ring_count(other_ring_);
  }

  // The consumer is about to sleep: from now on a producer writes the eventfd (once).
  // The caller must issue a seq_cst fence after arming, poll, and then check
  // MustStayAwakeAfterArming().
  void Arm() noexcept { armed_.store(true, std::memory_order_relaxed); }
  void Disarm() noexcept { armed_.store(false, std::memory_order_relaxed); }
  // After Arm(), the seq_cst fence and a poll that found nothing: whether a message is queued
  // or a producer is in flight that may have read `armed_` before the arming (see WakeIfArmed).
  // The consumer must not sleep then; the message will be visible within a few iterations.
  bool MustStayAwakeAfterArming() const noexcept {
    // MP ring: prod.head, not prod.tail: the producer's last locked instruction is its CAS on
    // prod.head; its store of prod.tail is a plain store that x86 may still hold in its store
    // buffer when it reads `armed_`. RTS ring: the tail (prod.tail), moved by a locked CAS.
    uint32_t reserved = __atomic_load_n(&reactor_ring_->prod.head, __ATOMIC_ACQUIRE);
    return reserved != reactor_ring_->cons.tail || rte_ring_empty(other_ring_) == 0;
  }
  // Wakes the consumer unconditionally (shutdown, mode change).
  void Kick() noexcept;
  // No thread other than a reactor is inside a send to this mailbox (Reactor::RetiredMailbox).
  bool NoSenderFromOtherThreads() const noexcept {
    return other_senders_.load(std::memory_order_acquire) == 0;
  }

  int event_fd() const { return event_fd_; }

 private:
  static inline std::atomic<size_t> live_count_{0};

  // Send and SendBurst through the RTS ring.
  bool SendFromOtherThread(const Message& message) noexcept;
  unsigned SendBurstFromOtherThread(const Message* messages, unsigned count) noexcept;

  void WakeIfArmed() noexcept {
    // Dekker with the consumer's Arm(); seq_cst fence; MustStayAwakeAfterArming(): either we
    // see `armed_` and write the eventfd, or the consumer sees our message (or us in flight)
    // and stays awake. Neither side may read before its write is globally visible, or both
    // could miss each other and the consumer would sleep on a queued message.
    //
    // x86 (TSO) only reorders a store with a later load, and never across a locked instruction,
    // which is a full barrier. Every enqueue that queued something ended with one:
    // - MP ring: the CAS on prod.head (lock cmpxchg) reserved our slot; our later store of
    //   prod.tail may still sit in the store buffer when we read `armed_`, which is why the
    //   consumer checks prod.head. If the consumer's check came before our CAS in the global
    //   order, our load of `armed_` comes after its arming (its fence drained its store), and
    //   we wake it; otherwise it sees prod.head != cons.tail and does not sleep. It then polls
    //   until our prod.tail store lands (a reactor publishes within nanoseconds).
    // - RTS ring: a message becomes visible when the last producer in flight moves prod.tail,
    //   with a CAS (lock cmpxchg) on it, and that producer then comes through here: the
    //   message is covered by its check even if its own sender checked before it was visible.
    //   The consumer checks prod.tail, so it can sleep while an OS-thread sender is preempted
    //   in flight; that sender wakes it when it publishes.
    // So on x86 a compiler barrier is enough (it keeps the compiler from hoisting the load of
    // `armed_` above the enqueue); the full fence it replaces was 18 % of a send. Elsewhere
    // (arm64: a CAS is acquire/release, not a full barrier) the fence stays.
#if defined(RTE_ARCH_X86)
    std::atomic_signal_fence(std::memory_order_seq_cst);
#else
    std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
    if (armed_.load(std::memory_order_relaxed) &&
        armed_.exchange(false, std::memory_order_acq_rel)) {
      Kick();
    }
  }

  rte_ring* reactor_ring_ = nullptr;  // classic MP: senders on a reactor lcore
  rte_ring* other_ring_ = nullptr;    // RTS: every other sender
  void* memory_ = nullptr;            // both rings
  int event_fd_ = -1;
  // On its own cache line: producers read it on every send, the consumer writes it only
  // around sleeps, so it stays shared-clean in the producers' caches while polling.
  alignas(64) std::atomic<bool> armed_{false};
  // Written by the consumer on every drain: away from what producers read.
  struct alignas(64) ConsumerState {
    bool other_first = false;
  } consumer_;
  // Senders that are not reactors inside SendFromOtherThread / SendBurstFromOtherThread (a
  // locked add and sub each: control paths), so that a retired mailbox outlives them.
  alignas(64) std::atomic<uint32_t> other_senders_{0};
};

}  // namespace pollux
