// Lightweight threads (SPDK's spdk_thread): the unit of placement. A Thread owns a lockless
// message ring, its pollers, its fd handlers and its I/O channels, and runs on one reactor at a
// time; the scheduler may move it to another reactor between two poll iterations, so nothing
// may assume a Thread stays on one core.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pollux/reactor/poller.h"

namespace pollux {

class IoChannel;
class IoDevice;
class Mailbox;
class Reactor;

using MessageFn = void (*)(void* arg);

// One message: a function and its argument, stored inline in the ring (16 bytes), so that
// sending allocates nothing.
struct Message {
  MessageFn fn;
  void* arg;
};

// Per-thread counters, written only by the thread's reactor; read with Thread::Stats().
struct ThreadStats {
  uint64_t busy_tsc = 0;           // time in iterations that did work
  uint64_t idle_tsc = 0;           // time in iterations that found nothing
  uint64_t messages = 0;           // messages run
  uint64_t poller_runs = 0;        // poller calls, active and timed
  uint64_t timed_poller_runs = 0;  // of which timed
  uint64_t moves = 0;              // times it moved to another reactor
};

struct ThreadOptions {
  // Core to place the thread on; -1: the reactor with the fewest threads (within `cpumask`).
  int cpu = -1;
  // Cores the thread may run on: a scheduler moves it only within them. Empty: just `cpu`
  // when it is given (the thread stays where it was put), any reactor's core otherwise.
  std::vector<int> cpumask = {};
  // Message ring capacity (a power of two). The thread has two rings of this size, one for
  // senders on reactors and one for other threads (reactor/mailbox.h).
  uint32_t ring_size = 65536;
};

class Thread {
 public:
  Thread(const Thread&) = delete;
  Thread& operator=(const Thread&) = delete;

  // The Thread whose code is running on this OS thread, or nullptr outside any.
  static Thread* Current() noexcept { return current_; }

  // Creates a thread and hands it to a reactor, which starts polling it. Callable from any
  // thread once the reactors run. Fails when no reactor runs or `cpu` has none.
  static absl::StatusOr<Thread*> Create(std::string name, ThreadOptions options = {});

  // Looks a thread up by id (for RPC and for messages that must survive the thread's exit).
  // The pointer is valid only while the thread lives; prefer ForEachThread.
  static Thread* Find(uint64_t id);

  uint64_t id() const { return id_; }
  const std::string& name() const { return name_; }
  // The reactor polling this thread now (changes when the thread moves).
  Reactor* reactor() const { return reactor_.load(std::memory_order_acquire); }

  // ---- Placement: any thread (thread_placement.cc) ----

  // The cores this thread may run on, ascending.
  std::vector<int> cpumask() const;
  // Where the user put it: its creation core, or its core when its cpumask was last set (the
  // mask's first core if it was outside). The static scheduler puts threads back there.
  int home_cpu() const;
  bool AllowedOn(int cpu) const;

  // Moves thread `id` to the reactor on `cpu`, between two of its polls: its messages (queued
  // or sent meanwhile), pollers, fd handlers and I/O channels go with it, nothing is lost or
  // reordered. Returns once the move is under way. Fails when the thread is unknown, `cpu`
  // runs no reactor or is outside its cpumask, or a move of it is already under way.
  // `started`, when given, says whether a move began (false: it was on `cpu` already).
  static absl::Status Move(uint64_t id, int cpu, bool* started = nullptr);
  // Sets the cores thread `id` may run on (thread_set_cpumask); moves it home if its core is
  // not among them.
  static absl::Status SetCpumask(uint64_t id, std::vector<int> cpus);

  // A resource of this thread that works only from the OS thread of its current reactor (an
  // io_uring set up for a single issuer, a ring fd registered in that OS thread's table): while
  // the thread holds any, it stays where it is (Move fails saying why; schedulers see a
  // cpumask of its current core). On this thread.
  void AddReactorBoundResource() noexcept {
    reactor_bound_.fetch_add(1, std::memory_order_relaxed);
  }
  void RemoveReactorBoundResource() noexcept {
    reactor_bound_.fetch_sub(1, std::memory_order_relaxed);
  }
  bool reactor_bound() const { return reactor_bound_.load(std::memory_order_relaxed) != 0; }

