// The worker pool: every request runs once and completes once on its own channel, from many
// producers and through many sleep/wake cycles of the workers; a submitter wakes a worker (one
// futex syscall) only when one sleeps; resizing under load loses nothing; Stop runs what was
// queued and cancels what comes later; the per-thread channels (GetIoChannel) reap on their
// own poller and, in interrupt mode, wake a sleeping reactor through their eventfd (and never
// write it in poll mode); the shared pool starts with its first user and stops with its last.
#include "pollux/bdev_file/worker_pool.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "pollux/reactor/io_channel.h"
#include "pollux/reactor/reactor.h"
#include "pollux/reactor/thread.h"
#include "reactor_test_env.h"

namespace pollux::testing {
namespace {

// A request that records what happened to it. `work` fails the requests whose index is a
// multiple of 7 with EIO, so that results are checked to travel with their own request.
struct TestRequest {
  WorkerRequest request;
  int index = 0;
  std::atomic<int> runs{0};    // written by workers
  int completions = 0;         // written by the owner of the channel
  int result = -1;
  std::atomic<bool>* gate = nullptr;  // when set, work waits for it (and says it started)
  std::atomic<bool>* started = nullptr;

  static int Work(WorkerRequest& request) noexcept {
    auto& self = *static_cast<TestRequest*>(request.arg);
    if (self.started != nullptr) self.started->store(true);
    if (self.gate != nullptr) {
      while (!self.gate->load()) std::this_thread::yield();
    }
    self.runs.fetch_add(1);
    return self.index % 7 == 0 ? EIO : 0;
  }
  static void Done(WorkerRequest& request, int result) noexcept {
    auto& self = *static_cast<TestRequest*>(request.arg);
    ++self.completions;
    self.result = result;
  }

  void Prepare(int i) {
    index = i;
    request.work = &Work;
    request.done = &Done;
    request.arg = this;
  }
  void ExpectDoneOnce() const {
    EXPECT_EQ(runs.load(), 1) << "request " << index;
    EXPECT_EQ(completions, 1) << "request " << index;
    EXPECT_EQ(result, index % 7 == 0 ? EIO : 0) << "request " << index;
  }
};

std::unique_ptr<WorkerPool> MakePool(uint32_t workers, uint32_t queue_size = 4096,
                                     uint32_t channel_queue_size = 1024) {
  WorkerPoolOptions options;
  options.num_workers = workers;
  options.queue_size = queue_size;
  options.channel_queue_size = channel_queue_size;
  options.name = "px-test";
  absl::StatusOr<std::unique_ptr<WorkerPool>> pool = WorkerPool::Create(options);
  EXPECT_TRUE(pool.ok()) << pool.status();
  return pool.ok() ? std::move(*pool) : nullptr;
}

// Reaps `channel` (flushing what is queued) until nothing is in flight; fails after kTimeout.
void Drain(WorkerPoolChannel& channel) {
  EXPECT_TRUE(WaitUntil([&] {
    channel.Poll();
    return channel.in_flight() == 0;
  }));
}

TEST(WorkerPoolTest, RejectsBadOptions) {
  WorkerPoolOptions options;
  options.num_workers = 0;
  EXPECT_EQ(WorkerPool::Create(options).status().code(), absl::StatusCode::kInvalidArgument);
  options.num_workers = kMaxWorkerPoolWorkers + 1;
  EXPECT_EQ(WorkerPool::Create(options).status().code(), absl::StatusCode::kInvalidArgument);
  options.num_workers = 1;
  options.queue_size = 0;
  EXPECT_EQ(WorkerPool::Create(options).status().code(), absl::StatusCode::kInvalidArgument);
  std::unique_ptr<WorkerPool> pool = MakePool(1);
  ASSERT_NE(pool, nullptr);
  EXPECT_EQ(pool->Resize(0).code(), absl::StatusCode::kInvalidArgument);
}

// Producers on plain threads, each with its own channel, through a small request ring and a
// small per-channel limit, so that both "ring full" and "channel full" paths keep the rest
// queued in the channel.
TEST(WorkerPoolTest, ManyProducersLoseNothing) {
  std::unique_ptr<WorkerPool> pool = MakePool(3, /*queue_size=*/64, /*channel_queue_size=*/16);
  ASSERT_NE(pool, nullptr);
  constexpr int kProducers = 4;
  constexpr int kRequests = 20000;
  std::vector<std::unique_ptr<TestRequest[]>> requests;
  for (int p = 0; p < kProducers; ++p) {
    requests.push_back(std::make_unique<TestRequest[]>(kRequests));
  }
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      WorkerPoolChannel channel(*pool);
      TestRequest* mine = requests[p].get();
      int next = 0;
      while (next < kRequests || channel.in_flight() != 0) {
        // Bursts of varying size between polls.
        for (int burst = 1 + next % 50; burst > 0 && next < kRequests; --burst, ++next) {
          mine[next].Prepare(next);
          channel.Submit(mine[next].request);
        }
        channel.Poll();
      }
      EXPECT_EQ(channel.pending(), 0u);
    });
  }
  for (std::thread& t : producers) t.join();
  for (int p = 0; p < kProducers; ++p) {
    for (int i = 0; i < kRequests; ++i) requests[p][i].ExpectDoneOnce();
  }
  EXPECT_EQ(pool->Stats().requests, static_cast<uint64_t>(kProducers) * kRequests);
}

