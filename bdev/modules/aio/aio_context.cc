#include "aio_context.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <utility>

#include "absl/strings/str_format.h"
#include "pollux/env/log.h"

namespace pollux {

absl::StatusOr<EventFd> EventFd::Create() {
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) {
    return absl::ErrnoToStatus(errno, "eventfd");
  }
  return EventFd(fd);
}

EventFd& EventFd::operator=(EventFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

EventFd::~EventFd() {
  if (fd_ >= 0) close(fd_);
}

absl::StatusOr<AioContext> AioContext::Create(unsigned depth, bool reap_from_user_ring) {
  io_context_t context = nullptr;
  // libaio returns -errno rather than setting errno.
  int rc = io_setup(static_cast<int>(depth), &context);
  if (rc < 0) {
    std::string hint;
    if (rc == -EAGAIN) hint = " (fs.aio-max-nr reached: see /proc/sys/fs/aio-nr)";
    if (rc == -ENOSYS) hint = " (the kernel has no AIO support, or a seccomp filter refuses it)";
    return absl::ErrnoToStatus(-rc, absl::StrFormat("io_setup(%u)%s", depth, hint));
  }
  RingHeader* ring = reinterpret_cast<RingHeader*>(context);
  bool known = ring->magic == kRingMagic && ring->incompat_features == 0 &&
               ring->header_length == sizeof(RingHeader) && ring->nr != 0;
  if (reap_from_user_ring && !known) {
    PX_LOG(kWarning, "aio",
           "the kernel's AIO completion ring has an unknown header (magic %#x, incompat %#x, "
           "header %u bytes): completions will be reaped with io_getevents",
           ring->magic, ring->incompat_features, ring->header_length);
  }
  return AioContext(context, reap_from_user_ring && known ? ring : nullptr);
}

AioContext::AioContext(AioContext&& other) noexcept
    : context_(std::exchange(other.context_, nullptr)),
      ring_(std::exchange(other.ring_, nullptr)),
      ring_size_(std::exchange(other.ring_size_, 0)) {}

AioContext& AioContext::operator=(AioContext&& other) noexcept {
  if (this != &other) {
    Destroy();
    context_ = std::exchange(other.context_, nullptr);
    ring_ = std::exchange(other.ring_, nullptr);
    ring_size_ = std::exchange(other.ring_size_, 0);
  }
  return *this;
}

AioContext::~AioContext() { Destroy(); }

void AioContext::Destroy() noexcept {
  if (context_ == nullptr) return;
  if (int rc = io_destroy(context_); rc < 0) {
    PX_LOG(kError, "aio", "io_destroy: %s", strerror(-rc));
  }
  context_ = nullptr;
  ring_ = nullptr;
}

int AioContext::Submit(iocb** iocbs, long count) noexcept {
  return io_submit(context_, count, iocbs);
}

bool AioContext::HasCompletions() const noexcept {
  if (ring_ == nullptr) return false;
  // Acquire is not needed to answer "anything there?"; the reap that follows loads with it.
  uint32_t tail = std::atomic_ref<uint32_t>(ring_->tail).load(std::memory_order_relaxed);
  uint32_t head = std::atomic_ref<uint32_t>(ring_->head).load(std::memory_order_relaxed);
  return head != tail;
}

int AioContext::Reap(io_event* events, unsigned max) noexcept {
  if (ring_ != nullptr) [[likely]] {
    return ReapFromRing(events, max);
  }
  timespec no_wait{0, 0};
  int rc = io_getevents(context_, 0, static_cast<long>(max), events, &no_wait);
  if (rc < 0) {
    // EINTR is the only plausible one with a zero timeout; the next poll retries.
    if (rc != -EINTR) PX_LOG(kError, "aio", "io_getevents: %s", strerror(-rc));
    return 0;
  }
  return rc;
}

int AioContext::ReapFromRing(io_event* events, unsigned max) noexcept {
  // Only this thread writes `head` (the kernel writes it only inside io_getevents, which the
  // user-ring path never calls), so a relaxed load reads our own last store.
  uint32_t head = std::atomic_ref<uint32_t>(ring_->head).load(std::memory_order_relaxed);
  // Acquire pairs with the kernel's smp_wmb() between writing an event and publishing the new
  // tail (aio_complete): the events below `tail` are complete once we see it.
  uint32_t tail = std::atomic_ref<uint32_t>(ring_->tail).load(std::memory_order_acquire);
  if (head == tail) return 0;
  if (head >= ring_size_ || tail >= ring_size_) [[unlikely]] {
    // Not a ring the kernel would write: never trust indexes from shared memory blindly.
    PX_LOG(kError, "aio", "completion ring head %u / tail %u outside its %u events: reaping "
           "with io_getevents from now on", head, tail, ring_size_);
    ring_ = nullptr;
    return Reap(events, max);
  }
  uint32_t available = tail > head ? tail - head : ring_size_ - head + tail;
  uint32_t count = std::min(available, max);
  const io_event* ring_events = reinterpret_cast<const io_event*>(ring_ + 1);
  uint32_t first = std::min(count, ring_size_ - head);
  std::memcpy(events, ring_events + head, first * sizeof(io_event));
  std::memcpy(events + first, ring_events, (count - first) * sizeof(io_event));
  // Release: the copies above complete before the kernel can see the slots free and reuse
  // them (it reads `head` when it refills its count of free slots, user_refill_reqs_available).
  std::atomic_ref<uint32_t>(ring_->head).store((head + count) % ring_size_,
                                               std::memory_order_release);
  return static_cast<int>(count);
}

}  // namespace pollux
