#include "subsystem_sequence.h"

#include <memory>
#include <vector>

#include "absl/strings/str_format.h"
#include "pollux/rpc/subsystem.h"

namespace pollux {
namespace {

// How many subsystems (in order) have been started, so that shutdown finishes just those.
size_t g_started = 0;

void StartFrom(size_t index, std::vector<rpc::Subsystem*> list,
               absl::AnyInvocable<void(absl::Status)> done) {
  while (index < list.size() && !list[index]->init) g_started = ++index;
  if (index == list.size()) return done(absl::OkStatus());
  rpc::Subsystem* subsystem = list[index];
  subsystem->init([index, list = std::move(list), done = std::move(done),
                   name = subsystem->name](absl::Status status) mutable {
    if (!status.ok()) {
      return done(absl::Status(status.code(), absl::StrFormat("starting subsystem \"%s\": %s",
                                                              name, status.message())));
    }
    g_started = index + 1;
    StartFrom(index + 1, std::move(list), std::move(done));
  });
}

void FinishFrom(size_t remaining, std::vector<rpc::Subsystem*> list,
                absl::AnyInvocable<void()> done) {
  while (remaining > 0 && !list[remaining - 1]->fini) --remaining;
  if (remaining == 0) return done();
  list[remaining - 1]->fini(
      [remaining, list = std::move(list), done = std::move(done)]() mutable {
        FinishFrom(remaining - 1, std::move(list), std::move(done));
      });
}

}  // namespace

void StartSubsystems(absl::AnyInvocable<void(absl::Status)> done) {
  g_started = 0;
  StartFrom(0, rpc::SubsystemRegistry::Global().Ordered(), std::move(done));
}

void FinishSubsystems(absl::AnyInvocable<void()> done) {
  size_t started = g_started;
  g_started = 0;
  FinishFrom(started, rpc::SubsystemRegistry::Global().Ordered(), std::move(done));
}

}  // namespace pollux