// Each request is submitted once every worker sleeps: each submission then costs exactly one
// futex wake, and no request is stranded by a worker that went to sleep as it arrived.
TEST(WorkerPoolTest, SleepWakeCycles) {
  std::unique_ptr<WorkerPool> pool = MakePool(2);
  ASSERT_NE(pool, nullptr);
  WorkerPoolChannel channel(*pool);
  constexpr int kCycles = 2000;
  std::vector<TestRequest> requests(kCycles);
  for (int i = 0; i < kCycles; ++i) {
    ASSERT_TRUE(WaitUntil([&] { return pool->sleeping_workers() == 2; })) << "cycle " << i;
    uint64_t wakes_before = pool->Stats().wakes;
    requests[i].Prepare(i);
    channel.Submit(requests[i].request);
    EXPECT_EQ(channel.Flush(), 1u);
    EXPECT_EQ(pool->Stats().wakes, wakes_before + 1) << "cycle " << i;
    Drain(channel);
    requests[i].ExpectDoneOnce();
  }
  EXPECT_GE(pool->Stats().sleeps, static_cast<uint64_t>(kCycles));
}

// The same without waiting for the workers to sleep: submissions land at every point of a
// worker's way to sleep (spinning, publishing, re-checking, in FUTEX_WAIT).
TEST(WorkerPoolTest, RacingSleepAndSubmitLoseNothing) {
  std::unique_ptr<WorkerPool> pool = MakePool(2);
  ASSERT_NE(pool, nullptr);
  WorkerPoolChannel channel(*pool);
  constexpr int kCycles = 50000;
  std::vector<TestRequest> requests(kCycles);
  for (int i = 0; i < kCycles; ++i) {
    requests[i].Prepare(i);
    channel.Submit(requests[i].request);
    channel.Flush();
    // Vary the gap so that the next submission meets the workers in different states.
    for (int spin = 0; spin < (i * 37) % 500; ++spin) std::atomic_signal_fence(std::memory_order_seq_cst);
    Drain(channel);
  }
  for (const TestRequest& request : requests) request.ExpectDoneOnce();
}

