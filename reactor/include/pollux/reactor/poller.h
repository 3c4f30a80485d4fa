// Pollers: functions a Thread calls in its poll loop, every iteration (active) or every
// `period` (timed). A poller reports honestly whether it found work: idle detection, interrupt
// mode and the statistics all believe it.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "absl/functional/any_invocable.h"

namespace pollux {

class Thread;

enum class PollResult : uint8_t {
  kIdle = 0,  // found nothing to do
  kBusy = 1,  // did work
};

// What the work an idle poller waits for is done by, which decides how its idle reactor waits
// (Poller::SetAwaiting).
enum class AwaitedWork : uint8_t {
  kNothing = 0,
  // A device that signals the wake fd (a kernel I/O completion). The reactor measures whether
  // spinning or sleeping at once gets it the completion sooner, and takes the faster (on
  // virtual machines a spinning vCPU can get a device's interrupt tens of microseconds late;
  // on bare metal a sleeping core pays its wake-up).
  kDevice = 1,
  // Helper threads that run on the reactors' own cores (the file engines' worker pool, which
  // inherits the cores the process was given). A spinning reactor would only keep them off
  // the core it waits for them on: the reactor sleeps at once in interrupt mode, and yields
  // its core on every idle pass in poll mode.
  kHelperThreads = 2,
};

// How an active poller lets its reactor sleep in interrupt mode. Timed pollers need nothing:
// their next deadline becomes the sleep's timeout.
struct PollerOptions {
  // 0: active (every iteration). Otherwise the poller runs once per period.
  std::chrono::microseconds period{0};

  // An fd that the poller's work source signals (an eventfd, a completion fd). While asleep the
  // reactor watches it (edge-triggered: the poller need not read it) and wakes to poll.
  int wake_fd = -1;

  // Called before the reactor sleeps: enable notifications (virtqueue kicks, completion
  // interrupts). Return false if work is already pending: the reactor then stays awake. After
  // arming, the reactor polls once more, so an event that raced the arming is not lost.
  absl::AnyInvocable<bool()> arm;
  // Called after the reactor wakes (or gave up sleeping): notifications off again.
  absl::AnyInvocable<void()> disarm;

  // The poller's work arrives only through messages or timers on its own thread, so it never
  // needs its own wake-up.
  bool woken_by_messages = false;
};

// A registered poller. Owned by its Thread; use it only on that thread. Obtained from
// Thread::RegisterPoller, released by Unregister() (also from inside its own function).
class Poller {
 public:
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;

  const std::string& name() const { return name_; }
  // Unique among its thread's pollers, in registration order (SPDK's poller id): with the
  // thread's id it tells pollers of the same name apart (thread_get_pollers, pollux-top).
  uint64_t id() const { return id_; }
  Thread* thread() const { return thread_; }
  bool is_timed() const { return period_tsc_ != 0; }
  bool paused() const { return state_ == State::kPaused; }
  // Out of the polled set after a long idle time, watched by its wake fd only (see Park).
  bool parked() const { return state_ == State::kParked; }
  // Parked with no wake fd: polled by its reactor once per millisecond (see Unpark).
  bool slow_polled() const { return state_ == State::kParked && options_.wake_fd < 0; }
  // How long its reactor polls for it when idle, in TSC ticks (IdleSpinPolicy).
  uint64_t poll_window_tsc() const { return poll_window_tsc_; }

  // True when nothing lets the reactor sleep while this poller is registered (an active poller
  // with no wake fd, no arm hook and not woken by messages).
  bool holds_reactor_awake() const;

  // Pause/Resume/Unregister: on the owning thread, from anywhere including its own function.
  void Pause();
  void Resume();

  // Parking (QEMU's aio-posix "idle handlers leave the polled set"): an active poller with a
  // wake fd and an arm hook that has found nothing for the runtime's park time (7 s by
  // default), and waits for nothing (SetAwaiting), is parked by its reactor: armed (its
  // source's notifications on) and no longer polled. It is polled again once its wake fd
  // fires, SetAwaiting marks work it waits for, or Unpark is called: then disarmed, as after
  // a sleep. An owner that queues work its poller must hand on (a request to submit) calls
  // SetAwaiting or Unpark for it. An active poller that nothing can wake the reactor for (no
  // wake fd, no arm hook, not woken by messages) would keep its reactor from ever sleeping:
  // idle for the park time, it is polled once per millisecond instead, until it finds work.
  // On the owning thread.
  void Unpark() noexcept;
  // Unregisters and frees the poller (lazily, once no poll loop is inside it).
  void Unregister();

  // Marks what the work this poller waits for now comes from (AwaitedWork), if not from other
  // cores: set it while such work is outstanding, kNothing when none is. An idle reactor then
  // waits as AwaitedWork says. Needs a wake fd, which that work signals.
  // On the owning thread; a plain store.
  void SetAwaiting(AwaitedWork work) noexcept {
    if (work != awaiting_) ChangeAwaiting(work);
  }
  void SetAwaitingDevice(bool awaiting) noexcept {
    SetAwaiting(awaiting ? AwaitedWork::kDevice : AwaitedWork::kNothing);
  }
  AwaitedWork awaiting() const { return awaiting_; }
  bool awaiting_device() const { return awaiting_ == AwaitedWork::kDevice; }

  uint64_t run_count() const { return run_count_; }
  uint64_t busy_count() const { return busy_count_; }
  std::chrono::microseconds period() const { return period_; }

 private:
  friend class Thread;
  friend class Reactor;

 public:
  enum class State : uint8_t { kRunning, kPaused, kParked, kUnregistered };

 private:
  Poller(Thread* thread, uint64_t id, std::string name, absl::AnyInvocable<PollResult()> fn,
         PollerOptions options, uint64_t period_tsc);

  // SetAwaiting's change of state: the reactor counts the pollers that wait for something.
  void ChangeAwaiting(AwaitedWork work) noexcept;

  PollResult Run() {
    ++run_count_;
    PollResult result = fn_();
    busy_count_ += static_cast<uint64_t>(result);
    return result;
  }

  Thread* thread_;
  uint64_t id_;
  std::string name_;
  absl::AnyInvocable<PollResult()> fn_;
  PollerOptions options_;
  std::chrono::microseconds period_;
  uint64_t period_tsc_;
  uint64_t next_run_tsc_ = 0;
  uint64_t last_busy_tsc_ = 0;  // the pass start of its last busy run (parking)
  uint64_t poll_window_tsc_ = 0;  // its polling window (IdleSpinPolicy)
  State state_ = State::kRunning;
  bool armed_ = false;
  AwaitedWork awaiting_ = AwaitedWork::kNothing;
  uint64_t run_count_ = 0;
  uint64_t busy_count_ = 0;
};

// Owns a registration: unregisters on destruction (on the owning thread).
class PollerHandle {
 public:
  PollerHandle() = default;
  explicit PollerHandle(Poller* poller) : poller_(poller) {}
  PollerHandle(PollerHandle&& other) noexcept : poller_(other.release()) {}
  PollerHandle& operator=(PollerHandle&& other) noexcept {
    if (this != &other) {
      reset();
      poller_ = other.release();
    }
    return *this;
  }
  ~PollerHandle() { reset(); }

  Poller* get() const { return poller_; }
  Poller* operator->() const { return poller_; }
  explicit operator bool() const { return poller_ != nullptr; }
  Poller* release() {
    Poller* p = poller_;
    poller_ = nullptr;
    return p;
  }
  void reset() {
    if (poller_ != nullptr) release()->Unregister();
  }

 private:
  Poller* poller_ = nullptr;
};

}  // namespace pollux
