// The poll loop of one reactor, and how it sleeps. Read Run() first: poll every thread, check
// fds once per millisecond, and in interrupt mode sleep once idle for the spin window.
#include "pollux/reactor/reactor.h"

#include <rte_cycles.h>
#include <rte_pause.h>
#include <sched.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "idle_spin_policy.h"
#include "mailbox.h"
#include "pollux/env/log.h"
#include "pollux/reactor/io_channel.h"
#include "thread_registry.h"

namespace pollux {

constinit thread_local Reactor* Reactor::current_ = nullptr;

namespace {

// A wait for epoll_pwait: `timeout` rounded up to whole milliseconds (nullptr: forever).
int TimeoutMs(const struct timespec* timeout) {
  if (timeout == nullptr) return -1;
  return static_cast<int>(timeout->tv_sec * 1000 + (timeout->tv_nsec + 999'999) / 1'000'000);
}
constexpr unsigned kReactorMessageBurst = 16;
constexpr int kMaxEventsPerWait = 64;
// How often a reactor that holds itself awake refreshes the reasons it publishes.
constexpr uint64_t kAwakeReasonRefreshMs = 100;
// Wake fds carry what they wake in epoll's data: a Poller or a Thread (its mailbox), tagged in
// the low bits (both are heap objects, aligned to 16). Untagged: an fd handler, or nullptr
// for the reactor's own mailbox.
constexpr uintptr_t kPollerTag = 1;
constexpr uintptr_t kMailboxTag = 2;
constexpr uintptr_t kTagMask = 3;
// Pollers that cannot wake the reactor, once parked, are polled this often.
constexpr uint64_t kSlowPollMs = 1;
}  // namespace

Reactor::Reactor(unsigned index, unsigned lcore, int cpu)
    : index_(index),
      lcore_(lcore),
      cpu_(cpu),
      mailbox_(std::make_unique<Mailbox>(4096)),
      idle_spin_policy_(std::make_unique<IdleSpinPolicy>()) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) {
    PX_LOG(kError, "reactor", "epoll_create1: %s", strerror(errno));
    std::abort();
  }
  WatchWakeFd(mailbox_->event_fd(), uintptr_t{0});
}

Reactor::~Reactor() {
  if (epoll_fd_ >= 0) close(epoll_fd_);
}

bool Reactor::SendReactorMessage(MessageFn fn, void* arg) noexcept {
  return mailbox_->Send(Message{fn, arg});
}

int Reactor::LaunchLoop(void* reactor) {
  static_cast<Reactor*>(reactor)->Run();
  return 0;
}

void Reactor::Run() {
  current_ = this;
  ReactorRuntime* runtime = ReactorRuntime::Get();
  const uint64_t fd_check_period = runtime->tsc_hz() / 1000;
  uint64_t now = rte_rdtsc();
  last_busy_tsc_ = now;
  next_fd_check_tsc_ = now + fd_check_period;

  // Acquire (a plain load on x86): what the stopping thread did before (its last sends, their
  // eventfd writes) happens before the teardown below closes those fds.
  while (!stop_.load(std::memory_order_acquire)) {
    // Every send of the previous pass is over (release: before a reaper that sees this).
    passes_.store(passes_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    const uint64_t pass_start = now;
    bool busy = PollOnce(now);  // moves `now` to the end of the pass
    if (busy) {
      if (idle_episode_) EndIdleEpisode(pass_start);
      last_busy_tsc_ = now;
    }
    if (now >= next_fd_check_tsc_) {
      // Poll mode, or interrupt mode while awake: fd handlers (RPC) are control traffic, so a
      // non-blocking look once per millisecond is enough and costs one syscall per ms. The
      // same look unparks the parked pollers whose wake fd fired, and parks the idle ones.
      MaybeParkIdlePollers(now);
      bool handled = DispatchFdEvents(nullptr, /*block=*/false);
      uint64_t after = rte_rdtsc();
      AddTo(handled ? busy_tsc_ : idle_tsc_, after - now);
      now = after;
      next_fd_check_tsc_ = now + fd_check_period;
    } else if (!busy) {
      const bool interrupt_mode = mode_.load(std::memory_order_relaxed) == ReactorMode::kInterrupt;
      if (!idle_episode_) OpenIdleEpisode(interrupt_mode);
      if (interrupt_mode) {
        if (now - last_busy_tsc_ >= episode_spin_tsc_ && TrySleep(now)) {
          now = rte_rdtsc();
          next_fd_check_tsc_ = now + fd_check_period;
        }
      } else if (episode_awaits_helpers_) {
        // Poll mode, idle, waiting for helper threads that share this core: let them have it
        // (one syscall per idle pass, which returns at once when none is runnable here).
        sched_yield();
        now = rte_rdtsc();
      }
    }
  }
  DestroyAllThreads();
  if (idle_spin_policy_->device_wait().episodes() != 0) {
    // What the reactor learned about waiting for devices (figures for pollux-perf -L info).
    ReactorInfo info = Info();
    PX_LOG(kInfo, "reactor",
           "reactor %u: %lu device-wait episodes, spinning %.1f us, sleeping "
           "%.1f us on average: %s",
           index_, info.device_wait_episodes, info.device_wait_spin_us, info.device_wait_sleep_us,
           info.device_wait_sleeps ? "sleeps" : "spins");
  }
  current_ = nullptr;
  TsanPublish(this);  // DPDK's lcore wait orders the end of the loop before its teardown
}

void Reactor::OpenIdleEpisode(bool interrupt_mode) {
  idle_episode_ = true;
  uint64_t longest_window = 0;
  AwaitedWork awaited = AwaitedByPollers(longest_window);
  episode_awaits_helpers_ = awaited == AwaitedWork::kHelperThreads;
  // Poll mode spins (or yields to helper threads) whatever the policy would say: only an
  // episode in interrupt mode is the policy's.
  if (!interrupt_mode) return;
  episode_spin_tsc_ = idle_spin_policy_->ChooseSpin(
      awaited, longest_window,
      ReactorRuntime::Get()->spin_window_tsc_.load(std::memory_order_relaxed));
  if (awaited == AwaitedWork::kDevice) {
    device_wait_episodes_.store(idle_spin_policy_->device_wait().episodes(),
                                std::memory_order_relaxed);
  }
}

void Reactor::EndIdleEpisode(uint64_t pass_start) {
  idle_episode_ = false;
  if (!idle_spin_policy_->EndEpisode(pass_start - last_busy_tsc_)) return;
  const DeviceWaitPolicy& policy = idle_spin_policy_->device_wait();
  device_wait_spin_tsc_.store(policy.average_spin_ticks(), std::memory_order_relaxed);
  device_wait_sleep_tsc_.store(policy.average_sleep_ticks(), std::memory_order_relaxed);
  device_wait_sleeps_.store(policy.prefers_sleep(), std::memory_order_relaxed);
}

AwaitedWork Reactor::AwaitedByPollers(uint64_t& longest_window) const {
  AwaitedWork awaited = AwaitedWork::kNothing;
  for (const Thread* thread : threads_) {
    longest_window = std::max(longest_window, thread->mailbox_window_tsc_);
    for (const Poller* poller : thread->active_pollers_) {
      if (poller->state_ == Poller::State::kRunning && poller->options_.wake_fd >= 0) {
        awaited = std::max(awaited, poller->awaiting_);
        longest_window = std::max(longest_window, poller->poll_window_tsc_);
      }
    }
  }
  return awaited;
}

bool Reactor::PollOnce(uint64_t& now) {
  // One rte_rdtsc() per thread per pass (15-20 ns each on the VMs of docs/performance.md, most
  // of an idle pass): the end of one thread's slice is the start of the next, and the end of
  // the pass is the caller's next `now`.
  const uint64_t start = now;
  uint64_t t0 = start;
  Message messages[kReactorMessageBurst];
  unsigned count = mailbox_->Drain(messages, kReactorMessageBurst);
  if (count != 0) {
    for (unsigned i = 0; i < count; ++i) messages[i].fn(messages[i].arg);
    t0 = rte_rdtsc();  // reactor messages are not any thread's time
  }
  int busy = count != 0;

  bool any_exiting = false;
  for (size_t i = 0; i < threads_.size(); ++i) {
    Thread* thread = threads_[i];
    PollResult result = thread->Poll(t0);
    const bool thread_busy = result == PollResult::kBusy;
    busy_threads_ +=
        static_cast<uint32_t>(thread_busy) - static_cast<uint32_t>(thread->last_poll_busy_);
    thread->last_poll_busy_ = thread_busy;
    uint64_t t1 = rte_rdtsc();
    if (result == PollResult::kBusy) {
      thread->stats_.busy_tsc.Add(t1 - t0);
    } else {
      thread->stats_.idle_tsc.Add(t1 - t0);
    }
    busy |= static_cast<int>(result);
    any_exiting |= thread->exiting_;
    t0 = t1;
  }
  if (threads_.empty() && count == 0) t0 = rte_rdtsc();
  AddTo(busy ? busy_tsc_ : idle_tsc_, t0 - start);
  now = t0;
  if (any_exiting) ReapExitedThreads();
  if (!retired_mailboxes_.empty()) [[unlikely]]
    FreeRetiredMailboxes();
  return busy != 0;
}

bool Reactor::DispatchFdEvents(const struct timespec* timeout, bool block) {
  epoll_event events[kMaxEventsPerWait];
  struct timespec zero = {0, 0};
  // Blocked, this reactor is in no send: a retired mailbox need not wait for it to wake.
  if (block) blocked_.store(true, std::memory_order_release);
  int n = use_epoll_pwait2_
              ? epoll_pwait2(epoll_fd_, events, kMaxEventsPerWait, block ? timeout : &zero, nullptr)
              : epoll_pwait(epoll_fd_, events, kMaxEventsPerWait, block ? TimeoutMs(timeout) : 0,
                            nullptr);
  if (block) blocked_.store(false, std::memory_order_relaxed);
  if (n < 0 && errno == ENOSYS && use_epoll_pwait2_) {
    // Kernels before 5.11 and valgrind lack epoll_pwait2: millisecond waits then.
    use_epoll_pwait2_ = false;
    return DispatchFdEvents(timeout, block);
  }
  if (n < 0) {
    if (errno != EINTR) PX_LOG(kError, "reactor", "epoll_pwait2: %s", strerror(errno));
    return false;
  }
  bool handled = false;
  // After a sleep, the sources that woke the reactor learn how long it slept (their windows).
  const uint64_t slept = block && n > 0 ? rte_rdtsc() - last_busy_tsc_ : 0;
  for (int i = 0; i < n; ++i) {
    auto data = reinterpret_cast<uintptr_t>(events[i].data.ptr);
    if (data & kPollerTag) {
      // A poller's wake fd: poll it again if it was parked.
      auto* poller = reinterpret_cast<Poller*>(data & ~kTagMask);
      if (slept != 0) AdjustWindow(poller->poll_window_tsc_, slept);
      if (poller->state_ == Poller::State::kParked) {
        poller->Unpark();
        handled = true;
      }
      continue;
    }
    if (data & kMailboxTag) {
      if (slept != 0) {
        AdjustWindow(reinterpret_cast<Thread*>(data & ~kTagMask)->mailbox_window_tsc_, slept);
      }
      continue;
    }
    auto* handler = static_cast<Thread::FdHandler*>(events[i].data.ptr);
    if (handler == nullptr || handler->removed) continue;  // a wake-up fd: its job is done
    Thread* previous = Thread::current_;
    Thread::current_ = handler->thread;
    handler->handler();
    Thread::current_ = previous;
    last_busy_tsc_ = rte_rdtsc();
    handled = true;
  }
  return handled;
}

void Reactor::AdjustWindow(uint64_t& window, uint64_t block) {
  ReactorRuntime* runtime = ReactorRuntime::Get();
  window = IdleSpinPolicy::AdjustWindow(window, block,
                                        runtime->spin_window_tsc_.load(std::memory_order_relaxed),
                                        runtime->first_window_tsc_);
}

bool Reactor::TrySleep(uint64_t now) {
  // A poller that cannot sleep keeps the reactor awake, and the reactor says which.
  size_t holders = 0;
  bool slow_polled = false;
  for (Thread* thread : threads_) {
    for (Poller* poller : thread->active_pollers_) {
      holders += poller->holds_reactor_awake();
      slow_polled |= poller->slow_polled();
    }
  }
  if (holders != 0) {
    if (now >= next_reason_refresh_tsc_) {
      std::vector<std::string> reasons;
      for (Thread* thread : threads_) {
        for (const std::string& name : thread->PollersHoldingReactorAwake()) {
          reasons.push_back(absl::StrCat("poller \"", name, "\" on thread \"", thread->name(),
                                         "\" cannot sleep"));
        }
      }
      std::lock_guard lock(info_mutex_);
      awake_reasons_ = std::move(reasons);
      next_reason_refresh_tsc_ =
          now + ReactorRuntime::Get()->tsc_hz() * kAwakeReasonRefreshMs / 1000;
    }
    return false;
  }
  if (!awake_reasons_.empty()) {
    std::lock_guard lock(info_mutex_);
    awake_reasons_.clear();
  }

  // Pollers idle for the park time leave the polled set before the reactor sleeps too: a
  // reactor that sleeps between short bursts may never be awake at its millisecond fd check.
  MaybeParkIdlePollers(now);
  if (!ArmPollers()) {
    DisarmPollers();
    return false;
  }
  mailbox_->Arm();
  for (Thread* thread : threads_) thread->mailbox_->Arm();
  sleeping_.store(true, std::memory_order_relaxed);
  // Pairs with Mailbox::WakeIfArmed (whose side of the pair, on x86, is the locked instruction
  // that ends every enqueue): either a sender sees us armed and writes the eventfd, or the
  // poll and the check below see its message, or it in flight. Without the fence our loads
  // could pass our store of `armed_` and both sides could miss.
  std::atomic_thread_fence(std::memory_order_seq_cst);

  // Poll once more after arming: messages and events that raced the arming are found here.
  // A sender between reserving its slot and publishing it may have read `armed_` before we
  // set it, and its message is not visible yet: stay awake for it too.
  const uint64_t start_of_final_poll = now;
  bool busy = PollOnce(now);
  if (!busy) busy = MessagesPendingAfterArming();
  if (busy) {
    // Work arrived: the spin window starts again, as after any busy iteration.
    if (idle_episode_) EndIdleEpisode(start_of_final_poll);
    last_busy_tsc_ = now;
  } else {
    uint64_t start = now;
    uint64_t deadline = UINT64_MAX;
    for (Thread* thread : threads_) deadline = std::min(deadline, thread->NextTimerTsc());
    if (slow_polled) deadline = std::min(deadline, next_park_check_tsc_);
    if (deadline > start) {
      struct timespec timeout;
      struct timespec* timeout_ptr = nullptr;
      if (deadline != UINT64_MAX) {
        // Whole seconds and the remainder apart: ticks * 10^9 overflows 64 bits beyond ~6 s
        // at 3 GHz, and the wrapped value woke the reactor early, again and again.
        uint64_t ticks = deadline - start;
        uint64_t hz = ReactorRuntime::Get()->tsc_hz();
        timeout.tv_sec = static_cast<time_t>(ticks / hz);
        timeout.tv_nsec = static_cast<long>((ticks % hz) * 1000000000ull / hz);
        timeout_ptr = &timeout;
      }
      AddTo(sleeps_, 1);
      DispatchFdEvents(timeout_ptr, /*block=*/true);
      AddTo(wakeups_, 1);
      AddTo(sleep_tsc_, rte_rdtsc() - start);
    }
  }
  sleeping_.store(false, std::memory_order_relaxed);
  mailbox_->Disarm();
  for (Thread* thread : threads_) thread->mailbox_->Disarm();
  DisarmPollers();
  return true;
}

bool Reactor::MessagesPendingAfterArming() const {
  if (mailbox_->MustStayAwakeAfterArming()) return true;
  for (Thread* thread : threads_) {
    if (thread->mailbox_->MustStayAwakeAfterArming()) return true;
  }
  return false;
}

bool Reactor::ArmPollers() {
  for (Thread* thread : threads_) {
    for (Poller* poller : thread->active_pollers_) {
      if (poller->state_ != Poller::State::kRunning || !poller->options_.arm) continue;
      Thread* previous = Thread::current_;
      Thread::current_ = thread;
      bool armed = poller->options_.arm();
      Thread::current_ = previous;
      if (!armed) return false;
      poller->armed_ = true;
    }
  }
  return true;
}

void Reactor::DisarmPollers() {
  for (Thread* thread : threads_) {
    for (Poller* poller : thread->active_pollers_) {
      if (!poller->armed_) continue;
      poller->armed_ = false;
      if (poller->state_ == Poller::State::kUnregistered || !poller->options_.disarm) continue;
      Thread* previous = Thread::current_;
      Thread::current_ = thread;
      poller->options_.disarm();
      Thread::current_ = previous;
    }
  }
}

void Reactor::MaybeParkIdlePollers(uint64_t now) {
  if (now < next_park_check_tsc_) return;
  ReactorRuntime* runtime = ReactorRuntime::Get();
  next_park_check_tsc_ = now + runtime->tsc_hz() / 1000 * kSlowPollMs;
  ParkIdlePollers(now);
}

int Reactor::ParkIdlePollers(uint64_t now) {
  const uint64_t park_after =
      ReactorRuntime::Get()->park_after_tsc_.load(std::memory_order_relaxed);
  int parked = 0;
  for (Thread* thread : threads_) {
    for (Poller* poller : thread->active_pollers_) {
      if (poller->slow_polled()) {
        SlowPoll(*thread, *poller);
        continue;
      }
      if (park_after == 0 || poller->state_ != Poller::State::kRunning ||
          poller->awaiting_ != AwaitedWork::kNothing || now - poller->last_busy_tsc_ < park_after) {
        continue;
      }
      if (poller->options_.wake_fd >= 0 && poller->options_.arm) {
        parked += TryPark(*thread, *poller, now);
      } else if (poller->holds_reactor_awake()) {
        // Nothing can wake the reactor for it (spdk#1769: such a poller kept a core from ever
        // sleeping): it is polled once per millisecond from now on, until it finds work.
        poller->state_ = Poller::State::kParked;
        thread->polled_changed_ = true;
        AddTo(poller_parks_, 1);
        ++parked;
      }
    }
  }
  return parked;
}

void Reactor::SlowPoll(Thread& thread, Poller& poller) {
  Thread* previous = Thread::current_;
  Thread::current_ = &thread;
  poller.state_ = Poller::State::kRunning;  // as in the poll loop: it may pause or unregister
  const bool busy = poller.Run() == PollResult::kBusy;
  if (poller.state_ == Poller::State::kRunning && !busy) {
    poller.state_ = Poller::State::kParked;
  } else {
    // Back to the polled set: found work, paused or unregistered itself.
    thread.polled_changed_ = true;
    if (poller.state_ == Poller::State::kRunning) {
      poller.last_busy_tsc_ = rte_rdtsc();
      AddTo(poller_unparks_, 1);
    }
  }
  Thread::current_ = previous;
  if (busy) last_busy_tsc_ = rte_rdtsc();
}

bool Reactor::TryPark(Thread& thread, Poller& poller, uint64_t now) {
  Thread* previous = Thread::current_;
  Thread::current_ = &thread;
  bool parked = poller.options_.arm();
  if (parked) {
    poller.state_ = Poller::State::kParked;
    // As before a sleep: poll once after arming, so that work that raced the arming is not
    // left behind a notification that already went by.
    if (poller.Run() == PollResult::kBusy) {
      poller.state_ = Poller::State::kRunning;
      parked = false;
    }
  }
  if (!parked) {
    poller.last_busy_tsc_ = now;
    if (poller.state_ != Poller::State::kUnregistered && poller.options_.disarm) {
      poller.options_.disarm();
    }
  }
  Thread::current_ = previous;
  if (parked) {
    thread.polled_changed_ = true;
    AddTo(poller_parks_, 1);
  }
  return parked;
}

void Reactor::WatchWakeFd(int fd, Poller* poller) {
  WatchWakeFd(fd, reinterpret_cast<uintptr_t>(poller) | kPollerTag);
}

void Reactor::WatchWakeFd(int fd, uintptr_t data) {
  epoll_event event{};
  event.events = EPOLLIN | EPOLLET;
  event.data.ptr = reinterpret_cast<void*>(data);
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0 && errno != EEXIST) {
    PX_LOG(kError, "reactor", "reactor %u: watching wake fd %d: %s", index_, fd, strerror(errno));
  }
}

absl::Status Reactor::WatchFdHandler(Thread::FdHandler* handler) {
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.ptr = handler;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, handler->fd, &event) != 0) {
    return absl::InternalError(absl::StrCat("watching fd ", handler->fd, " on thread \"",
                                            handler->thread->name(), "\": ", strerror(errno)));
  }
  return absl::OkStatus();
}

