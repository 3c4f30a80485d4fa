// --move-threads USEC, a testing aid: every USEC microseconds, moves each job thread to the
// next core of the run (round robin over the -m / --cpus cores) with its I/O in flight, the
// way SPDK's dynamic scheduler moves threads under load. A bdev module that keeps per-core
// state behind its channel's back (a ring bound to the OS thread that made it, a per-core
// counter) shows up as miscompares, errors or a hang under `-w verify`.
//
// Threads: the mover is a timed poller on the app thread (never on a job thread: its work is
// not timed with the jobs' I/O, and a job's reactor runs only its job). Start and Stop run on
// the app thread; the figures are read by the control thread after RunApp has returned.
// Thread::Move only starts a move (two reactor messages) and returns: the mover never waits
// for one to finish, so it never blocks a reactor.
//
// Lifetime: the job threads must outlive the mover's use of them; the coordinator stops it
// before it releases the workers (the only thing that lets a job thread exit).
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include "pollux/reactor/poller.h"
#include "pollux/reactor/thread.h"

namespace pollux::perf {

// What the mover did, for the report.
struct ThreadMoveFigures {
  std::chrono::microseconds period{0};  // 0: --move-threads not given
  std::vector<int> cpus;                // the cores the threads went round
  uint64_t started = 0;                 // moves Thread::Move accepted
  // Moves not started because the thread's previous move was still under way (it had not
  // reached its new reactor yet); the thread goes on at the next period.
  uint64_t skipped = 0;
  uint64_t failed = 0;     // refused for any other reason (a bug: logged)
  uint64_t completed = 0;  // moves the job threads counted themselves, when the mover stopped
};

class ThreadMover {
 public:
  // `cpus`: the run's cores (two or more); `period`: how often each thread moves.
  ThreadMover(std::vector<int> cpus, std::chrono::microseconds period);
  ~ThreadMover();
  ThreadMover(const ThreadMover&) = delete;
  ThreadMover& operator=(const ThreadMover&) = delete;

  // Starts moving `threads` (their cpumask must hold every core of the run) from a timed
  // poller on the calling Thread. On the app thread.
  void Start(std::vector<Thread*> threads);
  // No move starts after this returns; takes the threads' own move counts. On the app thread,
  // while the threads are alive.
  void Stop();

  // After RunApp has returned.
  const ThreadMoveFigures& figures() const { return figures_; }

 private:
  // The poller: one move per thread, each to the core after its current one.
  PollResult MoveAll() noexcept;
  int NextCpu(const Thread& thread) const noexcept;

  std::vector<Thread*> threads_;
  PollerHandle poller_;
  ThreadMoveFigures figures_;
};

}  // namespace pollux::perf
