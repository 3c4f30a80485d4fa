// The worker pool (worker_pool.h): request ring, sleeping workers, per-channel completion rings,
// and the process-wide shared pool.
#include "pollux/bdev_file/worker_pool.h"

#include <linux/futex.h>
#include <pthread.h>
#include <rte_common.h>
#include <rte_pause.h>
#include <rte_ring.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/str_format.h"
#include "pollux/env/log.h"
#include "pollux/reactor/thread.h"

namespace pollux {

namespace {

static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t) &&
                  std::atomic<uint32_t>::is_always_lock_free,
              "the futex word must be a plain 32-bit word");

// Checks of the request ring a worker makes (with a pause between) before it sleeps: a request
// that follows within about a microsecond is taken without a futex round trip. Kept short:
// the workers share the cores with busy-polling reactors.
constexpr int kIdleSpins = 64;
// Requests moved per ring operation.
constexpr unsigned kBurst = 64;

void FutexWait(std::atomic<uint32_t>* word, uint32_t expected) noexcept {
  // Returns at once (EAGAIN) when *word != expected: the wake-up came before the wait.
  // EINTR and spurious returns are fine: the caller re-checks the ring.
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, nullptr,
          nullptr, 0);
}

void FutexWake(std::atomic<uint32_t>* word, int count) noexcept {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE_PRIVATE, count, nullptr, nullptr,
          0);
}

// After a producer's enqueue, before it reads whether the other side sleeps: the store-load
// barrier of the Dekker pair (see WorkerPool::Enqueue). The request ring's
// producers are RTS, whose enqueue ends with a CAS on the tail: on x86 a locked
// instruction, which is a full barrier already, so only the compiler must be kept from
// hoisting the load above it (the reasoning of reactor/mailbox.h). Elsewhere a CAS is not a
// full barrier: fence.
inline void FenceAfterEnqueue() noexcept {
#if defined(RTE_ARCH_X86)
  std::atomic_signal_fence(std::memory_order_seq_cst);
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

// An rte_ring of pointers in plain cache-aligned memory (no memzone: no name, no EAL
// dependency, created at run time). `count` is a power of two; count - 1 entries fit.
rte_ring* MakeRing(void** memory, const char* name, uint32_t count, unsigned flags) {
  ssize_t bytes = rte_ring_get_memsize(count);
  if (bytes < 0) {
    PX_LOG(kError, "bdev", "rte_ring_get_memsize(%u): %s", count, std::strerror(-bytes));
    std::abort();
  }
  size_t size = RTE_ALIGN_CEIL(static_cast<size_t>(bytes), RTE_CACHE_LINE_SIZE);
  *memory = std::aligned_alloc(RTE_CACHE_LINE_SIZE, size);
  if (*memory == nullptr) {
    PX_LOG(kError, "bdev", "out of memory for a %u-entry ring", count);
    std::abort();
  }
  auto* ring = static_cast<rte_ring*>(*memory);
  if (int rc = rte_ring_init(ring, name, count, flags); rc != 0) {
    PX_LOG(kError, "bdev", "rte_ring_init: %s", std::strerror(-rc));
    std::abort();
  }
  return ring;
}

absl::Status ValidateOptions(const WorkerPoolOptions& options) {
  if (options.num_workers < 1 || options.num_workers > kMaxWorkerPoolWorkers) {
    return absl::InvalidArgumentError(absl::StrFormat("num_workers %u is not between 1 and %u",
                                                      options.num_workers, kMaxWorkerPoolWorkers));
  }
  if (options.queue_size < 2 || options.queue_size > (1u << 24)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("queue_size %u is not between 2 and %u", options.queue_size, 1u << 24));
  }
  if (options.channel_queue_size < 1 || options.channel_queue_size > (1u << 20)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "channel_queue_size %u is not between 1 and %u", options.channel_queue_size, 1u << 20));
  }
  return absl::OkStatus();
}

}  // namespace

// ---- WorkerPool ----

absl::StatusOr<std::unique_ptr<WorkerPool>> WorkerPool::Create(const WorkerPoolOptions& options) {
  if (absl::Status s = ValidateOptions(options); !s.ok()) return s;
  std::unique_ptr<WorkerPool> pool(new WorkerPool(options));
  std::lock_guard lock(pool->control_mutex_);
  pool->target_workers_.store(options.num_workers, std::memory_order_release);
  for (uint32_t i = 0; i < options.num_workers; ++i) pool->StartWorker(i);
  return pool;
}

