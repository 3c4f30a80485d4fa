#include "rbd_completion_queue.h"

#include <rte_common.h>
#include <rte_pause.h>
#include <rte_ring.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "pollux/env/log.h"

namespace pollux {

RbdCompletionQueue::RbdCompletionQueue(uint32_t capacity) : capacity_(capacity) {
  // An rte_ring of `count` slots holds count - 1 entries: one slot more than the I/O in flight.
  const uint32_t count = rte_align32pow2(capacity + 1);
  const ssize_t bytes = rte_ring_get_memsize(count);
  void* memory = bytes < 0 ? nullptr
                           : std::aligned_alloc(
                                 RTE_CACHE_LINE_SIZE,
                                 RTE_ALIGN_CEIL(static_cast<size_t>(bytes), RTE_CACHE_LINE_SIZE));
  if (memory == nullptr) {
    PX_LOG(kError, "bdev_rbd", "no memory for a completion ring of %u entries", count);
    std::abort();
  }
  ring_memory_.reset(memory);
  // Producers are librbd's threads, which the scheduler may preempt in the middle of an
  // enqueue: RTS, so that the others do not spin behind one (reactor/mailbox.h explains).
  ring_ = static_cast<rte_ring*>(memory);
  if (int rc = rte_ring_init(ring_, "pollux_rbd_cq", count, RING_F_MP_RTS_ENQ | RING_F_SC_DEQ);
      rc != 0) {
    PX_LOG(kError, "bdev_rbd", "rte_ring_init: %s", std::strerror(-rc));
    std::abort();
  }
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    PX_LOG(kError, "bdev_rbd", "eventfd: %s", std::strerror(errno));
    std::abort();
  }
}

RbdCompletionQueue::~RbdCompletionQueue() {
  // The owner may have drained a completion whose producer has not yet looked at armed_.
  while (pushing_.load(std::memory_order_acquire) != 0) rte_pause();
  close(wake_fd_);
}

void RbdCompletionQueue::Push(BdevIo& io) noexcept {
  // Counted before the enqueue, whose tail CAS publishes it: an owner that drains this
  // completion sees the count, and its destructor waits for the decrement below.
  pushing_.fetch_add(1, std::memory_order_relaxed);
  // Never full (see the header); a retry would only spin if that promise were broken.
  while (rte_ring_enqueue(ring_, &io) != 0) rte_pause();
  // Dekker with the reactor's Arm(); fence; poll: either this load sees armed_ and writes the
  // eventfd, or the owner's poll after arming finds the completion. The fence orders the
  // enqueue before the load on every architecture (on x86 the RTS tail CAS already does).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (armed_.load(std::memory_order_relaxed) && armed_.exchange(false, std::memory_order_acq_rel)) {
    uint64_t one = 1;
    // EAGAIN (counter saturated) still leaves the fd readable: all a wake-up needs.
    ssize_t ignored = write(wake_fd_, &one, sizeof(one));
    (void)ignored;
    wake_writes_.fetch_add(1, std::memory_order_relaxed);
  }
  pushing_.fetch_sub(1, std::memory_order_release);
}

unsigned RbdCompletionQueue::Drain(BdevIo** out, unsigned max) noexcept {
  return rte_ring_dequeue_burst(ring_, reinterpret_cast<void**>(out), max, nullptr);
}

}  // namespace pollux
