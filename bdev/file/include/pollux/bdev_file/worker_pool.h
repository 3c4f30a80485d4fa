// WorkerPool: OS threads that run blocking file calls (preadv, pwritev, fdatasync, fallocate)
// for reactor threads, which must never block. The thread-pool engine sends every I/O here;
// the aio engine sends what libaio cannot do asynchronously (FLUSH, UNMAP, WRITE_ZEROES).
//
// Data path, with no allocation, lock or syscall of its own:
//   reactor thread                                  worker thread
//   WorkerPoolChannel::Submit  (local list)
//   WorkerPoolChannel::Poll -> Flush ---- request ring (rte_ring, RTS/RTS) ----> work()
//   WorkerPoolChannel::Poll <- reap ----- the channel's completion ring (RTS/SC) <-+
//     done() on the submitting thread
// - A request is a WorkerRequest in the submitter's memory (a BdevIo's module_context): the
//   rings carry pointers to it, nothing is allocated per request.
// - Submissions of one poll iteration go to the request ring in one operation (per 64), followed
//   by at most one futex wake, and only when a worker sleeps (WorkerPool::sleeping_workers).
// - Workers sleep on a futex when the ring is empty; a worker publishes that it sleeps, then
//   looks at the ring once more, so a request enqueued meanwhile is never stranded.
// - Completions go to the submitting thread's channel through that channel's own ring, which
//   its poller reaps without a syscall. In interrupt mode the poller arms the channel before the
//   reactor sleeps, and a worker writes the channel's eventfd only while it is armed, and only
//   once no more of the channel's requests are left at the workers than there are workers:
//   until then the workers have its work and need nothing from it, so a sleeping reactor is
//   woken once per batch of completions instead of once per completion.
// - The workers run on the reactors' own cores (they inherit the pin of the thread that starts
//   them, and pollux runs on the cores it was given): an idle reactor waiting for them sleeps at
//   once in interrupt mode and yields its core in poll mode (AwaitedWork::kHelperThreads).
//
// Every side of a ring that several threads share uses DPDK's RTS sync mode (the request ring's
// producers and consumers, the completion ring's producers): a thread preempted in the middle
// of its ring operation does not make the others spin (see reactor/mailbox.h for what classic
// MP/MC costs when threads outnumber cores; here workers usually do). Each end of a batch pays
// two CAS instead of one, which is noise beside the blocking call a request stands for.
//
// Threads: a WorkerPool is created, resized and stopped on control paths (any thread, usually
// the app thread). A WorkerPoolChannel belongs to one thread: everything but its constructor's
// pool argument is used on that thread only.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pollux/bdev/bdev_io.h"
#include "pollux/reactor/completion_ring.h"
#include "pollux/reactor/io_channel.h"
#include "pollux/reactor/poller.h"

struct rte_ring;

namespace pollux {

class WorkerPool;
class WorkerPoolChannel;

// One blocking call for the pool. It lives in the submitter's memory (for a BdevIo: inside its
// module_context, so BdevModule::io_context_size() must count it) from Submit until its done
// function has run, and is not touched by the pool afterwards.
struct WorkerRequest {
  // Runs on a worker: the blocking call. Returns 0 or a positive errno, handed to `done`.
  using WorkFn = int (*)(WorkerRequest& request) noexcept;
  // Runs on the submitting thread, from its channel's Poll, with what `work` returned
  // (ECANCELED if the pool was stopped before a worker took the request).
  using DoneFn = void (*)(WorkerRequest& request, int result) noexcept;
  // SubmitBdevIo's work function: the blocking call for `io`, 0 or a positive errno.
  using BdevIoWorkFn = int (*)(BdevIo& io, void* arg) noexcept;

  WorkFn work = nullptr;
  DoneFn done = nullptr;
  void* arg = nullptr;                  // for work and done
  BdevIo* io = nullptr;                 // SubmitBdevIo only
  BdevIoWorkFn io_work = nullptr;       // SubmitBdevIo only

