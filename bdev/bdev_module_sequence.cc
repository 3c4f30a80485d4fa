#include "bdev_module_sequence.h"

#include <chrono>
#include <memory>
#include <utility>

#include "absl/strings/str_format.h"
#include "first_call_only.h"
#include "pollux/env/log.h"
#include "pollux/reactor/poller.h"
#include "pollux/reactor/thread.h"

namespace pollux {
namespace {

struct ModuleSequence {
  std::string step_name;
  std::vector<BdevModule*> modules;
  ModuleStepFn step;
  absl::AnyInvocable<void(absl::Status, size_t)> done;
  uint64_t thread_id = 0;
  size_t next = 0;  // the module whose step runs (or is about to)
  // While a module's step is awaited: a timed poller naming it every few seconds, so that a
  // module that never calls done leaves a trace instead of a target hung in silence. SPDK
  // waits forever too; it just does not say for what.
  PollerHandle pending_report;
};

void RunNext(std::shared_ptr<ModuleSequence> sequence);

// On the sequence's thread, once the module at `next` called done.
void Continue(std::shared_ptr<ModuleSequence> sequence, absl::Status status) {
  sequence->pending_report.reset();
  if (!status.ok()) {
    const std::string& name = sequence->modules[sequence->next]->name();
    absl::Status failed(status.code(),
                        absl::StrFormat("bdev module %s: %s", name, status.message()));
    return sequence->done(std::move(failed), sequence->next);
  }
  ++sequence->next;
  RunNext(std::move(sequence));
}

void RunNext(std::shared_ptr<ModuleSequence> sequence) {
  if (sequence->next == sequence->modules.size()) {
    return sequence->done(absl::OkStatus(), sequence->next);
  }
  BdevModule& module = *sequence->modules[sequence->next];
  // The poller lives in the sequence and dies before it: a raw pointer is enough (a shared one
  // would be a cycle).
  ModuleSequence* raw = sequence.get();
  PollerOptions options;
  options.period = std::chrono::seconds(kModuleStepReportSeconds);
  sequence->pending_report = PollerHandle(Thread::Current()->RegisterPoller(
      "bdev module " + sequence->step_name,
      [raw, &module, waited = 0]() mutable {
        waited += kModuleStepReportSeconds;
        PX_LOG(kWarning, "bdev", "bdev module %s: %s not done after %d s; still waiting",
               module.name(), raw->step_name, waited);
        return PollResult::kBusy;
      },
      std::move(options)));
  // Whatever thread the module calls done on, the sequence goes on on its own thread, and in a
  // message rather than inside the module's call (no recursion through every module, and the
  // module's code after done() runs before the next module starts).
  absl::AnyInvocable<void(absl::Status)> done = FirstCallOnly<absl::Status>(
      absl::StrFormat("bdev module %s: %s done", module.name(), sequence->step_name),
      [sequence](absl::Status status) mutable {
        uint64_t thread_id = sequence->thread_id;
        std::string name = sequence->modules[sequence->next]->name();
        if (!RunOnThread(thread_id, [sequence, status = std::move(status)]() mutable {
              Continue(std::move(sequence), std::move(status));
            })) {
          PX_LOG(kError, "bdev", "bdev module %s: %s done after the bdev layer's thread exited",
                 name, sequence->step_name);
          // That thread took its pollers with it: the report's handle must not unregister.
          (void)sequence->pending_report.release();
        }
      });
  sequence->step(module, std::move(done));
}

}  // namespace

void RunModuleSequence(std::string step_name, std::vector<BdevModule*> modules, ModuleStepFn step,
                       absl::AnyInvocable<void(absl::Status, size_t completed)> done) {
  auto sequence = std::make_shared<ModuleSequence>();
  sequence->step_name = std::move(step_name);
  sequence->modules = std::move(modules);
  sequence->step = std::move(step);
  sequence->done = std::move(done);
  sequence->thread_id = Thread::Current()->id();
  RunNext(std::move(sequence));
}

}  // namespace pollux
