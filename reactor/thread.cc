#include "pollux/reactor/thread.h"

#include <rte_cycles.h>
#include <sys/epoll.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "mailbox.h"
#include "pollux/env/log.h"
#include "pollux/reactor/io_channel.h"
#include "pollux/reactor/reactor.h"
#include "thread_registry.h"

namespace pollux {

constinit thread_local Thread* Thread::current_ = nullptr;

namespace {
// Messages run per thread per iteration: enough to amortise the ring operation, few enough
// that a flood of messages does not starve the thread's pollers.
constexpr unsigned kMessageBurst = 32;
}  // namespace

Thread::Thread(uint64_t id, std::string name, uint32_t ring_size, std::vector<int> cpumask,
               int home_cpu)
    : id_(id),
      name_(std::move(name)),
      mailbox_(std::make_unique<Mailbox>(ring_size)),
      cpumask_(std::move(cpumask)),
      home_cpu_(home_cpu) {}

Thread::~Thread() = default;

absl::StatusOr<Thread*> Thread::Create(std::string name, ThreadOptions options) {
  ReactorRuntime* runtime = ReactorRuntime::Get();
  if (runtime == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create thread \"", name, "\": no reactor is running"));
  }
  std::vector<int> cpumask = std::move(options.cpumask);
  if (cpumask.empty()) {
    if (options.cpu >= 0) {
      cpumask.push_back(options.cpu);
    } else {
      for (auto& reactor : runtime->reactors()) cpumask.push_back(reactor->cpu());
    }
  }
  std::sort(cpumask.begin(), cpumask.end());
  cpumask.erase(std::unique(cpumask.begin(), cpumask.end()), cpumask.end());
  for (int cpu : cpumask) {
    if (runtime->ReactorOnCpu(cpu) == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot create thread \"", name, "\": no reactor on core ", cpu));
    }
  }
  Reactor* target = nullptr;
  if (options.cpu >= 0) {
    target = runtime->ReactorOnCpu(options.cpu);
    if (target == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot create thread \"", name, "\": no reactor on core ", options.cpu));
    }
    if (!std::binary_search(cpumask.begin(), cpumask.end(), options.cpu)) {
      return absl::InvalidArgumentError(absl::StrCat("cannot create thread \"", name, "\": core ",
                                                     options.cpu, " is outside its cpumask"));
    }
  } else {
    for (int cpu : cpumask) {
      Reactor* reactor = runtime->ReactorOnCpu(cpu);
      if (target == nullptr || reactor->thread_count() < target->thread_count()) target = reactor;
    }
  }
  auto* thread = new Thread(ThreadRegistry::Get().NextId(), std::move(name), options.ring_size,
                            std::move(cpumask), target->cpu());
  ThreadRegistry::Get().Add(thread);
  // Count it now so that threads created in a burst spread over the reactors.
  target->thread_count_.fetch_add(1, std::memory_order_relaxed);
  thread->reactor_.store(target, std::memory_order_release);
  auto adopt = [](void* arg) {
    auto* t = static_cast<Thread*>(arg);
    Reactor::Current()->Adopt(t);
  };
  while (!target->SendReactorMessage(adopt, thread)) {
    // The reactor ring is sized far above any burst of creations; spinning here is a
    // control-path back-off, never a data-path one.
    rte_pause();
  }
  return thread;
}

Thread* Thread::Find(uint64_t id) {
  return ThreadRegistry::Get().WithThread(id, [](Thread* t) { return t; });
}

bool Thread::SendMessage(MessageFn fn, void* arg) noexcept {
  return mailbox_->Send(Message{fn, arg});
}

unsigned Thread::SendMessages(const Message* messages, unsigned count) noexcept {
  return mailbox_->SendBurst(messages, count);
}

Poller* Thread::RegisterPoller(std::string name, absl::AnyInvocable<PollResult()> fn,
                               PollerOptions options) {
  uint64_t period_tsc = 0;
  if (options.period.count() > 0) {
    period_tsc = std::max<uint64_t>(1, rte_get_tsc_hz() * options.period.count() / 1000000);
  }
  auto* poller = new Poller(this, next_poller_id_++, std::move(name), std::move(fn),
                            std::move(options), period_tsc);
  poller->last_busy_tsc_ = rte_rdtsc();  // a full park time before it may park
  if (poller->is_timed()) {
    ScheduleTimed(poller, rte_rdtsc());
  } else {
    active_pollers_.push_back(poller);
    polled_changed_ = true;
    Reactor* reactor = this->reactor();
    if (poller->options_.wake_fd >= 0 && reactor != nullptr && Reactor::Current() == reactor) {
      reactor->WatchWakeFd(poller->options_.wake_fd, poller);
    }
  }
  return poller;
}