  // ---- The pool's, while the request is in flight ----
  WorkerPoolChannel* channel = nullptr;  // where the completion goes
  WorkerRequest* next = nullptr;         // the channel's list of requests not yet flushed
  int result = 0;                        // written by the worker, read by the channel
};

struct WorkerPoolOptions {
  // Worker threads: how many blocking calls run at once for all threads together.
  uint32_t num_workers = 4;
  // Request ring entries (rounded up to a power of two): requests queued for the workers by all
  // threads together. A channel keeps what does not fit and retries on its next poll.
  uint32_t queue_size = 4096;
  // Requests one channel (one thread) may have at the workers at once: its completion ring's
  // size (rounded up to a power of two). The rest wait in the channel.
  uint32_t channel_queue_size = 1024;
  // Prefix of the worker threads' names (at most 10 characters are kept: "name-12").
  std::string name = "px-file";
};

inline constexpr uint32_t kMaxWorkerPoolWorkers = 256;

// Counters of a pool, for tests and bdev_threadpool_get_options. Approximate while it runs.
struct WorkerPoolStats {
  uint64_t requests = 0;  // requests the workers ran
  uint64_t wakes = 0;     // futex wake calls by submitters (each one a syscall)
  uint64_t sleeps = 0;    // times a worker went to sleep on the futex
};

class WorkerPool final : public IoDevice {
 public:
  // Validates `options` and starts the workers. Any thread.
  static absl::StatusOr<std::unique_ptr<WorkerPool>> Create(const WorkerPoolOptions& options);
  // Stops the workers (Stop) if that was not done. Unregister the IoDevice first if it was
  // registered (UnregisterIoDevice), and destroy every channel made by hand.
  ~WorkerPool() override;

  // Makes per-thread channels available through GetIoChannel(pool) (each one reaped by its own
  // poller on its thread). A pool used only through hand-made channels need not register.
  using IoDevice::RegisterIoDevice;
  using IoDevice::UnregisterIoDevice;

  // Changes the number of workers while running: new workers start at once; surplus ones exit
  // after the request they are running, if any. 1 to kMaxWorkerPoolWorkers. Any thread but a
  // worker; blocks until surplus workers have exited (a control path).
  absl::Status Resize(uint32_t num_workers);

  // Runs every request already in the request ring, then joins the workers. Requests flushed
  // afterwards complete with ECANCELED without running. Any thread but a worker; no channel may
  // flush concurrently with it (every user of the shared pool is gone by then).
  void Stop();

  uint32_t num_workers() const { return target_workers_.load(std::memory_order_relaxed); }
  // Workers asleep on the futex (or about to be). For tests and statistics.
  uint32_t sleeping_workers() const { return sleepers_.load(std::memory_order_relaxed); }
  bool stopped() const { return stopping_.load(std::memory_order_acquire); }
  const WorkerPoolOptions& options() const { return options_; }
  WorkerPoolStats Stats() const;

 private:
  friend class WorkerPoolChannel;

  explicit WorkerPool(const WorkerPoolOptions& options);
  std::unique_ptr<ChannelContext> CreateChannelContext() override;

  // Puts up to `count` requests in the request ring and wakes sleeping workers for them;
  // returns how many went in. Any thread.
  unsigned Enqueue(WorkerRequest* const* requests, unsigned count) noexcept;
  void WakeWorkers(unsigned count) noexcept;
  void StartWorker(uint32_t index);
  void WorkerMain(uint32_t index) noexcept;
  bool RequestsQueued() const noexcept;

  const WorkerPoolOptions options_;
  void* ring_memory_ = nullptr;
  rte_ring* ring_ = nullptr;  // WorkerRequest*: RTS producers (reactors), RTS consumers (workers)

  std::mutex control_mutex_;  // Resize and Stop, never on the data path
  std::vector<std::thread> workers_;

  // Read by every submitter after every enqueue: on its own cache line, written only by
  // workers going to sleep or waking up.
  alignas(64) std::atomic<uint32_t> sleepers_{0};
  // The futex word workers sleep on: a submitter bumps it before FUTEX_WAKE, so that a worker
  // that read it before publishing itself as a sleeper does not block (FUTEX_WAIT compares).
  alignas(64) std::atomic<uint32_t> wake_sequence_{0};
  std::atomic<uint32_t> target_workers_{0};  // workers with this index or higher exit
  std::atomic<bool> stopping_{false};

