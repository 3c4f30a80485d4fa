// BdevIoList: a FIFO of BdevIos that a module holds (held by an injected error, delayed, queued
// for its poller), linked through a `BdevIo* next` member of the module's per-I/O context
// (BdevModule::io_context_size), so holding an I/O allocates nothing. One thread's.
#pragma once

#include "pollux/bdev/bdev_io.h"

namespace pollux {

// `Context`: the module's context type (io.module_context<Context>()), with `BdevIo* next`.
template <typename Context>
class BdevIoList {
 public:
  bool empty() const { return head_ == nullptr; }
  // The oldest I/O (nullptr when empty), left in the list.
  BdevIo* front() const { return head_; }

  void Push(BdevIo& io) noexcept {
    Next(io) = nullptr;
    (tail_ != nullptr ? Next(*tail_) : head_) = &io;
    tail_ = &io;
  }
  // The oldest I/O, taken off the list; nullptr when empty. Its link is read before it is
  // returned, so the caller may complete it (and its callback reuse it) at once.
  BdevIo* Pop() noexcept {
    BdevIo* io = head_;
    if (io != nullptr) {
      head_ = Next(*io);
      if (head_ == nullptr) tail_ = nullptr;
    }
    return io;
  }
  // Takes `io` out of the list wherever it is; false when it is not in it. Walks the list: for
  // rare paths (an abort), not per I/O.
  bool Remove(BdevIo& io) noexcept {
    BdevIo* previous = nullptr;
    for (BdevIo* at = head_; at != nullptr; previous = at, at = Next(*at)) {
      if (at != &io) continue;
      (previous != nullptr ? Next(*previous) : head_) = Next(io);
      if (tail_ == &io) tail_ = previous;
      return true;
    }
    return false;
  }
  // Every I/O, in order, as a list of its own; this one is left empty.
  BdevIoList TakeAll() noexcept {
    BdevIoList all = *this;
    head_ = tail_ = nullptr;
    return all;
  }

 private:
  static BdevIo*& Next(BdevIo& io) noexcept { return io.module_context<Context>().next; }

  BdevIo* head_ = nullptr;
  BdevIo* tail_ = nullptr;
};

}  // namespace pollux