void Reactor::UnwatchFd(int fd) { epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr); }

void Reactor::Adopt(Thread* thread) {
  {
    std::lock_guard lock(info_mutex_);
    threads_.push_back(thread);
  }
  thread->reactor_.store(this, std::memory_order_release);
  WatchWakeFd(thread->mailbox_->event_fd(), reinterpret_cast<uintptr_t>(thread) | kMailboxTag);
  for (Poller* poller : thread->active_pollers_) {
    if (poller->options_.wake_fd >= 0) WatchWakeFd(poller->options_.wake_fd, poller);
  }
  CountThreadState(*thread, +1);
  thread->placed_.store(true, std::memory_order_release);
  for (auto& handler : thread->fd_handlers_) {
    if (absl::Status s = WatchFdHandler(handler.get()); !s.ok()) {
      PX_LOG(kError, "reactor", "%s", s.message());
    }
  }
}

void Reactor::CountThreadState(const Thread& thread, int sign) {
  busy_threads_ += static_cast<uint32_t>(sign * static_cast<int>(thread.last_poll_busy_));
  auto count = [&](const Poller* poller) {
    if (poller->awaiting_ != AwaitedWork::kNothing) awaiting_pollers_ += sign;
  };
  for (const Poller* poller : thread.active_pollers_) count(poller);
  for (const auto& [tsc, poller] : thread.timed_pollers_) count(poller);
}