// While the only worker is busy, nobody sleeps: a submission makes no wake-up syscall.
TEST(WorkerPoolTest, NoWakeWhileNoWorkerSleeps) {
  std::unique_ptr<WorkerPool> pool = MakePool(1);
  ASSERT_NE(pool, nullptr);
  WorkerPoolChannel channel(*pool);
  std::atomic<bool> gate{false};
  std::atomic<bool> started{false};
  TestRequest blocker;
  blocker.Prepare(1);
  blocker.gate = &gate;
  blocker.started = &started;
  channel.Submit(blocker.request);
  channel.Flush();
  ASSERT_TRUE(WaitUntil([&] { return started.load(); }));
  ASSERT_EQ(pool->sleeping_workers(), 0u);

  uint64_t wakes_before = pool->Stats().wakes;
  TestRequest second;
  second.Prepare(2);
  channel.Submit(second.request);
  EXPECT_EQ(channel.Flush(), 1u);
  EXPECT_EQ(pool->Stats().wakes, wakes_before);
  gate.store(true);
  Drain(channel);
  blocker.ExpectDoneOnce();
  second.ExpectDoneOnce();
}

// An armed channel with more requests at the workers than there are workers is not woken by
// their completions, only by the one that leaves at most num_workers; and only once per arming.
TEST(WorkerPoolTest, ArmedChannelIsWokenWhenFewRequestsAreLeft) {
  constexpr uint32_t kWorkers = 2;
  constexpr int kRequests = 8;
  std::unique_ptr<WorkerPool> pool = MakePool(kWorkers);
  ASSERT_NE(pool, nullptr);
  WorkerPoolChannel channel(*pool);
  std::vector<TestRequest> requests(kRequests);
  std::unique_ptr<std::atomic<bool>[]> gates(new std::atomic<bool>[kRequests]);
  for (int i = 0; i < kRequests; ++i) {
    gates[i].store(false);
    requests[i].Prepare(i);
    requests[i].gate = &gates[i];
    channel.Submit(requests[i].request);
  }
  ASSERT_EQ(channel.Flush(), static_cast<unsigned>(kRequests));
  ASSERT_TRUE(channel.Arm());
  uint32_t reaped = 0;
  // Completes request i (the workers take them in order) and reaps it.
  auto finish = [&](int i) {
    gates[i].store(true);
    ASSERT_TRUE(WaitUntil([&] {
      reaped += channel.Reap();
      return reaped == static_cast<uint32_t>(i + 1);
    })) << "request " << i;
  };
  for (int i = 0; i < kRequests - static_cast<int>(kWorkers) - 1; ++i) {
    finish(i);
    // Give a worker that would wrongly write the eventfd time to do it.
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    EXPECT_EQ(channel.wake_writes(), 0u) << "after request " << i << ", with "
                                          << kRequests - i - 1 << " left";
  }
  // This one leaves kWorkers at the workers: the owner is woken, and disarmed.
  finish(kRequests - kWorkers - 1);
  ASSERT_TRUE(WaitUntil([&] { return channel.wake_writes() == 1; }));
  uint64_t value = 0;
  EXPECT_EQ(read(channel.wake_fd(), &value, sizeof(value)), static_cast<ssize_t>(sizeof(value)));
  // Not armed: the next completion writes nothing; armed again, the one after it does.
  finish(kRequests - kWorkers);
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_EQ(channel.wake_writes(), 1u);
  ASSERT_TRUE(channel.Arm());
  finish(kRequests - 1);
  ASSERT_TRUE(WaitUntil([&] { return channel.wake_writes() == 2; }));
  channel.Disarm();
  for (const TestRequest& request : requests) request.ExpectDoneOnce();
}

