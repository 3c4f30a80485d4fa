#include "thread_mover.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "pollux/env/log.h"
#include "pollux/reactor/reactor.h"

namespace pollux::perf {
namespace {

// Failed moves printed; the rest are only counted.
constexpr uint64_t kMaxFailuresPrinted = 5;

}  // namespace

ThreadMover::ThreadMover(std::vector<int> cpus, std::chrono::microseconds period) {
  figures_.period = period;
  figures_.cpus = std::move(cpus);
}

ThreadMover::~ThreadMover() {
  // Never stopped (the reactors stopped under it): its poller belongs to a thread that may be
  // gone, so it is left, not unregistered.
  (void)poller_.release();
}

void ThreadMover::Start(std::vector<Thread*> threads) {
  threads_ = std::move(threads);
  PollerOptions options;
  options.period = figures_.period;
  poller_ = PollerHandle(Thread::Current()->RegisterPoller(
      "perf_thread_mover", [this] { return MoveAll(); }, std::move(options)));
}

void ThreadMover::Stop() {
  if (!poller_) return;
  poller_.reset();
  // Approximate from here (each counter is its thread's), exact once in-flight moves landed:
  // at most two per thread are not counted yet, one under way and one that freed the thread
  // for the next move but has not counted itself (Thread::MoveIn).
  figures_.completed = 0;
  for (const Thread* thread : threads_) figures_.completed += thread->Stats().moves;
  threads_.clear();
}

int ThreadMover::NextCpu(const Thread& thread) const noexcept {
  const std::vector<int>& cpus = figures_.cpus;
  const Reactor* reactor = thread.reactor();
  auto it = reactor != nullptr ? std::find(cpus.begin(), cpus.end(), reactor->cpu()) : cpus.end();
  // Outside the run's cores (it cannot be: its cpumask is those cores): back to the first.
  if (it == cpus.end()) return cpus.front();
  return ++it == cpus.end() ? cpus.front() : *it;
}

PollResult ThreadMover::MoveAll() noexcept {
  bool moved = false;
  for (const Thread* thread : threads_) {
    const int cpu = NextCpu(*thread);
    // The core was read outside the move's lock: a move that landed since may have put the
    // thread there already, which starts nothing and is not counted.
    bool started = false;
    absl::Status status = Thread::Move(thread->id(), cpu, &started);
    if (status.ok()) {
      figures_.started += started;
      moved |= started;
    } else if (status.code() == absl::StatusCode::kFailedPrecondition) {
      // Its last move has not reached the target reactor yet (that reactor is busy, or the
      // period is shorter than a move): it goes on next time.
      ++figures_.skipped;
    } else {
      ++figures_.failed;
      if (figures_.failed <= kMaxFailuresPrinted) {
        PX_LOG(kError, "perf", "--move-threads: move thread \"%s\" to core %d: %s%s",
               thread->name(), cpu, status.message(),
               figures_.failed == kMaxFailuresPrinted ? " (further failures only counted)" : "");
      }
    }
  }
  return moved ? PollResult::kBusy : PollResult::kIdle;
}

}  // namespace pollux::perf