void Reactor::Detach(Thread* thread) {
  thread->placed_.store(false, std::memory_order_release);
  CountThreadState(*thread, -1);
  UnwatchFd(thread->mailbox_->event_fd());
  for (Poller* poller : thread->active_pollers_) {
    if (poller->options_.wake_fd >= 0) UnwatchFd(poller->options_.wake_fd);
  }
  for (auto& handler : thread->fd_handlers_) UnwatchFd(handler->fd);
  std::lock_guard lock(info_mutex_);
  threads_.erase(std::remove(threads_.begin(), threads_.end(), thread), threads_.end());
  thread_count_.fetch_sub(1, std::memory_order_relaxed);
}

void Reactor::ReapExitedThreads() {
  for (size_t i = 0; i < threads_.size();) {
    Thread* thread = threads_[i];
    bool removed = thread->exiting_ && thread->CanBeDestroyed() &&
                   ThreadRegistry::Get().RemoveIf(thread, thread->id(),
                                                  [thread] { return thread->mailbox_->Empty(); });
    if (removed) {
      Detach(thread);
      RetiredMailbox retired{std::move(thread->mailbox_), {}};
      for (const auto& reactor : ReactorRuntime::Get()->reactors()) {
        retired.passes.push_back(reactor->passes_.load(std::memory_order_acquire));
      }
      retired_mailboxes_.push_back(std::move(retired));
      delete thread;
    } else {
      ++i;
    }
  }
}