// Stop with requests still at the workers: every request flushed before Stop runs and its
// completion arrives; one flushed after Stop completes with ECANCELED without running.
TEST(WorkerPoolTest, StopWithWorkInFlight) {
  std::unique_ptr<WorkerPool> pool = MakePool(2);
  ASSERT_NE(pool, nullptr);
  WorkerPoolChannel channel(*pool);
  constexpr int kRequests = 1000;
  std::vector<TestRequest> requests(kRequests);
  std::atomic<bool> gate{false};
  std::atomic<bool> started{false};
  for (int i = 0; i < kRequests; ++i) {
    requests[i].Prepare(i);
    // The first one holds a worker until Stop has begun, so that Stop meets queued work.
    if (i == 0) {
      requests[i].gate = &gate;
      requests[i].started = &started;
    }
    channel.Submit(requests[i].request);
  }
  EXPECT_EQ(channel.Flush(), static_cast<unsigned>(kRequests));
  ASSERT_TRUE(WaitUntil([&] { return started.load(); }));
  std::thread stopper([&] { pool->Stop(); });
  ASSERT_TRUE(WaitUntil([&] { return pool->stopped(); }));
  gate.store(true);
  stopper.join();
  EXPECT_EQ(pool->Stats().requests, static_cast<uint64_t>(kRequests));
  Drain(channel);
  for (const TestRequest& request : requests) request.ExpectDoneOnce();

  TestRequest late;
  late.Prepare(1);
  channel.Submit(late.request);
  EXPECT_EQ(channel.Flush(), 1u);  // cancelled at once
  EXPECT_EQ(channel.in_flight(), 0u);
  EXPECT_EQ(late.runs.load(), 0);
  EXPECT_EQ(late.completions, 1);
  EXPECT_EQ(late.result, ECANCELED);
}

// Growing and shrinking while producers keep submitting.
TEST(WorkerPoolTest, ResizeUnderLoad) {
  std::unique_ptr<WorkerPool> pool = MakePool(1, /*queue_size=*/128);
  ASSERT_NE(pool, nullptr);
  constexpr int kRequests = 30000;
  auto requests = std::make_unique<TestRequest[]>(kRequests);
  std::atomic<bool> finished{false};
  std::thread producer([&] {
    WorkerPoolChannel channel(*pool);
    for (int i = 0; i < kRequests; ++i) {
      requests[i].Prepare(i);
      channel.Submit(requests[i].request);
      if (i % 8 == 7) channel.Poll();
    }
    Drain(channel);
    finished.store(true);
  });
  const uint32_t sizes[] = {4, 2, 3, 1, 5, 1, 2};
  for (int round = 0; !finished.load(); ++round) {
    uint32_t size = sizes[round % std::size(sizes)];
    ASSERT_TRUE(pool->Resize(size).ok());
    EXPECT_EQ(pool->num_workers(), size);
    std::this_thread::yield();
  }
  producer.join();
  for (int i = 0; i < kRequests; ++i) requests[i].ExpectDoneOnce();
}

// ---- Per-thread channels on reactors ----

class WorkerPoolReactorTest : public ModeTest {};

