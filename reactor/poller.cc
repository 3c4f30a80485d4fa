#include "pollux/reactor/poller.h"

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
}

}  // namespace pollux