  // ---- Messages: callable from any thread, reactor or plain OS thread ----

  // Queues fn(arg) to run on this thread. Lock-free, allocation-free. Messages from one sender
  // run in the order sent; messages from different senders are not ordered (a sender on a
  // reactor and a plain OS thread use different rings). Returns false when the ring is full:
  // retry later, nothing is queued.
  [[nodiscard]] bool SendMessage(MessageFn fn, void* arg) noexcept;

  // Queues up to `count` messages in one ring operation (one wake-up check); returns how many.
  [[nodiscard]] unsigned SendMessages(const Message* messages, unsigned count) noexcept;

  // Queues a callable. A trivially copyable callable of pointer size (a lambda capturing one
  // pointer) travels inline; anything larger is boxed on the heap, which is fine for control
  // paths but not for a per-I/O path. Returns false when the ring is full.
  template <typename F>
  [[nodiscard]] bool SendMessage(F&& fn);

  // ---- Pollers: on this thread only ----

  // Registers a poller on this thread. Call on this thread (or before it starts running).
  Poller* RegisterPoller(std::string name, absl::AnyInvocable<PollResult()> fn,
                         PollerOptions options = {});

  // ---- Fd handlers: on this thread only ----

  // Calls `handler` on this thread when `fd` is readable (level-triggered). In interrupt mode
  // a sleeping reactor wakes for it; in poll mode the reactor checks fds once per millisecond,
  // so fd handlers suit control traffic (RPC), not data paths (use a poller there).
  absl::Status AddFdHandler(int fd, absl::AnyInvocable<void()> handler);
  void RemoveFdHandler(int fd);

  // ---- Life cycle ----

  // Asks this thread to end. It is destroyed once it has no poller, fd handler or I/O channel
  // left and its ring is empty. Call on this thread.
  void Exit();
  bool exiting() const { return exiting_; }

  // A snapshot of the counters (exact on this thread, approximate elsewhere).
  ThreadStats Stats() const;
  // Names of this thread's pollers that keep its reactor from sleeping.
  std::vector<std::string> PollersHoldingReactorAwake() const;
  size_t poller_count() const { return active_pollers_.size() + timed_pollers_.size(); }
  size_t io_channel_count() const { return channels_.size(); }
  // Calls fn(const Poller&) for each registered poller. On this thread only.
  template <typename Fn>
  void ForEachPoller(Fn&& fn) const {
    for (const Poller* p : active_pollers_) {
      if (p->state_ != Poller::State::kUnregistered) fn(*p);
    }
    for (const auto& [tsc, p] : timed_pollers_) {
      if (p->state_ != Poller::State::kUnregistered) fn(*p);
    }
  }
  // This thread's channels. On this thread only.
  const std::vector<IoChannel*>& io_channels() const { return channels_; }

 private:
  friend class Reactor;
  friend class ReactorRuntime;
  friend class IoChannel;
  friend class Poller;
  friend IoChannel* GetIoChannelOnThread(Thread& thread, IoDevice& device);

  struct FdHandler {
    int fd;
    absl::AnyInvocable<void()> handler;
    Thread* thread;
    bool removed = false;
  };

