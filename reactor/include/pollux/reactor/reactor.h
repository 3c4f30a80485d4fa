// Reactors: one per selected core, each an EAL lcore pinned to its core, each running a poll
// loop over the Threads placed on it. Each reactor has its own mode: in interrupt mode (the
// default) a reactor whose threads have all been idle for the spin window sleeps in epoll until
// a message, an fd or a timer needs it, so a busy reactor polls and an idle one sleeps.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "pollux/env/eal.h"
#include "pollux/reactor/thread.h"

namespace pollux {

class IdleSpinPolicy;
class Mailbox;

enum class ReactorMode : uint8_t {
  kPoll,       // always spin
  kInterrupt,  // sleep in epoll when idle for the spin window
};

std::string_view ReactorModeName(ReactorMode mode);
absl::StatusOr<ReactorMode> ParseReactorMode(std::string_view name);

// A snapshot of one reactor for RPC and benchmarks.
struct ReactorInfo {
  unsigned index;
  unsigned lcore;
  int cpu;
  ReactorMode mode;  // this reactor's
  bool sleeping;
  uint64_t busy_tsc;
  uint64_t idle_tsc;
  uint64_t sleep_tsc;
  uint64_t sleeps;    // times it went to sleep
  uint64_t wakeups;   // times epoll returned
  // Idle with device I/O in flight (Poller::SetAwaitingDevice): episodes opened so far (an
  // episode is counted when it opens, so a waiter can see that one is under way), what the
  // reactor measured for spinning and for sleeping at once (average microseconds from the
  // end of work to the next), and which it takes.
  uint64_t poller_parks;    // pollers parked (Poller::Unpark) so far
  uint64_t poller_unparks;  // and polled again
  uint64_t device_wait_episodes;
  double device_wait_spin_us;
  double device_wait_sleep_us;
  bool device_wait_sleeps;
  struct ThreadInfo {
    uint64_t id;
    std::string name;
    uint64_t busy_tsc;
    uint64_t idle_tsc;
  };
  std::vector<ThreadInfo> threads;
  // Why the reactor stays awake in interrupt mode ("poller X on thread Y cannot sleep").
  std::vector<std::string> awake_reasons;
};

class Reactor {
 public:
  ~Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  unsigned index() const { return index_; }
  unsigned lcore() const { return lcore_; }
  int cpu() const { return cpu_; }
  size_t thread_count() const { return thread_count_.load(std::memory_order_relaxed); }
  bool sleeping() const { return sleeping_.load(std::memory_order_relaxed); }
  ReactorMode mode() const { return mode_.load(std::memory_order_relaxed); }

  // The reactor running on this OS thread, or nullptr.
  static Reactor* Current() { return current_; }

  // Whether nothing on this reactor but `thread` has work: every other thread found nothing in
  // its last poll, and no poller waits for a device or helper threads. For code about to
  // block the reactor (a synchronous depth-1 file request): on this reactor only.
  bool QuietBesides(const Thread& thread) const noexcept {
    return busy_threads_ == static_cast<uint32_t>(thread.last_poll_busy_) &&
           awaiting_pollers_ == 0;
  }

  // Runs fn(arg) on this reactor outside any Thread (placement, mode changes). Any thread.
  // Returns false when its ring is full.
  [[nodiscard]] bool SendReactorMessage(MessageFn fn, void* arg) noexcept;

 private:
  friend class ReactorRuntime;
  friend class Thread;
  friend class Poller;  // unwatches its wake fd at Unregister

  Reactor(unsigned index, unsigned lcore, int cpu);

