#include "pollux/reactor/poller.h"

#include <rte_cycles.h>

#include "pollux/reactor/reactor.h"
#include "pollux/reactor/thread.h"

namespace pollux {

Poller::Poller(Thread* thread, uint64_t id, std::string name, absl::AnyInvocable<PollResult()> fn,
               PollerOptions options, uint64_t period_tsc)
    : thread_(thread),
      id_(id),
      name_(std::move(name)),
      fn_(std::move(fn)),
      options_(std::move(options)),
      period_(options_.period),
      period_tsc_(period_tsc) {}

bool Poller::holds_reactor_awake() const {
  return !is_timed() && state_ == State::kRunning && options_.wake_fd < 0 && !options_.arm &&
         !options_.woken_by_messages;
}

void Poller::Pause() {
  if (state_ == State::kParked) Unpark();
  if (state_ == State::kRunning) state_ = State::kPaused;
}

void Poller::Unpark() noexcept {
  if (state_ != State::kParked) return;
  state_ = State::kRunning;
  thread_->polled_changed_ = true;
  last_busy_tsc_ = rte_rdtsc();  // a full park time before it may park again
  if (thread_->reactor() != nullptr) thread_->reactor()->CountUnpark();
  if (options_.disarm) {
    Thread* previous = Thread::current_;
    Thread::current_ = thread_;
    options_.disarm();
    Thread::current_ = previous;
  }
}

void Poller::Resume() {
  if (state_ != State::kPaused) return;
  state_ = State::kRunning;
}

void Poller::ChangeAwaiting(AwaitedWork work) noexcept {
  const bool was = awaiting_ != AwaitedWork::kNothing;
  const bool is = work != AwaitedWork::kNothing;
  awaiting_ = work;
  if (is) Unpark();
  // On the owning thread, so on its reactor: a single writer.
  if (was != is && thread_->reactor() != nullptr)
    thread_->reactor()->awaiting_pollers_ += is ? 1 : -1;
}

void Poller::Unregister() {
  if (state_ == State::kUnregistered) return;
  SetAwaiting(AwaitedWork::kNothing);
  state_ = State::kUnregistered;
  thread_->pollers_changed_ = true;
  thread_->unregistered_pollers_.push_back(this);
  // Outside the thread's poll loop (a message, an fd handler, shutdown) nothing is iterating
  // the poller lists, but freeing still waits for the end of the next poll: one rule is simpler.
  //
  // The wake fd, though, is unwatched now: its owner may close it as soon as this returns (a
  // channel's eventfd, in the channel's destructor), and if a new fd got the same number and
  // were watched before the reap, the reap would unwatch the new one and its wake-ups would
  // be lost. On the owning reactor, epoll_ctl(DEL) is safe at any point.
  Reactor* reactor = thread_->reactor();
  if (options_.wake_fd >= 0 && reactor != nullptr && Reactor::Current() == reactor) {
    reactor->UnwatchFd(options_.wake_fd);
    options_.wake_fd = -1;
  }
}

}  // namespace pollux
