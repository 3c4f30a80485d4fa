// Shared fixture of the reactor tests.
//
// EAL can be initialised once per process: ReactorTestEnvironment (registered by this
// library's main()) does it before the first test and keeps the session until the process
// ends. Each test fixture starts its own ReactorRuntime (two reactors on the test machines) in
// SetUp and stops it in TearDown, so runtimes start and stop many times in one process.
//
// Helpers run code on a Thread and wait for it from the test (control) thread. Every wait has
// a generous timeout that fails the test instead of hanging it.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "pollux/env/eal.h"
#include "pollux/reactor/reactor.h"
#include "pollux/reactor/thread.h"

namespace pollux::testing {

// A wait that takes this long is a hang: fail instead of waiting for CTest's timeout.
inline constexpr std::chrono::seconds kTimeout{30};

// The process's EAL session, or nullptr if initialisation failed (the failure is reported).
EalSession* Eal();

// Polls `condition` until it holds or `timeout` expires; returns whether it held.
bool WaitUntil(const std::function<bool()>& condition,
               std::chrono::milliseconds timeout = kTimeout);

// Runs fn on `thread` and waits until it has run. Call from the test thread, never from a
// reactor. A timeout adds a failure and aborts: fn may still run later and would then touch
// the caller's stack, so carrying on is not safe.
void RunOn(Thread* thread, absl::AnyInvocable<void()> fn);

// Runs fn on `thread` and returns its result.
template <typename Fn>
auto CallOn(Thread* thread, Fn fn) -> std::invoke_result_t<Fn&> {
  std::optional<std::invoke_result_t<Fn&>> result;
  RunOn(thread, [&] { result.emplace(fn()); });
  return std::move(*result);
}

// Number of messages and poll iterations `thread` has gone through, read on the thread.
// Waiting for this to advance proves the thread polled in between.
void WaitForIterations(Thread* thread, int iterations);

// Base fixture: starts a runtime per test.
class ReactorTest : public ::testing::Test {
 protected:
  // Options of the runtime SetUp starts; override in fixtures that need interrupt mode.
  virtual ReactorRuntimeOptions RuntimeOptions() const;
  // Interrupt mode with a 10 us spin window, so that the reactors really sleep between steps:
  // what interrupt-mode fixtures return from RuntimeOptions.
  static ReactorRuntimeOptions InterruptModeOptions();

  void SetUp() override;
  void TearDown() override;

  ReactorRuntime& runtime() { return *runtime_; }
  Reactor& reactor(size_t index) { return *runtime_->reactors().at(index); }
  ReactorInfo Info(size_t index) { return runtime_->Info().at(index); }

  // Creates a Thread on the reactor with index `reactor_index` (-1: wherever Create puts it).
  Thread* CreateThread(std::string name, int reactor_index = -1, uint32_t ring_size = 65536);

  // Asks `thread` to exit (on itself) and waits until it has been destroyed. The thread must
  // have released its pollers, fd handlers and channels.
  void ExitThread(Thread* thread);

  std::unique_ptr<ReactorRuntime> runtime_;
};

// A ReactorTest run once per mode (poll, interrupt) with a short spin window, so that the
// interrupt-mode run really sleeps between steps.
class ModeTest : public ReactorTest, public ::testing::WithParamInterface<ReactorMode> {
 protected:
  ReactorRuntimeOptions RuntimeOptions() const override {
    ReactorRuntimeOptions options;
    options.mode = GetParam();
    options.spin_window = spin_window_;
    return options;
  }
  std::chrono::microseconds spin_window_{10};
};

}  // namespace pollux::testing
