#include "scheduler_test_threads.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "pollux/app/app.h"
#include "pollux/env/log.h"
#include "pollux/reactor/thread.h"

namespace pollux::testing {
namespace {

// Runs `fn` on test thread `thread_id`, then `done` back on the app thread. Neither hop can
// find its thread gone: a test thread exits only through Delete, which forgets its id first,
// and the app thread outlives every test thread (the shutdown deletes them all before it
// exits). Should that ever break, the error is logged, not silently waited for.
void RoundTrip(uint64_t thread_id, absl::AnyInvocable<void()> fn, absl::AnyInvocable<void()> done) {
  const uint64_t app_thread_id = AppThread()->id();
  bool sent =
      RunOnThread(thread_id, [fn = std::move(fn), done = std::move(done), app_thread_id]() mutable {
        fn();
        if (!RunOnThread(app_thread_id, std::move(done))) {
          PX_LOG(kError, "scheduler_test", "the app thread is gone: a reply is lost");
        }
      });
  if (!sent)
    PX_LOG(kError, "scheduler_test", "test thread %d is gone: a request is lost", thread_id);
}

absl::Status UnknownThread(uint64_t id) {
  return absl::InvalidArgumentError(absl::StrCat("no scheduler test thread with id ", id));
}

}  // namespace

SchedulerTestThreads& SchedulerTestThreads::Get() {
  static SchedulerTestThreads threads;
  return threads;
}

void SchedulerTestThreads::Create(std::string name, std::vector<int> cpus, uint32_t active_percent,
                                  absl::AnyInvocable<void(absl::StatusOr<uint64_t>)> done) {
  absl::StatusOr<Thread*> thread = Thread::Create(std::move(name), {.cpumask = std::move(cpus)});
  if (!thread.ok()) return done(thread.status());
  const uint64_t id = (*thread)->id();
  auto* load = new ActivePercentLoad();
  loads_[id] = load;
  RoundTrip(
      id, [load, active_percent] { load->Start(active_percent); },
      [id, done = std::move(done)]() mutable { done(id); });
}

absl::Status SchedulerTestThreads::SetActive(uint64_t id, uint32_t active_percent,
                                             absl::AnyInvocable<void()> done) {
  auto it = loads_.find(id);
  if (it == loads_.end()) return UnknownThread(id);
  ActivePercentLoad* load = it->second;
  // Messages from the app thread run in the order sent: this one finds the load started.
  RoundTrip(
      id, [load, active_percent] { load->SetActivePercent(active_percent); }, std::move(done));
  return absl::OkStatus();
}

absl::Status SchedulerTestThreads::Delete(uint64_t id, absl::AnyInvocable<void()> done) {
  auto it = loads_.find(id);
  if (it == loads_.end()) return UnknownThread(id);
  ActivePercentLoad* load = it->second;
  loads_.erase(it);
  RoundTrip(
      id,
      [load] {
        delete load;  // unregisters the poller: the thread has nothing left and can go
        Thread::Current()->Exit();
      },
      std::move(done));
  return absl::OkStatus();
}

void SchedulerTestThreads::DeleteAll(absl::AnyInvocable<void()> done) {
  if (loads_.empty()) return done();
  auto remaining = std::make_shared<size_t>(loads_.size());
  auto shared_done = std::make_shared<absl::AnyInvocable<void()>>(std::move(done));
  std::vector<uint64_t> ids;
  for (const auto& [id, load] : loads_) ids.push_back(id);
  for (uint64_t id : ids) {
    absl::Status s = Delete(id, [remaining, shared_done] {
      if (--*remaining == 0) (*shared_done)();
    });
    if (!s.ok()) PX_LOG(kWarning, "scheduler_test", "%s", s.message());
  }
}

}  // namespace pollux::testing