  static int LaunchLoop(void* reactor);  // EAL lcore entry
  void Run();
  // One pass: reactor messages, then every thread. `now` is the TSC at the start of the pass
  // (the end of the previous one) and, on return, at its end. Returns whether it did work.
  bool PollOnce(uint64_t& now);
  // Waits for fd events (up to `timeout`, forever if null, when `block`; not at all if not)
  // and runs the fd handlers among them. Returns whether a handler ran.
  bool DispatchFdEvents(const struct timespec* timeout, bool block);
  bool TrySleep(uint64_t now);
  // The first idle pass after work: the IdleSpinPolicy decides, from what the pollers wait
  // for and the windows of the sources, how long the reactor polls before it sleeps
  // (interrupt mode). Poll mode: yield the core to helper threads, spin otherwise.
  void OpenIdleEpisode(bool interrupt_mode);
  // A busy pass that started at `pass_start` ends the idle episode, if one was open.
  void EndIdleEpisode(uint64_t pass_start);
  // The strongest claim of the running pollers (kHelperThreads over kDevice over kNothing);
  // raises `longest_window` to the longest polling window of the sources.
  AwaitedWork AwaitedByPollers(uint64_t& longest_window) const;
  // A source's window after its event ended a sleep of `block` ticks (IdleSpinPolicy).
  void AdjustWindow(uint64_t& window, uint64_t block);
  // After arming every mailbox and the fence: whether a mailbox has a message queued or a
  // sender in flight (Mailbox::MustStayAwakeAfterArming).
  bool MessagesPendingAfterArming() const;
  bool ArmPollers();
  void DisarmPollers();
  // Epoll registrations. Message and poller wake fds are edge-triggered and only wake the
  // reactor (a poller's also unparks it: `poller`); fd handlers are level-triggered and
  // dispatched on their thread.
  void WatchWakeFd(int fd, Poller* poller);
  // `data`: what the fd wakes, tagged (reactor.cc: kPollerTag, kMailboxTag; 0 for none).
  void WatchWakeFd(int fd, uintptr_t data);
  // Parks the pollers idle for the park time (Poller::Unpark), at most once per millisecond.
  void MaybeParkIdlePollers(uint64_t now);
  // Returns how many it parked.
  int ParkIdlePollers(uint64_t now);
  bool TryPark(Thread& thread, Poller& poller, uint64_t now);
  // Runs a parked poller that has no wake fd once; back to the polled set if it found work.
  void SlowPoll(Thread& thread, Poller& poller);
  void CountUnpark() { AddTo(poller_unparks_, 1); }
  absl::Status WatchFdHandler(Thread::FdHandler* handler);
  void UnwatchFd(int fd);
  void Adopt(Thread* thread);
  void Detach(Thread* thread);
  // Adds (sign +1) or removes (-1) what `thread` brings to busy_threads_ and awaiting_pollers_.
  void CountThreadState(const Thread& thread, int sign);
  void DestroyThread(Thread* thread);
  void ReapExitedThreads();
  // Frees the retired mailboxes no sender can be inside any more (RetiredMailbox).
  void FreeRetiredMailboxes();
  void DestroyAllThreads();
  ReactorInfo Info();

  // constinit: no dynamic initialisation, so no TLS init-wrapper call on every access from
  // other translation units (GCC's UBSan also mis-checks such accesses as null loads).
  static constinit thread_local Reactor* current_;

  const unsigned index_;
  const unsigned lcore_;
  const int cpu_;
  int epoll_fd_ = -1;
  bool use_epoll_pwait2_ = true;  // false where the kernel (or valgrind) lacks it
  std::unique_ptr<Mailbox> mailbox_;  // reactor-level messages (adopt, mode)
  std::vector<Thread*> threads_;
  std::atomic<size_t> thread_count_{0};
  // Threads whose last poll was busy, and pollers that wait for something (QuietBesides):
  // kept by the loop, by Poller::SetAwaiting and by Adopt / Detach, all on this reactor.
  uint32_t busy_threads_ = 0;
  int32_t awaiting_pollers_ = 0;
  bool threads_exiting_ = false;

  std::atomic<bool> stop_{false};
  std::atomic<ReactorMode> mode_{ReactorMode::kInterrupt};
  bool launched_ = false;  // control thread only
  std::atomic<bool> sleeping_{false};
  // A sender may still be inside Mailbox::Send of a thread this reactor reaps (the message that
  // ended the thread is in, the wake-up check after it is not): the mailbox of a reaped thread
  // is retired, and freed once every reactor has been seen outside any send it might have been
  // in then: it started a new pass (`passes_`, one store per pass) or it is blocked in epoll
  // (`blocked_`). Senders that are not reactors are counted by the mailbox itself.
  std::atomic<uint64_t> passes_{0};
  std::atomic<bool> blocked_{false};
  struct RetiredMailbox {
    std::unique_ptr<Mailbox> mailbox;
    std::vector<uint64_t> passes;  // every reactor's passes_ when it was retired
  };
  std::vector<RetiredMailbox> retired_mailboxes_;
  uint64_t last_busy_tsc_ = 0;
  // The idle episode (see IdleSpinPolicy): open from the first idle pass after work to the
  // next busy pass; `episode_spin_tsc_`: how long it polls before sleeping (interrupt mode).
  bool idle_episode_ = false;
  bool episode_awaits_helpers_ = false;
  uint64_t episode_spin_tsc_ = 0;
  std::unique_ptr<IdleSpinPolicy> idle_spin_policy_;
  uint64_t next_fd_check_tsc_ = 0;
  uint64_t next_park_check_tsc_ = 0;
  uint64_t next_reason_refresh_tsc_ = 0;