  alignas(64) std::atomic<uint64_t> requests_run_{0};
  std::atomic<uint64_t> wakes_{0};
  std::atomic<uint64_t> sleeps_{0};
};

// One thread's end of a pool: the requests it has not flushed yet and its completion ring.
// Two ways to get one:
// - GetIoChannel(pool) on a Thread: the channel registers its own poller on that thread, which
//   reaps and flushes every iteration (paused while nothing is in flight) and sleeps in
//   interrupt mode through the channel's eventfd. One per thread, shared by every user there.
// - By hand, embedded in a user's own channel (the threadpool engine's FileChannel): the owner
//   calls Flush, Reap, Arm and Disarm from its own poller, and may let completions signal its
//   own eventfd.
// Destroy it on its thread with nothing in flight; requests still at the workers are waited
// for and their completions dropped, with an error in the log.
class WorkerPoolChannel final : public ChannelContext {
 public:
  // A channel without a poller. `wake_fd`: the eventfd a completion writes while the channel
  // is armed; -1 makes one (wake_fd()), owned by the channel. Aborts only if memory or eventfds
  // are exhausted.
  explicit WorkerPoolChannel(WorkerPool& pool, int wake_fd = -1);
  ~WorkerPoolChannel() override;
  WorkerPoolChannel(const WorkerPoolChannel&) = delete;
  WorkerPoolChannel& operator=(const WorkerPoolChannel&) = delete;

  // Queues request.work(request) for a worker, then request.done(request, result) on this
  // thread. Goes to the workers at the next Flush (the poller's, once per iteration). Never
  // fails, never blocks, allocates nothing: the channel links the request into a list.
  void Submit(WorkerRequest& request) noexcept {
    request.channel = this;
    request.next = nullptr;
    *pending_tail_ = &request;
    pending_tail_ = &request.next;
    ++in_flight_;
    ++pending_;
    if (poller_ && poller_->paused()) poller_->Resume();
  }

  // Runs work(io, arg) on a worker and completes `io` on this thread: kSuccess for 0,
  // kFailed carrying the errno otherwise. `request` is memory in io's module_context.
  void SubmitBdevIo(WorkerRequest& request, BdevIo& io, WorkerRequest::BdevIoWorkFn work,
                    void* arg) noexcept {
    request.work = &RunBdevIoWork;
    request.done = &CompleteBdevIo;
    request.arg = arg;
    request.io = &io;
    request.io_work = work;
    Submit(request);
  }

  // Hands the submitted requests to the workers: one ring operation and at most one futex wake
  // (only if a worker sleeps) per 64 requests. Returns how many went; those that did not fit (the
  // request ring is full, or this channel has channel_queue_size at the workers) stay queued
  // for the next call. After WorkerPool::Stop, completes them with ECANCELED instead.
  unsigned Flush() noexcept;
  // Runs the done functions of the requests the workers finished, reading the completion ring
  // in user space (no syscall). Returns how many.
  unsigned Reap() noexcept;
  // Reap, then Flush (what a poller does). Busy if either did something.
  PollResult Poll() noexcept {
    unsigned work = Reap();
    work += Flush();
    if (poller_) {
      if (in_flight_ == 0) poller_->Pause();
      // Our workers run on the reactors' cores: an idle reactor sleeps at once for them.
      poller_->SetAwaiting(in_flight_ != 0 ? AwaitedWork::kHelperThreads : AwaitedWork::kNothing);
    }
    return work != 0 ? PollResult::kBusy : PollResult::kIdle;
  }

  // Requests submitted whose done function has not run yet.
  uint32_t in_flight() const { return in_flight_; }
  // Of which not flushed yet.
  uint32_t pending() const { return pending_; }
  // Times a worker wrote the wake fd for this channel (only ever while it was armed).
  uint64_t wake_writes() const { return completions_.wake_writes(); }

  // ---- Interrupt mode ----
  // The eventfd completions write while the channel is armed.
  int wake_fd() const { return completions_.wake_fd(); }
  // The owner is about to sleep: from now on the first completion that leaves at most
  // num_workers of the channel's requests at the workers writes wake_fd (once).
  // Returns false, not armed, when submitted requests wait to be flushed (Flush first). The
  // caller then issues a seq_cst fence and reaps once more before sleeping (the reactor does
  // both for pollers: it fences after arming and polls again), so that a completion that
  // raced the arming is not lost.
  bool Arm() noexcept {
    if (pending_head_ != nullptr) return false;
    completions_.Arm();
    return true;
  }
  void Disarm() noexcept { completions_.Disarm(); }