void Reactor::FreeRetiredMailboxes() {
  const auto& reactors = ReactorRuntime::Get()->reactors();
  std::erase_if(retired_mailboxes_, [&](const RetiredMailbox& retired) {
    if (!retired.mailbox->NoSenderFromOtherThreads()) return false;
    for (size_t i = 0; i < reactors.size() && i < retired.passes.size(); ++i) {
      const Reactor& r = *reactors[i];
      if (r.passes_.load(std::memory_order_acquire) == retired.passes[i] &&
          !r.blocked_.load(std::memory_order_acquire)) {
        return false;  // maybe still inside the send it was in at the retirement
      }
    }
    return true;
  });
}

void Reactor::DestroyAllThreads() {
  // Run what is still queued (a component's last messages), within reason, then destroy
  // whatever is left. Components are expected to have exited their threads by now.
  for (int round = 0; round < 1000; ++round) {
    bool pending = !mailbox_->Empty();
    for (Thread* thread : threads_) pending |= !thread->mailbox_->Empty();
    if (!pending) break;
    uint64_t now = rte_rdtsc();
    PollOnce(now);
  }
  while (!threads_.empty()) {
    Thread* thread = threads_.back();
    if (!thread->exiting_) {
      PX_LOG(kInfo, "reactor", "reactor %u: thread \"%s\" still running at shutdown", index_,
             thread->name());
    }
    thread->DestroyRemainingState();
    ThreadRegistry::Get().RemoveIf(thread, thread->id(), [] { return true; });
    Detach(thread);
    delete thread;
  }
}