WorkerPool::WorkerPool(const WorkerPoolOptions& options)
    : IoDevice("worker pool " + options.name), options_(options) {
  // Producers are reactors (and any thread using a hand-made channel), consumers the workers:
  // RTS on both sides, so that neither a preempted reactor nor a preempted worker in the
  // middle of its ring operation makes the others spin.
  ring_ = MakeRing(&ring_memory_, "pollux_worker_pool", rte_align32pow2(options.queue_size),
                   RING_F_MP_RTS_ENQ | RING_F_MC_RTS_DEQ);
}

WorkerPool::~WorkerPool() {
  Stop();
  std::free(ring_memory_);
}

void WorkerPool::StartWorker(uint32_t index) {
  workers_.emplace_back([this, index] { WorkerMain(index); });
  // Thread names are at most 15 characters: the prefix is cut to 10, "-" and 3 digits follow.
  std::string name = absl::StrFormat("%s-%u", options_.name.substr(0, 10), index);
  pthread_setname_np(workers_.back().native_handle(), name.c_str());
}

bool WorkerPool::RequestsQueued() const noexcept { return rte_ring_empty(ring_) == 0; }

unsigned WorkerPool::Enqueue(WorkerRequest* const* requests, unsigned count) noexcept {
  unsigned sent =
      rte_ring_enqueue_burst(ring_, reinterpret_cast<void* const*>(requests), count, nullptr);
  if (sent == 0) return 0;
  // Dekker with a worker going to sleep (WorkerMain): it increments sleepers_, fences, then
  // looks at the ring; we published our requests (the tail CAS), fence, then read sleepers_.
  // Either it sees our requests and stays awake, or we see it and wake it. With RTS, a
  // producer's requests become visible when the last producer in flight moves the tail, and
  // that producer then comes through here too: whatever a sleeper could miss, the last
  // producer's check covers.
  FenceAfterEnqueue();
  uint32_t sleeping = sleepers_.load(std::memory_order_relaxed);
  if (sleeping != 0) WakeWorkers(std::min(sent, sleeping));
  return sent;
}

void WorkerPool::WakeWorkers(unsigned count) noexcept {
  // The bump makes a worker that has read the old value but not entered FUTEX_WAIT yet return
  // from it at once; FUTEX_WAKE takes those already waiting.
  wake_sequence_.fetch_add(1, std::memory_order_release);
  FutexWake(&wake_sequence_, count > INT_MAX ? INT_MAX : static_cast<int>(count));
  wakes_.fetch_add(1, std::memory_order_relaxed);
}

void WorkerPool::WorkerMain(uint32_t index) noexcept {
  for (;;) {
    // A Resize below this index retires the worker, after the request it was running.
    if (index >= target_workers_.load(std::memory_order_acquire)) return;
    void* object = nullptr;
    if (rte_ring_dequeue(ring_, &object) == 0) {
      auto& request = *static_cast<WorkerRequest*>(object);
      // Read before the completion is pushed: the owner may reuse the request right after.
      WorkerPoolChannel* channel = request.channel;
      request.result = request.work(request);
      requests_run_.fetch_add(1, std::memory_order_relaxed);
      channel->PushCompletion(request);
      continue;
    }
    // Stop() runs what was queued before it, then the workers leave.
    if (stopping_.load(std::memory_order_acquire)) return;

    bool found = false;
    for (int i = 0; i < kIdleSpins && !found; ++i) {
      rte_pause();
      found = RequestsQueued();
    }
    if (found) continue;

    // Going to sleep. Read the futex word first: a wake-up from here on changes it, so that
    // FUTEX_WAIT below returns at once instead of missing it.
    uint32_t sequence = wake_sequence_.load(std::memory_order_acquire);
    // Publish that we sleep, then look at the ring once more (the other half of Enqueue's
    // Dekker pair). The fence orders our increment before our loads of the ring's tail on every
    // architecture (on x86 the locked increment is a full barrier already).
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!RequestsQueued() && !stopping_.load(std::memory_order_acquire) &&
        index < target_workers_.load(std::memory_order_acquire)) {
      sleeps_.fetch_add(1, std::memory_order_relaxed);
      FutexWait(&wake_sequence_, sequence);
    }
    sleepers_.fetch_sub(1, std::memory_order_relaxed);
  }
}

