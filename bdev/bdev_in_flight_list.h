// BdevInFlightList: the I/O outstanding on one BdevChannel (SPDK's ch->io_submitted), so that
// the layer can walk them: Abort finds what a caller's cb_arg names, the timeout poller what
// is late. Intrusive and doubly linked through the BdevIo's cold line: O(1) insert and remove,
// nothing allocated. Kept in submission order (appended at submission, never moved), so the
// oldest I/O is at the front. Only the channel's thread touches it. Private.
#pragma once

#include <cstddef>

#include "pollux/bdev/bdev_io.h"

namespace pollux {

class BdevInFlightList {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  // The oldest I/O (nullptr when empty).
  BdevIo* front() const noexcept { return head_; }
  static BdevIo* next(const BdevIo& io) noexcept { return io.in_flight_next_; }

  void PushBack(BdevIo& io) noexcept {
    io.in_flight_next_ = nullptr;
    io.in_flight_prev_ = tail_;
    (tail_ != nullptr ? tail_->in_flight_next_ : head_) = &io;
    tail_ = &io;
  }
  void Remove(BdevIo& io) noexcept {
    (io.in_flight_prev_ != nullptr ? io.in_flight_prev_->in_flight_next_ : head_) =
        io.in_flight_next_;
    (io.in_flight_next_ != nullptr ? io.in_flight_next_->in_flight_prev_ : tail_) =
        io.in_flight_prev_;
  }
  // Walks the list (diagnostics: a channel destroyed with I/O in flight).
  size_t CountSlow() const noexcept {
    size_t count = 0;
    for (BdevIo* io = head_; io != nullptr; io = io->in_flight_next_) ++count;
    return count;
  }

 private:
  BdevIo* head_ = nullptr;
  BdevIo* tail_ = nullptr;
};

}  // namespace pollux
