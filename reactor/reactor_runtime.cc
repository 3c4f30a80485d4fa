#include <rte_cycles.h>
#include <rte_launch.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "absl/strings/str_cat.h"
#include "idle_spin_policy.h"
#include "mailbox.h"
#include "pollux/env/cpu_list.h"
#include "pollux/env/log.h"
#include "pollux/reactor/reactor.h"

namespace pollux {

std::atomic<ReactorRuntime*> ReactorRuntime::instance_{nullptr};

std::string_view ReactorModeName(ReactorMode mode) {
  return mode == ReactorMode::kPoll ? "poll" : "interrupt";
}

absl::StatusOr<ReactorMode> ParseReactorMode(std::string_view name) {
  if (name == "poll") return ReactorMode::kPoll;
  if (name == "interrupt") return ReactorMode::kInterrupt;
  return absl::InvalidArgumentError(
      absl::StrFormat("unknown mode \"%s\" (expected poll or interrupt)", name));
}

absl::StatusOr<std::unique_ptr<ReactorRuntime>> ReactorRuntime::Start(
    const EalSession& eal, ReactorRuntimeOptions options) {
  if (instance_.load() != nullptr) {
    return absl::FailedPreconditionError("the reactors are already running in this process");
  }
  std::unique_ptr<ReactorRuntime> runtime(new ReactorRuntime());
  runtime->tsc_hz_ = rte_get_tsc_hz();
  runtime->first_window_tsc_ = runtime->tsc_hz_ * IdleSpinPolicy::kFirstWindowNs / 1000000000;
  runtime->mode_.store(options.mode);
  runtime->SetSpinWindow(options.spin_window);
  runtime->SetParkAfter(options.park_after);
  unsigned index = 0;
  for (const ReactorLcore& lcore : eal.reactor_lcores()) {
    runtime->reactors_.emplace_back(new Reactor(index++, lcore.lcore_id, lcore.cpu));
    runtime->reactors_.back()->mode_.store(options.mode, std::memory_order_relaxed);
  }
  instance_.store(runtime.get(), std::memory_order_release);
  for (auto& reactor : runtime->reactors_) {
    int rc = rte_eal_remote_launch(&Reactor::LaunchLoop, reactor.get(), reactor->lcore());
    if (rc != 0) {
      // The destructor stops and joins whatever did start.
      return absl::InternalError(absl::StrCat("launching reactor on lcore ", reactor->lcore(),
                                              " (core ", reactor->cpu(), "): ", strerror(-rc)));
    }
    reactor->launched_ = true;
  }
  PX_LOG(kInfo, "reactor", "%zu reactors running in %s mode", runtime->reactors_.size(),
         ReactorModeName(options.mode));
  return runtime;
}

ReactorRuntime::~ReactorRuntime() {
  for (auto& reactor : reactors_) {
    reactor->stop_.store(true, std::memory_order_release);
    reactor->mailbox_->Kick();
  }
  for (auto& reactor : reactors_) {
    if (reactor->launched_) {
      rte_eal_wait_lcore(reactor->lcore());
      TsanReceive(reactor.get());  // what the loop did happens before the teardown
    }
  }
  instance_.store(nullptr, std::memory_order_release);
}

Reactor* ReactorRuntime::ReactorOnCpu(int cpu) const {
  for (auto& reactor : reactors_) {
    if (reactor->cpu() == cpu) return reactor.get();
  }
  return nullptr;
}

std::chrono::microseconds ReactorRuntime::spin_window() const {
  return std::chrono::microseconds(spin_window_tsc_.load(std::memory_order_relaxed) * 1000000 /
                                   tsc_hz_);
}

std::vector<int> ReactorRuntime::cpus() const {
  std::vector<int> cpus;
  for (auto& reactor : reactors_) cpus.push_back(reactor->cpu());
  return cpus;
}

void ReactorRuntime::SetMode(ReactorMode mode) {
  mode_.store(mode, std::memory_order_relaxed);
  for (auto& reactor : reactors_) reactor->mode_.store(mode, std::memory_order_relaxed);
  WakeAll();
}

absl::Status ReactorRuntime::SetReactorMode(int cpu, ReactorMode mode) {
  Reactor* reactor = ReactorOnCpu(cpu);
  if (reactor == nullptr) {
    return absl::InvalidArgumentError(absl::StrFormat("no reactor on core %d (reactors: %s)", cpu,
                                                      FormatCpuList(cpus())));
  }
  reactor->mode_.store(mode, std::memory_order_relaxed);
  reactor->mailbox_->Kick();
  return absl::OkStatus();
}

void ReactorRuntime::SetSpinWindow(std::chrono::microseconds window) {
  spin_window_tsc_.store(tsc_hz_ * static_cast<uint64_t>(window.count()) / 1000000,
                         std::memory_order_relaxed);
  WakeAll();
}

std::chrono::milliseconds ReactorRuntime::park_after() const {
  return std::chrono::milliseconds(park_after_tsc_.load(std::memory_order_relaxed) * 1000 /
                                   tsc_hz_);
}

void ReactorRuntime::SetParkAfter(std::chrono::milliseconds park_after) {
  park_after_tsc_.store(tsc_hz_ * static_cast<uint64_t>(park_after.count()) / 1000,
                        std::memory_order_relaxed);
}

void ReactorRuntime::WakeAll() {
  for (auto& reactor : reactors_) reactor->mailbox_->Kick();
}

std::vector<ReactorInfo> ReactorRuntime::Info() {
  std::vector<ReactorInfo> infos;
  for (auto& reactor : reactors_) infos.push_back(reactor->Info());
  return infos;
}

std::vector<ReactorRuntime::ThreadSnapshot> ReactorRuntime::SnapshotThreads() {
  std::vector<ThreadSnapshot> threads;
  for (auto& reactor : reactors_) {
    // Under the reactor's info lock a thread on its list cannot be destroyed (Detach takes it).
    std::lock_guard lock(reactor->info_mutex_);
    for (Thread* thread : reactor->threads_) {
      // A thread bound to its reactor's OS thread may only stay (Thread::reactor_bound).
      threads.push_back({thread->id(), thread->name(), reactor->cpu(), thread->home_cpu(),
                         thread->reactor_bound() ? std::vector<int>{reactor->cpu()}
                                                 : thread->cpumask(),
                         thread->Stats()});
    }
  }
  return threads;
}

}  // namespace pollux