absl::Status WorkerPool::Resize(uint32_t num_workers) {
  if (num_workers < 1 || num_workers > kMaxWorkerPoolWorkers) {
    return absl::InvalidArgumentError(absl::StrFormat("num_workers %u is not between 1 and %u",
                                                      num_workers, kMaxWorkerPoolWorkers));
  }
  std::lock_guard lock(control_mutex_);
  if (stopping_.load(std::memory_order_acquire)) {
    return absl::FailedPreconditionError("the worker pool is stopped");
  }
  uint32_t running = static_cast<uint32_t>(workers_.size());
  target_workers_.store(num_workers, std::memory_order_release);
  if (num_workers > running) {
    for (uint32_t i = running; i < num_workers; ++i) StartWorker(i);
    return absl::OkStatus();
  }
  if (num_workers < running) {
    // Surplus workers asleep must wake to see that they are retired.
    WakeWorkers(INT_MAX);
    for (uint32_t i = num_workers; i < running; ++i) workers_[i].join();
    workers_.resize(num_workers);
    // A wake-up meant for any worker may have gone to a retiring one, which left without
    // taking a request: wake the remaining workers to look at the ring again.
    WakeWorkers(INT_MAX);
  }
  return absl::OkStatus();
}

void WorkerPool::Stop() {
  std::lock_guard lock(control_mutex_);
  stopping_.store(true, std::memory_order_seq_cst);
  if (workers_.empty()) return;
  WakeWorkers(INT_MAX);
  for (std::thread& worker : workers_) worker.join();
  workers_.clear();
  // Requests that a flush racing Stop put in the ring after the workers left (Stop's contract
  // forbids it; this keeps their owners from waiting forever): cancelled.
  void* object = nullptr;
  while (rte_ring_dequeue(ring_, &object) == 0) {
    auto& request = *static_cast<WorkerRequest*>(object);
    request.result = ECANCELED;
    request.channel->PushCompletion(request);
  }
}

WorkerPoolStats WorkerPool::Stats() const {
  return WorkerPoolStats{requests_run_.load(std::memory_order_relaxed),
                         wakes_.load(std::memory_order_relaxed),
                         sleeps_.load(std::memory_order_relaxed)};
}

std::unique_ptr<ChannelContext> WorkerPool::CreateChannelContext() {
  auto channel = std::make_unique<WorkerPoolChannel>(*this);
  channel->StartPoller();
  return channel;
}

// ---- WorkerPoolChannel ----

WorkerPoolChannel::WorkerPoolChannel(WorkerPool& pool, int wake_fd)
    : pool_(pool),
      capacity_(rte_align32pow2(pool.options().channel_queue_size)),
      completions_(capacity_, "pollux_worker_cq", wake_fd) {}

WorkerPoolChannel::~WorkerPoolChannel() {
  if (in_flight_ != 0) {
    PX_LOG(kError, "bdev_file",
           "worker pool channel destroyed with %u requests in flight (%u at the workers); "
           "their completions are dropped",
           in_flight_, at_workers_);
  }
  // Requests at the workers still point at this channel: wait until every one is back.
  while (at_workers_ != 0) {
    void* objects[kBurst];
    unsigned n = completions_.Drain(objects, kBurst);
    at_workers_ -= n;
    if (n == 0) std::this_thread::yield();
  }
  // The ring then waits for a worker still between its push and its last look at the ring.
  poller_.reset();
}

void WorkerPoolChannel::StartPoller() {
  PollerOptions options;
  options.wake_fd = completions_.wake_fd();
  options.arm = [this] { return Arm(); };
  options.disarm = [this] { Disarm(); };
  poller_ = PollerHandle(Thread::Current()->RegisterPoller(
      absl::StrFormat("worker pool %s", pool_.options().name), [this] { return Poll(); },
      std::move(options)));
  // Submit resumes it; Poll pauses it again once nothing is in flight.
  poller_->Pause();
}

unsigned WorkerPoolChannel::Flush() noexcept {
  if (pending_head_ == nullptr) return 0;
  if (pool_.stopped()) [[unlikely]] {
    return CancelPending();
  }
  unsigned flushed = 0;
  WorkerRequest* batch[kBurst];
  while (pending_head_ != nullptr && at_workers_ < capacity_) {
    unsigned room = std::min<uint32_t>(kBurst, capacity_ - at_workers_);
    unsigned n = 0;
    WorkerRequest* request = pending_head_;
    for (; request != nullptr && n < room; request = request->next) batch[n++] = request;
    // `request` (the first one left out) was read before the workers could see the batch.
    unsigned sent = pool_.Enqueue(batch, n);
    pending_head_ = sent == n ? request : batch[sent];
    at_workers_ += sent;
    pending_ -= sent;
    completions_.HandedOut(sent);
    flushed += sent;
    if (sent < n) break;  // the request ring is full: the rest waits for the next flush
  }
  if (pending_head_ == nullptr) pending_tail_ = &pending_head_;
  return flushed;
}

unsigned WorkerPoolChannel::CancelPending() noexcept {
  WorkerRequest* request = pending_head_;
  pending_head_ = nullptr;
  pending_tail_ = &pending_head_;
  unsigned count = 0;
  while (request != nullptr) {
    WorkerRequest* next = request->next;
    --pending_;
    --in_flight_;
    ++count;
    request->done(*request, ECANCELED);
    request = next;
  }
  return count;
}

