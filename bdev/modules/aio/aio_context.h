// A Linux AIO context (io_setup .. io_destroy) with completions reaped from its user-space
// ring, and the eventfd the kernel signals on each completion. Private to the aio module.
//
// The kernel maps each context's completion ring into the process (io_context_t is its
// address): a header {id, nr, head, tail, magic, compat_features, incompat_features,
// header_length} followed by nr io_events. The kernel appends at `tail`; whoever reaps advances
// `head`. Reading it here, as SPDK's bdev_aio and fio's userspace_reap do, costs no syscall,
// and nothing at all when head == tail; io_getevents stays as the fallback for a ring whose
// header is not the one we know.
//
// Threads: one AioContext belongs to one thread (a channel's); nothing here is thread-safe.
#pragma once

#include <libaio.h>

#include <cstdint>

#include "absl/status/statusor.h"

namespace pollux {

// An eventfd, closed on destruction. Non-blocking, close-on-exec.
class EventFd {
 public:
  static absl::StatusOr<EventFd> Create();
  EventFd() = default;
  EventFd(EventFd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  EventFd& operator=(EventFd&& other) noexcept;
  ~EventFd();
  EventFd(const EventFd&) = delete;
  EventFd& operator=(const EventFd&) = delete;

  int fd() const { return fd_; }

 private:
  explicit EventFd(int fd) : fd_(fd) {}
  int fd_ = -1;
};

class AioContext {
 public:
  // io_setup for `depth` requests in flight. With `reap_from_user_ring` false every reap is an
  // io_getevents call (the fallback, forced: for tests and comparisons).
  static absl::StatusOr<AioContext> Create(unsigned depth, bool reap_from_user_ring = true);

  AioContext() = default;
  AioContext(AioContext&& other) noexcept;
  AioContext& operator=(AioContext&& other) noexcept;
  // io_destroy: the kernel waits for the requests still in flight.
  ~AioContext();
  AioContext(const AioContext&) = delete;
  AioContext& operator=(const AioContext&) = delete;

  bool valid() const { return context_ != nullptr; }
  // Whether completions come from the user-space ring (false: io_getevents).
  bool reaps_from_user_ring() const { return ring_ != nullptr; }

  // io_submit: how many of the `count` iocbs the kernel took, or -errno when it took none
  // (the error is the first iocb's: EAGAIN for "no resources now", anything else is that
  // iocb's own failure).
  int Submit(iocb** iocbs, long count) noexcept;

  // Moves up to `max` completions into `events`; returns how many (never negative: a failed
  // io_getevents in the fallback counts as none). No syscall on the user-ring path.
  int Reap(io_event* events, unsigned max) noexcept;

  // Whether completions are waiting, without a syscall and without taking them. Only
  // meaningful on the user-ring path; the fallback answers false (nothing known).
  bool HasCompletions() const noexcept;

 private:
  // The kernel's struct aio_ring (fs/aio.c), the part user space may rely on.
  struct RingHeader {
    uint32_t id;
    uint32_t nr;    // number of io_events in the ring
    uint32_t head;  // next event to reap: written by the reaper
    uint32_t tail;  // next event the kernel writes
    uint32_t magic;
    uint32_t compat_features;
    uint32_t incompat_features;
    uint32_t header_length;  // sizeof(struct aio_ring): where the events start
  };
  static constexpr uint32_t kRingMagic = 0xa10a10a1;

  explicit AioContext(io_context_t context, RingHeader* ring)
      : context_(context), ring_(ring), ring_size_(ring != nullptr ? ring->nr : 0) {}
  void Destroy() noexcept;
  int ReapFromRing(io_event* events, unsigned max) noexcept;

  io_context_t context_ = nullptr;
  RingHeader* ring_ = nullptr;  // null: the fallback (io_getevents)
  uint32_t ring_size_ = 0;      // ring_->nr, read once: the kernel never changes it
};

}  // namespace pollux