  // A counter written by one thread and read by others: relaxed atomics compile to plain
  // loads and stores on x86 but keep cross-thread reads well defined.
  struct Counter {
    std::atomic<uint64_t> value{0};
    void Add(uint64_t n) {
      value.store(value.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    uint64_t Get() const { return value.load(std::memory_order_relaxed); }
  };
  struct Counters {
    Counter busy_tsc, idle_tsc, messages, poller_runs, timed_poller_runs, moves;
  };

  Thread(uint64_t id, std::string name, uint32_t ring_size, std::vector<int> cpumask,
         int home_cpu);
  ~Thread();

  template <typename F>
  static void RunInline(void* arg);
  template <typename F>
  static void RunBoxed(void* arg);

  // A move's two halves, reactor messages: out of the thread's reactor, into the target.
  static void MoveOut(void* request);
  static void MoveIn(void* thread);

  // Called by the reactor.
  PollResult Poll(uint64_t now_tsc) noexcept;
  uint64_t NextTimerTsc() const;
  bool CanBeDestroyed() const;
  void ScheduleTimed(Poller* poller, uint64_t now_tsc);
  void ListPolledPollers();
  void ReapUnregisteredPollers();
  void ReapChannels();
  void DestroyRemainingState();

  // constinit: no dynamic initialisation, so no TLS init-wrapper call on every access from
  // other translation units (GCC's UBSan also mis-checks such accesses as null loads).
  static constinit thread_local Thread* current_;

  const uint64_t id_;
  const std::string name_;
  std::unique_ptr<Mailbox> mailbox_;
  std::atomic<Reactor*> reactor_{nullptr};

  std::vector<Poller*> active_pollers_;
  // The active pollers that are not parked, in order: what Poll runs. Listed again from
  // active_pollers_ when `polled_changed_` (a registration, a park or unpark, a reap).
  std::vector<Poller*> polled_pollers_;
  bool polled_changed_ = false;
  std::multimap<uint64_t, Poller*> timed_pollers_;  // by next run (TSC)
  std::vector<Poller*> unregistered_pollers_;       // freed after the current iteration
  bool pollers_changed_ = false;
  uint64_t next_poller_id_ = 1;  // the next poller's id (Poller::id)

  std::vector<std::unique_ptr<FdHandler>> fd_handlers_;
  std::vector<std::unique_ptr<FdHandler>> removed_fd_handlers_;  // freed after dispatch
  std::vector<IoChannel*> channels_;
  std::vector<IoChannel*> channels_to_reap_;  // last reference gone; destroyed after the poll

  bool exiting_ = false;
  bool last_poll_busy_ = false;  // its reactor's, for Reactor::QuietBesides
  uint64_t mailbox_window_tsc_ = 0;  // its mailbox's polling window (IdleSpinPolicy)
  Counters stats_;

  mutable std::mutex placement_mutex_;  // guards cpumask_ and home_cpu_
  std::vector<int> cpumask_;
  int home_cpu_;
  // A move is under way (Move sets it, the destination reactor clears it): one at a time.
  std::atomic<bool> moving_{false};
  std::atomic<uint32_t> reactor_bound_{0};
  // On a reactor's list (Adopt) and not taken off it (Detach): a move that reaches a new
  // thread's reactor before its adoption waits for it.
  std::atomic<bool> placed_{false};
};

// Runs fn(thread) on every thread, one after the other, then done() on the calling thread.
// Call from a Thread.
void ForEachThread(absl::AnyInvocable<void(Thread&)> fn, absl::AnyInvocable<void()> done);

// Runs fn on thread `thread_id` if that thread is alive; returns false (and destroys fn
// unrun) when it is gone. Any thread; the closure is boxed, so control paths only.
bool RunOnThread(uint64_t thread_id, absl::AnyInvocable<void()> fn);

// ---- template implementation ----

template <typename F>
void Thread::RunInline(void* arg) {
  // The callable was copied byte for byte into the argument slot (it is trivially copyable).
  alignas(F) unsigned char storage[sizeof(F)];
  std::memcpy(storage, &arg, sizeof(F));
  (*std::launder(reinterpret_cast<F*>(storage)))();
}

template <typename F>
void Thread::RunBoxed(void* arg) {
  std::unique_ptr<F> fn(static_cast<F*>(arg));
  (*fn)();
}

template <typename F>
bool Thread::SendMessage(F&& fn) {
  using Fn = std::decay_t<F>;
  if constexpr (sizeof(Fn) <= sizeof(void*) && std::is_trivially_copyable_v<Fn> &&
                std::is_trivially_destructible_v<Fn>) {
    void* arg = nullptr;
    std::memcpy(&arg, &fn, sizeof(Fn));
    return SendMessage(&RunInline<Fn>, arg);
  } else {
    auto boxed = std::make_unique<Fn>(std::forward<F>(fn));
    if (!SendMessage(&RunBoxed<Fn>, boxed.get())) return false;
    boxed.release();
    return true;
  }
}

}  // namespace pollux