void Thread::ScheduleTimed(Poller* poller, uint64_t now_tsc) {
  poller->next_run_tsc_ = now_tsc + poller->period_tsc_;
  timed_pollers_.emplace(poller->next_run_tsc_, poller);
}

absl::Status Thread::AddFdHandler(int fd, absl::AnyInvocable<void()> handler) {
  for (auto& h : fd_handlers_) {
    if (h->fd == fd) {
      return absl::AlreadyExistsError(
          absl::StrCat("fd ", fd, " already has a handler on thread \"", name_, "\""));
    }
  }
  auto entry = std::make_unique<FdHandler>(FdHandler{fd, std::move(handler), this});
  Reactor* reactor = this->reactor();
  if (reactor != nullptr && Reactor::Current() == reactor) {
    if (absl::Status s = reactor->WatchFdHandler(entry.get()); !s.ok()) return s;
  }
  fd_handlers_.push_back(std::move(entry));
  return absl::OkStatus();
}

void Thread::RemoveFdHandler(int fd) {
  auto it =
      std::find_if(fd_handlers_.begin(), fd_handlers_.end(), [fd](auto& h) { return h->fd == fd; });
  if (it == fd_handlers_.end()) return;
  Reactor* reactor = this->reactor();
  if (reactor != nullptr) reactor->UnwatchFd(fd);
  // The reactor may be dispatching a batch of events that still points at this handler: free
  // it after the batch (at the end of this thread's next poll).
  (*it)->removed = true;
  removed_fd_handlers_.push_back(std::move(*it));
  fd_handlers_.erase(it);
}

void Thread::Exit() { exiting_ = true; }

bool Thread::CanBeDestroyed() const {
  return active_pollers_.empty() && timed_pollers_.empty() && fd_handlers_.empty() &&
         channels_.empty() && mailbox_->Empty();
}

PollResult Thread::Poll(uint64_t now_tsc) noexcept {
  Thread* previous = current_;
  current_ = this;
  int busy = 0;

  Message messages[kMessageBurst];
  unsigned count = mailbox_->Drain(messages, kMessageBurst);
  for (unsigned i = 0; i < count; ++i) messages[i].fn(messages[i].arg);
  busy |= count != 0;
  stats_.messages.Add(count);

  // Parked pollers are not even looked at: 99 parked sources beside a busy one cost it 10 %
  // of its IOPS when each pass still read their state.
  if (polled_changed_) ListPolledPollers();
  // By index: a poller may register another, which appends.
  const size_t active = active_pollers_.size();
  const size_t polled = polled_pollers_.size();
  uint64_t runs = 0;
  for (size_t i = 0; i < polled; ++i) {
    Poller* poller = polled_pollers_[i];
    if (poller->state_ == Poller::State::kRunning) {
      PollResult result = poller->Run();
      if (result == PollResult::kBusy) poller->last_busy_tsc_ = now_tsc;
      busy |= static_cast<int>(result);
      ++runs;
    }
  }
  stats_.poller_runs.Add(runs);
  // A poller registered by a poller has not run yet: report work so that the reactor polls
  // again before it considers sleeping. Otherwise an idle parent polled during the reactor's
  // last look before sleeping would put it to sleep without ever checking the new poller
  // (which may be one that cannot sleep).
  if (active_pollers_.size() != active) busy = 1;

  while (!timed_pollers_.empty() && timed_pollers_.begin()->first <= now_tsc) {
    auto node = timed_pollers_.extract(timed_pollers_.begin());
    Poller* poller = node.mapped();
    if (poller->state_ == Poller::State::kUnregistered) continue;  // freed by the reap below
    if (poller->state_ == Poller::State::kRunning) {
      busy |= static_cast<int>(poller->Run());
      stats_.timed_poller_runs.Add(1);
      stats_.poller_runs.Add(1);
      if (poller->state_ == Poller::State::kUnregistered) continue;
    }
    // Reuse the node: rescheduling a timed poller allocates nothing. A paused one keeps its
    // place in the heap one period at a time, so the thread never loses track of it.
    poller->next_run_tsc_ = now_tsc + poller->period_tsc_;
    node.key() = poller->next_run_tsc_;
    timed_pollers_.insert(std::move(node));
  }

  if (pollers_changed_) ReapUnregisteredPollers();
  if (!removed_fd_handlers_.empty()) removed_fd_handlers_.clear();
  if (!channels_to_reap_.empty()) {
    ReapChannels();
    // Destroying a channel can release another one (a context holding a channel) or
    // unregister pollers: work for the next iteration, which must come before any sleep, or
    // the thread would keep them (and an exiting thread would never go) until a wake-up.
    if (!channels_to_reap_.empty() || pollers_changed_) busy = 1;
  }
  current_ = previous;
  return busy ? PollResult::kBusy : PollResult::kIdle;
}

