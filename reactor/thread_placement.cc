// Where a Thread runs: its cpumask, its home core, and moves between reactors. A move is two
// reactor messages: the thread's reactor takes it out of its loop between two passes (its fds
// leave that reactor's epoll), then the target adopts it (they join the target's). The thread
// keeps its mailbox, pollers, fd handlers and channels throughout; messages sent meanwhile
// wait in its mailbox and run, in order, on the target.
#include <rte_pause.h>

#include <algorithm>
#include <memory>

#include "absl/strings/str_cat.h"
#include "pollux/env/cpu_list.h"
#include "pollux/reactor/reactor.h"
#include "pollux/reactor/thread.h"
#include "thread_registry.h"

namespace pollux {
namespace {

struct MoveRequest {
  uint64_t thread_id;
  Reactor* target;
};

void SendToReactor(Reactor* reactor, MessageFn fn, void* arg) {
  // A reactor's ring (4096) is far above any burst of control messages; spinning here is a
  // control-path back-off.
  while (!reactor->SendReactorMessage(fn, arg)) rte_pause();
}

}  // namespace

std::vector<int> Thread::cpumask() const {
  std::lock_guard lock(placement_mutex_);
  return cpumask_;
}

int Thread::home_cpu() const {
  std::lock_guard lock(placement_mutex_);
  return home_cpu_;
}

bool Thread::AllowedOn(int cpu) const {
  std::lock_guard lock(placement_mutex_);
  return std::binary_search(cpumask_.begin(), cpumask_.end(), cpu);
}

absl::Status Thread::Move(uint64_t id, int cpu, bool* started) {
  if (started != nullptr) *started = false;
  ReactorRuntime* runtime = ReactorRuntime::Get();
  if (runtime == nullptr) return absl::FailedPreconditionError("no reactor is running");
  Reactor* target = runtime->ReactorOnCpu(cpu);
  if (target == nullptr)
    return absl::InvalidArgumentError(absl::StrCat("no reactor on core ", cpu));
  Reactor* from = nullptr;
  absl::Status status = ThreadRegistry::Get().WithThread(id, [&](Thread* t) -> absl::Status {
    if (t == nullptr) return absl::NotFoundError(absl::StrCat("no thread with id ", id));
    if (!t->AllowedOn(cpu)) {
      return absl::InvalidArgumentError(
          absl::StrCat("thread \"", t->name(), "\" (id ", id, ") may not run on core ", cpu,
                       ": its cpumask is ", FormatCpuList(t->cpumask())));
    }
    if (t->reactor() == target) return absl::OkStatus();
    if (t->reactor() == nullptr) {
      // Nothing would send the move on, and the claim below would never be released.
      return absl::FailedPreconditionError(
          absl::StrCat("thread \"", t->name(), "\" (id ", id, ") runs on no reactor"));
    }
    if (t->reactor_bound()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "thread \"", t->name(), "\" (id ", id,
          ") holds resources bound to its reactor's OS thread (an io_uring set up for a single "
          "issuer): it stays on core ", t->reactor() != nullptr ? t->reactor()->cpu() : -1));
    }
    bool idle = false;
    if (!t->moving_.compare_exchange_strong(idle, true)) {
      return absl::FailedPreconditionError(
          absl::StrCat("thread \"", t->name(), "\" (id ", id, ") is being moved already"));
    }
    from = t->reactor();
    // Counted on the target now, so that placement decisions made meanwhile see it there.
    target->thread_count_.fetch_add(1, std::memory_order_relaxed);
    return absl::OkStatus();
  });
  // Sent outside the registry lock: the reactor may need it to reap a thread before it can
  // drain its ring. The thread is found again by id there: only that reactor destroys it.
  if (status.ok() && from != nullptr) {  // null: it was on `target` already
    SendToReactor(from, &MoveOut, new MoveRequest{id, target});
    if (started != nullptr) *started = true;
  }
  return status;
}

void Thread::MoveOut(void* arg) {
  std::unique_ptr<MoveRequest> request(static_cast<MoveRequest*>(arg));
  Reactor* self = Reactor::Current();
  Thread* thread =
      ThreadRegistry::Get().WithThread(request->thread_id, [](Thread* t) { return t; });
  if (thread != nullptr && thread->reactor() == self &&
      !thread->placed_.load(std::memory_order_acquire)) {
    // Created a moment ago, and its adoption (a message from another sender, so not ordered
    // with this one) has not run yet: after it, then.
    SendToReactor(self, &MoveOut, request.release());
    return;
  }
  if (thread == nullptr || thread->reactor() != self) {
    // It exited before the move reached its reactor.
    request->target->thread_count_.fetch_sub(1, std::memory_order_relaxed);
    if (thread != nullptr) thread->moving_.store(false, std::memory_order_release);
    return;
  }
  self->Detach(thread);
  SendToReactor(request->target, &MoveIn, thread);
}

void Thread::MoveIn(void* arg) {
  auto* thread = static_cast<Thread*>(arg);
  Reactor::Current()->Adopt(thread);
  // Free for the next move before the count says this one is done.
  thread->moving_.store(false, std::memory_order_release);
  thread->stats_.moves.Add(1);
}

absl::Status Thread::SetCpumask(uint64_t id, std::vector<int> cpus) {
  ReactorRuntime* runtime = ReactorRuntime::Get();
  if (runtime == nullptr) return absl::FailedPreconditionError("no reactor is running");
  if (cpus.empty()) return absl::InvalidArgumentError("the cpumask has no core");
  std::sort(cpus.begin(), cpus.end());
  cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
  for (int cpu : cpus) {
    if (runtime->ReactorOnCpu(cpu) == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "core ", cpu,
          " in the cpumask runs no reactor (reactors: ", FormatCpuList(runtime->cpus()), ")"));
    }
  }
  int home = -1;
  absl::Status status = ThreadRegistry::Get().WithThread(id, [&](Thread* t) -> absl::Status {
    if (t == nullptr) return absl::NotFoundError(absl::StrCat("no thread with id ", id));
    Reactor* reactor = t->reactor();
    std::lock_guard lock(t->placement_mutex_);
    int current = reactor != nullptr ? reactor->cpu() : t->home_cpu_;
    bool inside = std::binary_search(cpus.begin(), cpus.end(), current);
    t->home_cpu_ = inside ? current : cpus.front();
    t->cpumask_ = std::move(cpus);
    if (!inside) home = t->home_cpu_;
    return absl::OkStatus();
  });
  if (!status.ok() || home < 0) return status;
  // A move already under way ends inside the old mask; the scheduler's next period (or the
  // caller, again) brings it home.
  absl::Status moved = Move(id, home);
  return moved.code() == absl::StatusCode::kFailedPrecondition ? absl::OkStatus() : moved;
}

}  // namespace pollux
