#include "pollux/reactor/completion_ring.h"

#include <rte_common.h>
#include <rte_pause.h>
#include <rte_ring.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "pollux/env/log.h"
#include "tsan_order.h"

namespace pollux {

CompletionRing::CompletionRing(uint32_t capacity, const char* name, int wake_fd)
    : capacity_(capacity < 1 ? 1 : capacity) {
  // An rte_ring of `count` slots holds count - 1 objects: one slot more than may be out.
  const uint32_t count = rte_align32pow2(capacity_ + 1);
  const ssize_t bytes = rte_ring_get_memsize(count);
  if (bytes > 0) {
    ring_memory_ = std::aligned_alloc(
        RTE_CACHE_LINE_SIZE, RTE_ALIGN_CEIL(static_cast<size_t>(bytes), RTE_CACHE_LINE_SIZE));
  }
  if (ring_memory_ == nullptr) {
    PX_LOG(kError, "reactor", "%s: no memory for a completion ring of %u entries", name, count);
    std::abort();
  }
  // Producers are threads the kernel may preempt in the middle of an enqueue: RTS, so that the
  // others do not spin behind one (reactor/mailbox.h explains).
  ring_ = static_cast<rte_ring*>(ring_memory_);
  if (int rc = rte_ring_init(ring_, name, count, RING_F_MP_RTS_ENQ | RING_F_SC_DEQ); rc != 0) {
    PX_LOG(kError, "reactor", "%s: rte_ring_init: %s", name, std::strerror(-rc));
    std::abort();
  }
  if (wake_fd >= 0) {
    wake_fd_ = wake_fd;
    return;
  }
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    PX_LOG(kError, "reactor", "%s: eventfd: %s", name, std::strerror(errno));
    std::abort();
  }
  owns_wake_fd_ = true;
}

CompletionRing::~CompletionRing() {
  // The owner may have drained an object whose producer has not yet looked at armed_.
  while (pushing_.load(std::memory_order_acquire) != 0) rte_pause();
  if (owns_wake_fd_) close(wake_fd_);
  std::free(ring_memory_);
}

void CompletionRing::Push(void* object, uint32_t wake_when_out_at_most) noexcept {
  // Counted before the enqueue, whose tail CAS publishes it: an owner that drains this object
  // sees the count, and its destructor waits for the decrement below.
  pushing_.fetch_add(1, std::memory_order_relaxed);
  TsanPublish(ring_);  // what the producer wrote into `object` happens before its drain
  // Never full (see the header); a retry would only spin if that promise were broken.
  while (rte_ring_enqueue(ring_, object) != 0) rte_pause();
  const uint32_t pushed = pushed_total_.fetch_add(1, std::memory_order_relaxed) + 1;
  // Dekker with the owner's Arm(); fence; poll: either this load sees armed_ and writes the
  // eventfd, or the owner's poll after arming finds the object. With RTS, the last producer in
  // flight publishes everyone's objects and comes through here after doing so. On x86 the
  // tail CAS is a locked instruction, a full barrier: only the compiler must be held back.
#if defined(RTE_ARCH_X86)
  std::atomic_signal_fence(std::memory_order_seq_cst);
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
  if (armed_.load(std::memory_order_relaxed)) {
    // Signed: a stale handed-out total (the owner handed out more since) reads as "few out",
    // which only wakes early. The last object out always sees 0 or less.
    const int64_t out =
        static_cast<int32_t>(handed_out_total_.load(std::memory_order_relaxed) - pushed);
    if (out <= static_cast<int64_t>(wake_when_out_at_most) &&
        armed_.exchange(false, std::memory_order_acq_rel)) {
      uint64_t one = 1;
      // EAGAIN (counter saturated) still leaves the fd readable: all a wake-up needs.
      ssize_t ignored = write(wake_fd_, &one, sizeof(one));
      (void)ignored;
      wake_writes_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  pushing_.fetch_sub(1, std::memory_order_release);
}

unsigned CompletionRing::Drain(void** out, unsigned max) noexcept {
  const unsigned n = rte_ring_dequeue_burst(ring_, out, max, nullptr);
  if (n != 0) TsanReceive(ring_);
  return n;
}

}  // namespace pollux
