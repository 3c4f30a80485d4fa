#include "mailbox.h"

#include <rte_common.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "pollux/env/log.h"

namespace pollux {

namespace {

// rte_ring_init in `memory` with the given producer mode; aborts on failure (bad arguments
// only: the memory is ours).
rte_ring* InitRing(void* memory, const char* name, uint32_t capacity, unsigned flags) {
  auto* ring = static_cast<rte_ring*>(memory);
  int rc = rte_ring_init(ring, name, capacity, flags);
  if (rc != 0) {
    PX_LOG(kError, "reactor", "rte_ring_init: %s", std::strerror(-rc));
    std::abort();
  }
  return ring;
}

}  // namespace

Mailbox::Mailbox(uint32_t capacity) {
  capacity = rte_align32pow2(capacity < 64 ? 64 : capacity);
  size_t ring_bytes = RTE_ALIGN_CEIL(
      static_cast<size_t>(rte_ring_get_memsize_elem(sizeof(Message), capacity)),
      RTE_CACHE_LINE_SIZE);
  // Plain memory, not a DPDK memzone: rings need no shared memory or name, and threads come
  // and go at run time. Both rings in one allocation.
  memory_ = std::aligned_alloc(RTE_CACHE_LINE_SIZE, 2 * ring_bytes);
  if (memory_ == nullptr) {
    PX_LOG(kError, "reactor", "out of memory for two %u-entry message rings", capacity);
    std::abort();
  }
  // Single-consumer dequeue on both; rte_ring_init sizes each ring to capacity - 1 usable
  // entries, and the elem functions take the element size per call. Why two producer modes:
  // see mailbox.h.
  reactor_ring_ = InitRing(memory_, "pollux_mailbox_mp", capacity, RING_F_SC_DEQ);
  other_ring_ = InitRing(static_cast<char*>(memory_) + ring_bytes, "pollux_mailbox_rts",
                         capacity, RING_F_MP_RTS_ENQ | RING_F_SC_DEQ);
  event_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (event_fd_ < 0) {
    PX_LOG(kError, "reactor", "eventfd: %s", std::strerror(errno));
    std::abort();
  }
  live_count_.fetch_add(1, std::memory_order_relaxed);
}

Mailbox::~Mailbox() {
  if (event_fd_ >= 0) close(event_fd_);
  std::free(memory_);
  live_count_.fetch_sub(1, std::memory_order_relaxed);
}

bool Mailbox::SendFromOtherThread(const Message& message) noexcept {
  other_senders_.fetch_add(1, std::memory_order_acq_rel);
  TsanPublish(other_ring_);
  const bool sent =
      rte_ring_mp_rts_enqueue_bulk_elem(other_ring_, &message, sizeof(Message), 1, nullptr) != 0;
  if (sent) WakeIfArmed();
  // Last: from here the receiver may be gone (its mailbox retired, then freed).
  other_senders_.fetch_sub(1, std::memory_order_release);
  return sent;
}

unsigned Mailbox::SendBurstFromOtherThread(const Message* messages, unsigned count) noexcept {
  other_senders_.fetch_add(1, std::memory_order_acq_rel);
  TsanPublish(other_ring_);
  unsigned sent =
      rte_ring_mp_rts_enqueue_burst_elem(other_ring_, messages, sizeof(Message), count, nullptr);
  if (sent != 0) WakeIfArmed();
  other_senders_.fetch_sub(1, std::memory_order_release);
  return sent;
}

void Mailbox::Kick() noexcept {
  uint64_t one = 1;
  // EAGAIN (counter saturated) still leaves the fd readable, which is all a wake-up needs.
  ssize_t ignored = write(event_fd_, &one, sizeof(one));
  (void)ignored;
}

}  // namespace pollux