// A chain of requests from a Thread, each submitted by the previous one's completion. In
// interrupt mode each request's work waits until the submitting reactor has gone to sleep, so
// that only the channel's eventfd can bring the completion in: a lost wake-up hangs the test
// (and fails it at the timeout). In poll mode the channel never arms and no worker writes its
// eventfd.
TEST_P(WorkerPoolReactorTest, CompletionsReachASleepingReactor) {
  std::unique_ptr<WorkerPool> pool = MakePool(2);
  ASSERT_NE(pool, nullptr);
  pool->RegisterIoDevice();
  Thread* thread = CreateThread("submitter", 0);
  const bool interrupt = GetParam() == ReactorMode::kInterrupt;
  constexpr int kRequests = 100;

  struct Chain {
    ReactorRuntime* runtime;
    bool interrupt;
    IoChannelRef channel;
    WorkerRequest request;
    std::atomic<uint64_t> sleeps_at_submit{0};
    std::atomic<int> done{0};
    std::atomic<int> runs{0};
    uint64_t wake_writes = 0;

    void SubmitNext() {
      sleeps_at_submit.store(runtime->Info().at(0).sleeps);
      request.work = [](WorkerRequest& r) noexcept {
        auto& chain = *static_cast<Chain*>(r.arg);
        if (chain.interrupt) {
          // Until the reactor has slept since this request was submitted.
          while (chain.runtime->Info().at(0).sleeps <= chain.sleeps_at_submit.load()) {
            std::this_thread::yield();
          }
        }
        chain.runs.fetch_add(1);
        return 0;
      };
      request.done = [](WorkerRequest& r, int result) noexcept {
        auto& chain = *static_cast<Chain*>(r.arg);
        EXPECT_EQ(result, 0);
        if (chain.done.fetch_add(1) + 1 < kRequests) chain.SubmitNext();
      };
      request.arg = this;
      channel->context<WorkerPoolChannel>().Submit(request);
    }
  };
  Chain chain;
  chain.runtime = &runtime();
  chain.interrupt = interrupt;
  RunOn(thread, [&] {
    chain.channel = GetIoChannel(*pool);
    ASSERT_TRUE(chain.channel);
    chain.SubmitNext();
  });
  ASSERT_TRUE(WaitUntil([&] { return chain.done.load() == kRequests; }));
  EXPECT_EQ(chain.runs.load(), kRequests);
  RunOn(thread, [&] {
    auto& channel = chain.channel->context<WorkerPoolChannel>();
    EXPECT_EQ(channel.in_flight(), 0u);
    chain.wake_writes = channel.wake_writes();
    chain.channel.reset();
  });
  if (interrupt) {
    EXPECT_GT(chain.wake_writes, 0u);
  } else {
    EXPECT_EQ(chain.wake_writes, 0u);
  }
  std::atomic<bool> unregistered{false};
  RunOn(thread, [&] { pool->UnregisterIoDevice([&] { unregistered.store(true); }); });
  ASSERT_TRUE(WaitUntil([&] { return unregistered.load(); }));
  ExitThread(thread);
}

// Two reactors submit at full depth through their own channels at once, with completions
// chained to new submissions: all arrive, each on its own thread.
TEST_P(WorkerPoolReactorTest, ThreadsOnBothReactorsShareThePool) {
  std::unique_ptr<WorkerPool> pool = MakePool(3);
  ASSERT_NE(pool, nullptr);
  pool->RegisterIoDevice();
  constexpr int kDepth = 32;
  constexpr int kPerThread = 20000;

  struct Slot;
  struct Submitter {
    Thread* thread = nullptr;
    IoChannelRef channel;
    int submitted = 0;
    std::atomic<int> done{0};
    bool wrong_thread = false;
    std::vector<Slot> slots;
  };
  struct Slot {
    WorkerRequest request;
    Submitter* owner;
  };
  auto submit = [](Slot& slot) {
    Submitter& s = *slot.owner;
    ++s.submitted;
    slot.request.work = [](WorkerRequest&) noexcept { return 0; };
    slot.request.done = [](WorkerRequest& r, int) noexcept {
      auto& slot = *static_cast<Slot*>(r.arg);
      Submitter& s = *slot.owner;
      if (Thread::Current() != s.thread) s.wrong_thread = true;
      s.done.fetch_add(1);
      if (s.submitted < kPerThread) {
        ++s.submitted;
        s.channel->context<WorkerPoolChannel>().Submit(r);
      }
    };
    slot.request.arg = &slot;
    s.channel->context<WorkerPoolChannel>().Submit(slot.request);
  };

  Submitter submitters[2];
  for (int i = 0; i < 2; ++i) {
    submitters[i].thread = CreateThread("submitter", i);
    submitters[i].slots.resize(kDepth, Slot{{}, &submitters[i]});
  }
  for (Submitter& s : submitters) {
    RunOn(s.thread, [&] {
      s.channel = GetIoChannel(*pool);
      for (Slot& slot : s.slots) submit(slot);
    });
  }
  for (Submitter& s : submitters) {
    ASSERT_TRUE(WaitUntil([&] { return s.done.load() == kPerThread; }));
    RunOn(s.thread, [&] {
      EXPECT_FALSE(s.wrong_thread);
      s.channel.reset();
    });
  }
  EXPECT_EQ(pool->Stats().requests, 2u * kPerThread);
  std::atomic<bool> unregistered{false};
  RunOn(submitters[0].thread, [&] { pool->UnregisterIoDevice([&] { unregistered.store(true); }); });
  ASSERT_TRUE(WaitUntil([&] { return unregistered.load(); }));
  for (Submitter& s : submitters) ExitThread(s.thread);
}