  // Statistics, written by the loop only, read relaxed by anyone. Updated with a relaxed load
  // and store (plain moves on x86), not fetch_add: that is a locked instruction, a full
  // barrier on every iteration, for counters that have a single writer.
  static void AddTo(std::atomic<uint64_t>& counter, uint64_t n) {
    counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::atomic<uint64_t> busy_tsc_{0};
  std::atomic<uint64_t> idle_tsc_{0};
  std::atomic<uint64_t> sleep_tsc_{0};
  std::atomic<uint64_t> sleeps_{0};
  std::atomic<uint64_t> wakeups_{0};
  std::atomic<uint64_t> poller_parks_{0};
  std::atomic<uint64_t> poller_unparks_{0};
  // The policy's figures for Info: the episode count when an episode opens, the averages when
  // it ends.
  std::atomic<uint64_t> device_wait_episodes_{0};
  std::atomic<uint64_t> device_wait_spin_tsc_{0};
  std::atomic<uint64_t> device_wait_sleep_tsc_{0};
  std::atomic<bool> device_wait_sleeps_{false};

  std::mutex info_mutex_;  // guards awake_reasons_ (read by RPC)
  std::vector<std::string> awake_reasons_;
};

struct ReactorRuntimeOptions {
  ReactorMode mode = ReactorMode::kInterrupt;
  // The longest a reactor keeps polling after its last useful work before it sleeps
  // (interrupt mode; QEMU's poll-max-ns). Each source's own window grows up to it while its
  // events come sooner (IdleSpinPolicy, reactor/idle_spin_policy.h). Waking a sleeping core
  // costs tens of microseconds on virtual machines, so it is longer than QEMU's 32 us.
  std::chrono::microseconds spin_window{100};
  // How long an active poller with a wake fd and an arm hook may find nothing before it
  // leaves the polled set (Poller::Unpark); 0: never. QEMU's aio-posix waits 7 s.
  std::chrono::milliseconds park_after{7000};
};

// The set of running reactors. One per process; created by the app (or a test) on the
// control thread after InitEal, destroyed there.
class ReactorRuntime {
 public:
  // Launches one reactor on each reactor lcore of `eal`.
  static absl::StatusOr<std::unique_ptr<ReactorRuntime>> Start(const EalSession& eal,
                                                               ReactorRuntimeOptions options);
  // The running runtime, or nullptr.
  static ReactorRuntime* Get() { return instance_.load(std::memory_order_acquire); }

  // Stops every reactor and waits for them. Threads still alive are destroyed (with a warning):
  // components should have exited theirs. Call from the control thread.
  ~ReactorRuntime();
  ReactorRuntime(const ReactorRuntime&) = delete;
  ReactorRuntime& operator=(const ReactorRuntime&) = delete;

  const std::vector<std::unique_ptr<Reactor>>& reactors() const { return reactors_; }
  Reactor* ReactorOnCpu(int cpu) const;
  // The reactors' cores, in reactor order.
  std::vector<int> cpus() const;

  // The mode of every reactor, as last set for all (a reactor may differ: SetReactorMode).
  ReactorMode mode() const { return mode_.load(std::memory_order_relaxed); }
  std::chrono::microseconds spin_window() const;
  // Switches every reactor's mode; sleeping reactors are woken to notice. Any thread.
  void SetMode(ReactorMode mode);
  // Switches the mode of the reactor on `cpu` only. Any thread.
  absl::Status SetReactorMode(int cpu, ReactorMode mode);
  void SetSpinWindow(std::chrono::microseconds window);
  std::chrono::milliseconds park_after() const;
  void SetParkAfter(std::chrono::milliseconds park_after);

  // Snapshots of every reactor.
  std::vector<ReactorInfo> Info();

  // Every thread placed on a reactor now (a thread between two reactors is missed), with what
  // a scheduler decides by. Any thread; the counters are approximate.
  struct ThreadSnapshot {
    uint64_t id;
    std::string name;
    int cpu;
    int home_cpu;
    std::vector<int> cpumask;
    ThreadStats stats;
  };
  std::vector<ThreadSnapshot> SnapshotThreads();

  // The TSC frequency (ticks per second).
  uint64_t tsc_hz() const { return tsc_hz_; }

 private:
  friend class Reactor;
  friend class Thread;
  ReactorRuntime() = default;
  void WakeAll();

  static std::atomic<ReactorRuntime*> instance_;

  std::vector<std::unique_ptr<Reactor>> reactors_;
  std::atomic<ReactorMode> mode_{ReactorMode::kInterrupt};
  std::atomic<uint64_t> spin_window_tsc_{0};
  std::atomic<uint64_t> park_after_tsc_{0};
  uint64_t first_window_tsc_ = 0;  // IdleSpinPolicy::kFirstWindowNs in ticks
  uint64_t tsc_hz_ = 0;
};

}  // namespace pollux