 private:
  friend class WorkerPool;

  // Registers this channel's own poller on the calling Thread (GetIoChannel's channels).
  void StartPoller();
  // Worker side: queues a finished request on this channel and wakes its owner if armed.
  void PushCompletion(WorkerRequest& request) noexcept;
  // Completes the unflushed requests with ECANCELED (the pool stopped).
  unsigned CancelPending() noexcept;

  static int RunBdevIoWork(WorkerRequest& request) noexcept {
    return request.io_work(*request.io, request.arg);
  }
  static void CompleteBdevIo(WorkerRequest& request, int result) noexcept {
    if (result == 0) {
      request.io->Complete(BdevIoStatus::kSuccess);
    } else {
      request.io->Complete(BdevIoStatus::kFailed, result);
    }
  }

  WorkerPool& pool_;
  uint32_t capacity_;  // most requests at the workers at once
  // WorkerRequest*, pushed by the workers. Handed out: the requests flushed.
  CompletionRing completions_;
  PollerHandle poller_;

  // Owner thread only.
  WorkerRequest* pending_head_ = nullptr;  // submitted, not flushed yet, in order
  WorkerRequest** pending_tail_ = &pending_head_;
  uint32_t pending_ = 0;
  uint32_t in_flight_ = 0;
  uint32_t at_workers_ = 0;  // flushed, not reaped
};

// ---- The process-wide pool that every file engine shares ----
//
// The first user (a threadpool bdev, an aio bdev that offloads) starts it with the options set
// last; the last user's release stops it. Options may change at any time: a running pool is
// resized at once. All functions: on a pollux Thread (the app thread, where RPC methods and
// bdev creation run); they take a mutex, never on the data path.

// Options for the shared pool (bdev_threadpool_set_options). Resizes a running pool.
absl::Status SetSharedWorkerPoolOptions(const WorkerPoolOptions& options);
WorkerPoolOptions GetSharedWorkerPoolOptions();
// Takes a reference to the shared pool, starting it if it does not run. Its channels come from
// GetIoChannel(pool) on each thread.
absl::StatusOr<WorkerPool*> AcquireSharedWorkerPool();
// Drops a reference taken by AcquireSharedWorkerPool. The last one unregisters the pool (once
// every channel is gone), stops and frees it, and then calls done on the calling Thread;
// otherwise done runs at once.
void ReleaseSharedWorkerPool(absl::AnyInvocable<void()> done);
// References held now (0: the pool does not run). For bdev_threadpool_get_options.
uint32_t SharedWorkerPoolUsers();
// The running shared pool's counters, or nothing when it does not run.
std::optional<WorkerPoolStats> SharedWorkerPoolStats();

// One reference to the shared pool, as a bdev holds it: Acquire takes it, Release(done) drops
// it (from the bdev's Destruct), and one never released (a bdev whose registration failed)
// is dropped by the destructor. Move-only; on a pollux Thread, like the functions above.
class SharedWorkerPoolRef {
 public:
  static absl::StatusOr<SharedWorkerPoolRef> Acquire() {
    absl::StatusOr<WorkerPool*> pool = AcquireSharedWorkerPool();
    if (!pool.ok()) return pool.status();
    return SharedWorkerPoolRef(*pool);
  }
  SharedWorkerPoolRef(SharedWorkerPoolRef&& other) noexcept
      : pool_(std::exchange(other.pool_, nullptr)) {}
  SharedWorkerPoolRef& operator=(SharedWorkerPoolRef&&) = delete;
  ~SharedWorkerPoolRef() {
    if (pool_ != nullptr) ReleaseSharedWorkerPool([] {});
  }

  WorkerPool* get() const { return pool_; }
  // Drops the reference; done runs as ReleaseSharedWorkerPool says.
  void Release(absl::AnyInvocable<void()> done) {
    pool_ = nullptr;
    ReleaseSharedWorkerPool(std::move(done));
  }

 private:
  explicit SharedWorkerPoolRef(WorkerPool* pool) : pool_(pool) {}
  WorkerPool* pool_;
};

}  // namespace pollux
