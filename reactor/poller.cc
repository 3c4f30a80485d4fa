#include "pollux/reactor/poller.h"

#include "pollux/reactor/reactor.h"
#include "pollux/reactor/thread.h"

namespace pollux {

Poller::Poller(Thread* thread, std::string name, absl::AnyInvocable<PollResult()> fn,
               PollerOptions options, uint64_t period_tsc)
    : thread_(thread),
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
  if (state_ == State::kRunning) state_ = State::kPaused;
}

void Poller::Resume() {
  if (state_ != State::kPaused) return;
  state_ = State::kRunning;
}

void Poller::Unregister() {
  if (state_ == State::kUnregistered) return;
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