void Thread::ListPolledPollers() {
  polled_changed_ = false;
  polled_pollers_.clear();
  for (Poller* poller : active_pollers_) {
    if (poller->state_ != Poller::State::kParked) polled_pollers_.push_back(poller);
  }
}

void Thread::ReapUnregisteredPollers() {
  pollers_changed_ = false;
  polled_changed_ = true;
  auto gone = [](Poller* p) { return p->state_ == Poller::State::kUnregistered; };
  active_pollers_.erase(std::remove_if(active_pollers_.begin(), active_pollers_.end(), gone),
                        active_pollers_.end());
  for (auto it = timed_pollers_.begin(); it != timed_pollers_.end();) {
    it = gone(it->second) ? timed_pollers_.erase(it) : std::next(it);
  }
  Reactor* reactor = this->reactor();
  for (Poller* poller : unregistered_pollers_) {
    if (poller->options_.wake_fd >= 0 && reactor != nullptr) {
      reactor->UnwatchFd(poller->options_.wake_fd);
    }
    delete poller;
  }
  unregistered_pollers_.clear();
}

void Thread::ReapChannels() {
  // Swap first: destroying a channel may release another (a context holding a channel).
  std::vector<IoChannel*> channels;
  channels.swap(channels_to_reap_);
  for (IoChannel* channel : channels) channel->Reap();
}

uint64_t Thread::NextTimerTsc() const {
  for (auto& [tsc, poller] : timed_pollers_) {
    if (poller->state_ == Poller::State::kRunning) return tsc;
  }
  return UINT64_MAX;
}

void Thread::DestroyRemainingState() {
  Thread* previous = current_;
  current_ = this;
  for (Poller* p : active_pollers_) {
    if (p->state_ != Poller::State::kUnregistered) {
      PX_LOG(kWarning, "reactor", "thread \"%s\" destroyed with poller \"%s\" registered", name_,
             p->name());
      p->Unregister();
    }
  }
  for (auto& [tsc, p] : timed_pollers_) {
    if (p->state_ != Poller::State::kUnregistered) {
      PX_LOG(kWarning, "reactor", "thread \"%s\" destroyed with timed poller \"%s\" registered",
             name_, p->name());
      p->Unregister();
    }
  }
  ReapUnregisteredPollers();
  while (!fd_handlers_.empty()) RemoveFdHandler(fd_handlers_.back()->fd);
  removed_fd_handlers_.clear();
  channels_to_reap_.clear();
  while (!channels_.empty()) {
    IoChannel* channel = channels_.back();
    PX_LOG(kWarning, "reactor", "thread \"%s\" destroyed holding a channel of \"%s\"", name_,
           channel->device().io_device_name());
    channel->Destroy();
  }
  current_ = previous;
}

ThreadStats Thread::Stats() const {
  return ThreadStats{stats_.busy_tsc.Get(),          stats_.idle_tsc.Get(),
                     stats_.messages.Get(),          stats_.poller_runs.Get(),
                     stats_.timed_poller_runs.Get(), stats_.moves.Get()};
}

std::vector<std::string> Thread::PollersHoldingReactorAwake() const {
  std::vector<std::string> names;
  for (Poller* p : active_pollers_) {
    if (p->holds_reactor_awake()) names.push_back(p->name());
  }
  return names;
}

// ---- ForEachThread ----

namespace {

struct ThreadWalk {
  std::vector<uint64_t> ids;
  size_t next = 0;
  uint64_t origin_id;
  absl::AnyInvocable<void(Thread&)> fn;
  absl::AnyInvocable<void()> done;
};

void ThreadWalkStep(void* arg) {
  auto* walk = static_cast<ThreadWalk*>(arg);
  if (Thread* here = Thread::Current();
      here != nullptr && walk->next > 0 && walk->ids[walk->next - 1] == here->id()) {
    walk->fn(*here);
  }
  // Hop to the next live thread, or home.
  while (walk->next < walk->ids.size()) {
    if (ThreadRegistry::Get().SendToLiveThread(walk->ids[walk->next++], &ThreadWalkStep, walk)) {
      return;
    }
  }
  bool home = ThreadRegistry::Get().SendToLiveThread(
      walk->origin_id,
      [](void* a) {
        std::unique_ptr<ThreadWalk> w(static_cast<ThreadWalk*>(a));
        w->done();
      },
      walk);
  if (!home) delete walk;  // the caller exited meanwhile: nobody to tell
}

}  // namespace

void ForEachThread(absl::AnyInvocable<void(Thread&)> fn, absl::AnyInvocable<void()> done) {
  auto* walk = new ThreadWalk{ThreadRegistry::Get().Ids(), 0,
                              Thread::Current() != nullptr ? Thread::Current()->id() : 0,
                              std::move(fn), std::move(done)};
  ThreadWalkStep(walk);
}

}  // namespace pollux