INSTANTIATE_TEST_SUITE_P(Modes, WorkerPoolReactorTest,
                         ::testing::Values(ReactorMode::kPoll, ReactorMode::kInterrupt),
                         [](const auto& info) {
                           return info.param == ReactorMode::kPoll ? "Poll" : "Interrupt";
                         });

// ---- The shared pool ----

class SharedWorkerPoolTest : public ReactorTest {
 protected:
  void TearDown() override {
    ASSERT_TRUE(SetSharedWorkerPoolOptions(WorkerPoolOptions{}).ok());
    ReactorTest::TearDown();
  }
};

TEST_F(SharedWorkerPoolTest, FirstUserStartsItLastUserStopsIt) {
  Thread* thread = CreateThread("app", 0);
  WorkerPoolOptions options;
  options.num_workers = 2;
  ASSERT_TRUE(SetSharedWorkerPoolOptions(options).ok());
  EXPECT_EQ(SharedWorkerPoolUsers(), 0u);

  WorkerPool* first = nullptr;
  WorkerPool* second = nullptr;
  RunOn(thread, [&] {
    first = *AcquireSharedWorkerPool();
    second = *AcquireSharedWorkerPool();
  });
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first, second);
  EXPECT_EQ(SharedWorkerPoolUsers(), 2u);
  EXPECT_EQ(first->num_workers(), 2u);

  // num_workers changes a running pool at once; the queue sizes cannot change under users.
  options.num_workers = 5;
  ASSERT_TRUE(SetSharedWorkerPoolOptions(options).ok());
  EXPECT_EQ(first->num_workers(), 5u);
  WorkerPoolOptions bigger = options;
  bigger.queue_size *= 2;
  EXPECT_EQ(SetSharedWorkerPoolOptions(bigger).code(), absl::StatusCode::kFailedPrecondition);
  options.num_workers = 0;
  EXPECT_EQ(SetSharedWorkerPoolOptions(options).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GetSharedWorkerPoolOptions().num_workers, 5u);

  // A thread's channel keeps the last release waiting until it is gone.
  IoChannelRef channel;
  RunOn(thread, [&] { channel = GetIoChannel(*first); });
  ASSERT_TRUE(channel);
  std::atomic<int> released{0};
  RunOn(thread, [&] { ReleaseSharedWorkerPool([&] { released.fetch_add(1); }); });
  EXPECT_EQ(released.load(), 1);
  RunOn(thread, [&] { ReleaseSharedWorkerPool([&] { released.fetch_add(1); }); });
  EXPECT_EQ(SharedWorkerPoolUsers(), 0u);
  WaitForIterations(thread, 3);
  EXPECT_EQ(released.load(), 1);
  RunOn(thread, [&] { channel.reset(); });
  ASSERT_TRUE(WaitUntil([&] { return released.load() == 2; }));

  // The next user starts a new pool with the options set last.
  RunOn(thread, [&] { first = *AcquireSharedWorkerPool(); });
  EXPECT_EQ(first->num_workers(), 5u);
  RunOn(thread, [&] { ReleaseSharedWorkerPool([&] { released.fetch_add(1); }); });
  ASSERT_TRUE(WaitUntil([&] { return released.load() == 3; }));
  ExitThread(thread);
}

}  // namespace
}  // namespace pollux::testing
