// The threads that scheduler_thread_create makes: each a Thread with one ActivePercentLoad,
// placed by the reactor runtime within its cpumask and then moved by whatever scheduler runs.
//
// Threads: every method runs on the app thread (RPC handlers and subsystem shutdown), and
// every `done` is called there. The work itself is sent to each test thread as a message, and
// `done` runs once that thread has done it, so a reply means the change is in effect.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "active_percent_load.h"

namespace pollux::testing {

class SchedulerTestThreads {
 public:
  // The process's set (the RPC methods and the shutdown share it).
  static SchedulerTestThreads& Get();

  // Creates a thread named `name` that may run on `cpus` (empty: on every reactor's core) and
  // is `active_percent` (0..100) busy. `done` gets its id once its poller is registered, or
  // why it could not be created (InvalidArgument: a core without a reactor).
  void Create(std::string name, std::vector<int> cpus, uint32_t active_percent,
              absl::AnyInvocable<void(absl::StatusOr<uint64_t>)> done);
  // Sets how busy thread `id` is. InvalidArgument (and `done` dropped) for an unknown id.
  absl::Status SetActive(uint64_t id, uint32_t active_percent, absl::AnyInvocable<void()> done);
  // Unregisters the poller of thread `id` and makes it exit. InvalidArgument (and `done`
  // dropped) for an unknown id.
  absl::Status Delete(uint64_t id, absl::AnyInvocable<void()> done);
  // Deletes every thread (at shutdown); `done` once all have let go of their pollers.
  void DeleteAll(absl::AnyInvocable<void()> done);

 private:
  // Each load belongs to its thread (which deletes it); the pointer here only travels in
  // messages to that thread. An entry exists from creation (before the load starts) to
  // deletion, so that a shutdown during a creation still deletes the new thread.
  std::map<uint64_t, ActivePercentLoad*> loads_;
};

}  // namespace pollux::testing
