#include "reactor_test_env.h"

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "pollux/env/log.h"

namespace pollux::testing {
namespace {

std::unique_ptr<EalSession> g_eal;
bool g_eal_failed = false;

// Initialises EAL before the first test that runs (not when gtest only lists the tests, which
// is how gtest_discover_tests enumerates them). With --gtest_repeat, SetUp runs once per
// repetition: the session is kept, since EAL cannot be initialised twice.
class ReactorTestEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (g_eal != nullptr || g_eal_failed) return;
    EalOptions options;
    options.cpus = {};  // every allowed core: two reactors on the test machines
    options.memory_mb = 256;
    auto session = InitEal(options);
    if (!session.ok()) {
      g_eal_failed = true;
      ADD_FAILURE() << "InitEal: " << session.status();
      return;
    }
    g_eal = std::move(*session);
  }
};

}  // namespace

EalSession* Eal() { return g_eal.get(); }

bool WaitUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  // Spin briefly (most conditions hold within microseconds), then back off to sleeps so that
  // the test thread does not steal a core from the reactors it is waiting for.
  for (int i = 0; i < 100; ++i) {
    if (condition()) return true;
    std::this_thread::yield();
  }
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return condition();
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return true;
}

void RunOn(Thread* thread, absl::AnyInvocable<void()> fn) {
  struct State {
    absl::AnyInvocable<void()> fn;
    std::mutex mutex;
    std::condition_variable cv;
    bool done = false;
  };
  auto state = std::make_shared<State>();
  state->fn = std::move(fn);
  auto message = [state] {
    state->fn();
    std::lock_guard lock(state->mutex);
    state->done = true;
    state->cv.notify_all();
  };
  while (!thread->SendMessage(message)) std::this_thread::yield();
  std::unique_lock lock(state->mutex);
  if (!state->cv.wait_for(lock, kTimeout, [&] { return state->done; })) {
    ADD_FAILURE() << "a message to thread \"" << thread->name() << "\" did not run within "
                  << kTimeout.count() << " s: lost wake-up or stuck reactor";
    std::fprintf(stderr,
                 "aborting: the pending closure may still run and touch the test's stack\n");
    std::abort();
  }
}

void WaitForIterations(Thread* thread, int iterations) {
  for (int i = 0; i < iterations; ++i) RunOn(thread, [] {});
}

ReactorRuntimeOptions ReactorTest::InterruptModeOptions() {
  ReactorRuntimeOptions options;
  options.mode = ReactorMode::kInterrupt;
  options.spin_window = std::chrono::microseconds(10);
  return options;
}

ReactorRuntimeOptions ReactorTest::RuntimeOptions() const {
  ReactorRuntimeOptions options;
  options.mode = ReactorMode::kPoll;
  return options;
}

void ReactorTest::SetUp() {
  ASSERT_NE(Eal(), nullptr) << "EAL is not initialised";
  ASSERT_EQ(ReactorRuntime::Get(), nullptr) << "a runtime from an earlier test is still running";
  auto runtime = ReactorRuntime::Start(*Eal(), RuntimeOptions());
  ASSERT_TRUE(runtime.ok()) << runtime.status();
  runtime_ = std::move(*runtime);
  ASSERT_GE(runtime_->reactors().size(), 2u) << "the reactor tests expect at least two cores";
}

void ReactorTest::TearDown() { runtime_.reset(); }

Thread* ReactorTest::CreateThread(std::string name, int reactor_index, uint32_t ring_size) {
  ThreadOptions options;
  options.ring_size = ring_size;
  if (reactor_index >= 0) options.cpu = reactor(reactor_index).cpu();
  auto thread = Thread::Create(name, options);
  EXPECT_TRUE(thread.ok()) << thread.status();
  if (!thread.ok()) std::abort();
  return *thread;
}

void ReactorTest::ExitThread(Thread* thread) {
  uint64_t id = thread->id();
  RunOn(thread, [] { Thread::Current()->Exit(); });
  EXPECT_TRUE(WaitUntil([id] { return Thread::Find(id) == nullptr; }))
      << "thread " << id << " was not destroyed after Exit()";
}

}  // namespace pollux::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new pollux::testing::ReactorTestEnvironment());
  int rc = RUN_ALL_TESTS();
  // The runtimes are gone; ending the EAL session removes its runtime directory.
  pollux::testing::g_eal.reset();
  return rc;
}