ReactorInfo Reactor::Info() {
  ReactorInfo info;
  info.index = index_;
  info.lcore = lcore_;
  info.cpu = cpu_;
  info.mode = mode();
  info.sleeping = sleeping();
  info.busy_tsc = busy_tsc_.load(std::memory_order_relaxed);
  info.idle_tsc = idle_tsc_.load(std::memory_order_relaxed);
  info.sleep_tsc = sleep_tsc_.load(std::memory_order_relaxed);
  info.sleeps = sleeps_.load(std::memory_order_relaxed);
  info.wakeups = wakeups_.load(std::memory_order_relaxed);
  info.poller_parks = poller_parks_.load(std::memory_order_relaxed);
  info.poller_unparks = poller_unparks_.load(std::memory_order_relaxed);
  const double ticks_per_us = static_cast<double>(ReactorRuntime::Get()->tsc_hz()) / 1e6;
  info.device_wait_episodes = device_wait_episodes_.load(std::memory_order_relaxed);
  info.device_wait_spin_us =
      static_cast<double>(device_wait_spin_tsc_.load(std::memory_order_relaxed)) / ticks_per_us;
  info.device_wait_sleep_us =
      static_cast<double>(device_wait_sleep_tsc_.load(std::memory_order_relaxed)) / ticks_per_us;
  info.device_wait_sleeps = device_wait_sleeps_.load(std::memory_order_relaxed);
  std::lock_guard lock(info_mutex_);
  for (Thread* thread : threads_) {
    ThreadStats stats = thread->Stats();
    info.threads.push_back({thread->id(), thread->name(), stats.busy_tsc, stats.idle_tsc});
  }
  info.awake_reasons = awake_reasons_;
  return info;
}

}  // namespace pollux