unsigned WorkerPoolChannel::Reap() noexcept {
  unsigned reaped = 0;
  // Bounded by what was at the workers on entry: done functions only queue new requests.
  while (at_workers_ != 0) {
    void* objects[kBurst];
    unsigned n = completions_.Drain(objects, kBurst);
    if (n == 0) break;
    at_workers_ -= n;
    in_flight_ -= n;
    reaped += n;
    for (unsigned i = 0; i < n; ++i) {
      auto& request = *static_cast<WorkerRequest*>(objects[i]);
      request.done(request, request.result);
    }
    if (n < kBurst) break;
  }
  return reaped;
}

void WorkerPoolChannel::PushCompletion(WorkerRequest& request) noexcept {
  // A sleeping owner is woken only when few of its requests are left at the workers: while
  // more are, the workers stay busy with them without it, and one wake-up then brings in a
  // batch of completions instead of each its own (each wake-up costs the worker an eventfd
  // write and the owner a pass through epoll; at depth 32 on 4 workers this took the engine
  // from 0.88 to 1.3 of fio's psync x4, docs/performance.md). The channel's last outstanding
  // completion always wakes it.
  completions_.Push(&request, pool_.num_workers());
}

// ---- The shared pool ----

namespace {

struct SharedPool {
  std::mutex mutex;
  WorkerPoolOptions options;
  std::unique_ptr<WorkerPool> pool;
  uint32_t users = 0;
};

SharedPool& Shared() {
  static SharedPool* shared = new SharedPool;  // never destroyed: used until exit
  return *shared;
}

}  // namespace

absl::Status SetSharedWorkerPoolOptions(const WorkerPoolOptions& options) {
  if (absl::Status s = ValidateOptions(options); !s.ok()) return s;
  SharedPool& shared = Shared();
  std::lock_guard lock(shared.mutex);
  if (shared.pool != nullptr) {
    const WorkerPoolOptions& running = shared.pool->options();
    if (options.queue_size != running.queue_size ||
        options.channel_queue_size != running.channel_queue_size) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "the worker pool is in use by %u bdevs: only num_workers can change now", shared.users));
    }
    if (absl::Status s = shared.pool->Resize(options.num_workers); !s.ok()) return s;
  }
  shared.options = options;
  return absl::OkStatus();
}

WorkerPoolOptions GetSharedWorkerPoolOptions() {
  SharedPool& shared = Shared();
  std::lock_guard lock(shared.mutex);
  return shared.options;
}

absl::StatusOr<WorkerPool*> AcquireSharedWorkerPool() {
  SharedPool& shared = Shared();
  std::lock_guard lock(shared.mutex);
  if (shared.pool == nullptr) {
    absl::StatusOr<std::unique_ptr<WorkerPool>> pool = WorkerPool::Create(shared.options);
    if (!pool.ok()) return pool.status();
    shared.pool = std::move(*pool);
    shared.pool->RegisterIoDevice();
    PX_LOG(kInfo, "bdev_file", "worker pool started with %u workers", shared.options.num_workers);
  }
  ++shared.users;
  return shared.pool.get();
}

void ReleaseSharedWorkerPool(absl::AnyInvocable<void()> done) {
  SharedPool& shared = Shared();
  std::unique_lock lock(shared.mutex);
  if (shared.users == 0 || --shared.users != 0) {
    lock.unlock();
    done();
    return;
  }
  // The last user: the pool leaves the shared slot now (a new user starts a new one), and is
  // freed once the per-thread channels made through GetIoChannel are gone.
  WorkerPool* pool = shared.pool.release();
  lock.unlock();
  pool->UnregisterIoDevice([pool, done = std::move(done)]() mutable {
    pool->Stop();
    WorkerPoolStats stats = pool->Stats();
    delete pool;
    PX_LOG(kInfo, "bdev_file",
           "worker pool stopped: %lu requests run, %lu wake-ups by submitters, %lu sleeps",
           stats.requests, stats.wakes, stats.sleeps);
    done();
  });
}

uint32_t SharedWorkerPoolUsers() {
  SharedPool& shared = Shared();
  std::lock_guard lock(shared.mutex);
  return shared.users;
}

std::optional<WorkerPoolStats> SharedWorkerPoolStats() {
  SharedPool& shared = Shared();
  std::lock_guard lock(shared.mutex);
  if (shared.pool == nullptr) return std::nullopt;
  return shared.pool->Stats();
}

}  // namespace pollux
