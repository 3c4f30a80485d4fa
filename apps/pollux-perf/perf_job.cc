#include "perf_job.h"

#include <rte_cycles.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_format.h"
#include "perf_worker.h"
#include "pollux/env/log.h"
#include "pollux/reactor/thread.h"
#include "verify_pattern.h"

namespace pollux::perf {
namespace {

// Errors printed per job; the rest are only counted (a dying device fails every I/O).
constexpr uint64_t kMaxErrorsPrinted = 10;
// Written over the first word of each block before a verify read, so that a read that
// "succeeds" without delivering data cannot pass on what the buffer held before.
constexpr uint64_t kPoison = 0xDEADBEEFDEADBEEFULL;

uint64_t SumOps(const BdevIoStats& stats) {
  uint64_t ops = 0;
  for (const IoTypeStats& t : stats.by_type) ops += t.ops;
  return ops;
}

uint64_t SumBytes(const BdevIoStats& stats) {
  uint64_t bytes = 0;
  for (const IoTypeStats& t : stats.by_type) bytes += t.bytes;
  return bytes;
}

}  // namespace

Job::Job(Worker& worker, const PerfOptions& options, JobSpec spec, JobRecord& record)
    : worker_(worker), options_(options), spec_(std::move(spec)), record_(record) {
  start_block_ = spec_.start_block;
  slots_ = spec_.slots;
  io_blocks_ = spec_.io_blocks;
  if (spec_.min_io_blocks != 0 && spec_.min_io_blocks < spec_.io_blocks) {
    length_choices_ = spec_.io_blocks - spec_.min_io_blocks + 1;
  }
  rng_ = Xorshift64Star(spec_.seed);
  next_block_ = spec_.start_block;
  end_block_ = spec_.start_block + spec_.slots * spec_.io_blocks;
  // Precomputed so that the per-I/O choice is a compare: 100 % gives 2^32, above any value.
  read_threshold_ = (static_cast<uint64_t>(options_.read_percent) << 32) / 100;
  record_.result.bdev = spec_.bdev;
  record_.result.cpu = worker.cpu();
}

Job::~Job() {
  // A job that never finished (the reactors stopped under it) still holds a descriptor, a
  // channel reference and DPDK memory that cannot be released safely from here: leave them
  // (its pacer too: the poller belongs to a thread that may be gone).
  if (state_ != State::kDone) {
    (void)pacer_.release();
    (void)desc_owner_.release();
    (void)new IoChannelRef(std::move(channel_ref_));
  }
}

absl::Status Job::Open() {
  const bool writable = Writes(options_.workload);
  auto desc =
      BdevDesc::Open(spec_.bdev, writable, [this](BdevEvent event, Bdev&) { OnBdevEvent(event); });
  if (!desc.ok()) {
    return absl::Status(desc.status().code(),
                        absl::StrFormat("open bdev %s%s: %s", spec_.bdev,
                                        writable ? " for writing" : "", desc.status().message()));
  }
  desc_owner_ = std::move(*desc);
  desc_ = desc_owner_.get();
  const Bdev& bdev = desc_->bdev();
  if (bdev.block_size() != spec_.block_size || bdev.block_count() < end_block_) {
    return absl::FailedPreconditionError(
        absl::StrFormat("bdev %s changed between planning and start", spec_.bdev));
  }
  channel_ref_ = desc_->GetIoChannel();
  if (!channel_ref_) {
    return absl::UnavailableError(absl::StrFormat("bdev %s is being removed", spec_.bdev));
  }
  channel_ = channel_ref_.get();

  // One buffer per in-flight I/O (two for verify: written and read back), all in one block
  // allocated now, so the run allocates nothing. IoMemory, not DPDK's heap: without hugepages
  // that heap is shmem, and every O_DIRECT read into it costs the kernel a locked page dirtying
  // per 4 KiB (see pollux/env/io_memory.h); fio's buffers are plain process memory.
  // Each buffer holds a slot (MAX with -o MIN-MAX) and starts --buffer-offset bytes past an
  // aligned start (a multiple of `align`, hence of 4 KiB): its stride has room for the offset.
  // An offset buffer stays in the same IoMemory, so it is still the kind of memory the bdev
  // wants (in the shared arena below); only its alignment differs, which the layer bounces
  // for a bdev that requires one.
  const bool verify = options_.workload == Workload::kVerify;
  const uint64_t io_bytes = static_cast<uint64_t>(spec_.io_blocks) * spec_.block_size;
  const uint64_t align = spec_.buffer_alignment;
  const uint64_t buffer_offset = options_.buffer_offset;
  const uint64_t stride = (buffer_offset + io_bytes + align - 1) / align * align;
  const uint64_t total = stride * options_.queue_depth * (verify ? 2 : 1);
  // IoMemory is page-aligned; an alignment above that is had by starting further in. A bdev
  // whose back-end maps its buffers (vhost-user) gets them from the shared I/O arena, which
  // spares the layer a bounce per I/O.
  const uint64_t buffer_bytes = total + (align > 4096 ? align : 0);
  const std::string owner =
      absl::StrFormat("the I/O buffers of bdev %s on core %d", spec_.bdev, worker_.cpu());
  absl::StatusOr<IoMemory> buffers = bdev.requires_shared_memory()
                                         ? IoMemory::AllocateShared(buffer_bytes, owner)
                                         : IoMemory::Allocate(buffer_bytes, owner);
  if (!buffers.ok()) return buffers.status();
  buffers_ = std::move(*buffers);
  const uintptr_t start = reinterpret_cast<uintptr_t>(buffers_.data());
  auto* base = reinterpret_cast<char*>((start + align - 1) / align * align);
  tasks_.resize(options_.queue_depth);
  for (uint32_t i = 0; i < options_.queue_depth; ++i) {
    Task& t = tasks_[i];
    t.job = this;
    t.buf = base + stride * i + buffer_offset;
    t.read_buf = verify ? base + stride * (options_.queue_depth + i) + buffer_offset : nullptr;
    t.offset_blocks = 0;
    t.next_parked = nullptr;
    t.num_blocks = spec_.io_blocks;
    t.write = false;
  }
  state_ = State::kOpen;
  return absl::OkStatus();
}

// ---- The per-I/O path ----

template <bool kRandom, Job::Mix kMix, bool kPaced>
void Job::OnIoDone(void* arg, BdevIoStatus status, int error_number) noexcept {
  Task& task = *static_cast<Task*>(arg);
  Job& job = *task.job;
  if (status != BdevIoStatus::kSuccess) [[unlikely]]
    job.OnIoError(task, status, error_number);
  if (job.stopping_) [[unlikely]]
    return job.TaskDrained();
  if constexpr (kPaced) {
    // Ahead of the rate: the slot waits for the pacer's next refill.
    if (!job.bucket_.TryTake()) return job.Park(task);
  }
  job.SubmitNext<kRandom, kMix, kPaced>(task);
}

template <bool kRandom, Job::Mix kMix, bool kPaced>
void Job::SubmitNext(Task& task) noexcept {
  uint64_t offset;
  if constexpr (kRandom) {
    offset = start_block_ + ScaleRandom(NextRandom(), slots_) * io_blocks_;
  } else {
    offset = NextSequential();
  }
  bool read;
  if constexpr (kMix == Mix::kRead) {
    read = true;
  } else if constexpr (kMix == Mix::kWrite) {
    read = false;
  } else {
    read = (NextRandom() >> 32) < read_threshold_;
  }
  // A single -o (the benchmark's case) keeps the length Open set; a range (a soak test's)
  // draws one and covers the first blocks of the slot.
  uint32_t blocks = io_blocks_;
  if (length_choices_ != 0) [[unlikely]] {
    blocks = NextLength();
    task.num_blocks = blocks;
  }
  task.offset_blocks = offset;
  task.write = !read;
  if (read) {
    desc_->Read(*channel_, task.buf, offset, blocks, &OnIoDone<kRandom, kMix, kPaced>, &task);
  } else {
    desc_->Write(*channel_, task.buf, offset, blocks, &OnIoDone<kRandom, kMix, kPaced>, &task);
  }
}

template <bool kRandom, Job::Mix kMix>
void Job::StartTasks() noexcept {
  if (options_.rate_iops != 0) return StartPacing(&Job::SubmitNext<kRandom, kMix, true>);
  for (Task& task : tasks_) SubmitNext<kRandom, kMix, false>(task);
}

// ---- verify: write, read back, compare, next block ----

// The task remembers what it wrote (offset_blocks, num_blocks); the read-back covers exactly
// those blocks. Blocks of the slot past a short write are neither written nor read: the
// pattern of a block does not depend on the length of the write that carried it.
template <bool kPaced>
void Job::SubmitVerifyWrite(Task& task) noexcept {
  const uint64_t offset = NextSequential();
  if (length_choices_ != 0) [[unlikely]]
    task.num_blocks = NextLength();
  FillPattern(task.buf, offset, task.num_blocks, spec_.block_size, spec_.seed);
  task.offset_blocks = offset;
  task.write = true;
  desc_->Write(*channel_, task.buf, offset, task.num_blocks, &OnVerifyWriteDone<kPaced>, &task);
}

template <bool kPaced>
void Job::SubmitVerifyRead(Task& task) noexcept {
  char* read_buf = static_cast<char*>(task.read_buf);
  for (uint32_t b = 0; b < task.num_blocks; ++b) {
    std::memcpy(read_buf + static_cast<size_t>(b) * spec_.block_size, &kPoison, sizeof(kPoison));
  }
  task.write = false;
  desc_->Read(*channel_, task.read_buf, task.offset_blocks, task.num_blocks,
              &OnVerifyReadDone<kPaced>, &task);
}

template <bool kPaced>
void Job::OnVerifyWriteDone(void* arg, BdevIoStatus status, int error_number) noexcept {
  Task& task = *static_cast<Task*>(arg);
  Job& job = *task.job;
  if (status != BdevIoStatus::kSuccess) job.OnIoError(task, status, error_number);
  if (job.stopping_) return job.TaskDrained();
  // Paced: the read-back is an I/O like any other and waits for its token (the slot stays
  // marked as written, so its release reads back).
  if constexpr (kPaced) {
    if (!job.bucket_.TryTake()) return job.Park(task);
  }
  job.SubmitVerifyRead<kPaced>(task);
}

template <bool kPaced>
void Job::OnVerifyReadDone(void* arg, BdevIoStatus status, int error_number) noexcept {
  Task& task = *static_cast<Task*>(arg);
  Job& job = *task.job;
  if (status != BdevIoStatus::kSuccess) {
    job.OnIoError(task, status, error_number);
  } else {
    job.CheckReadBack(task);
  }
  if (job.stopping_) return job.TaskDrained();
  if constexpr (kPaced) {
    if (!job.bucket_.TryTake()) return job.Park(task);
  }
  job.SubmitVerifyWrite<kPaced>(task);
}

void Job::ReleaseVerifyTask(Task& task) noexcept {
  if (task.write) return SubmitVerifyRead<true>(task);
  SubmitVerifyWrite<true>(task);
}

// ---- Pacing (--rate) ----

void Job::StartPacing(ReleaseFn release) {
  release_ = release;
  const uint64_t rate = options_.rate_iops;
  const std::chrono::microseconds period = TokenBucket::RefillPeriod(rate);
  // One token to start with (the first I/O goes at once, as fio's first does), the rest as
  // earned; every slot parked: the release below submits what the tokens allow.
  bucket_.Start(rate, rte_get_tsc_hz(), TokenBucket::Capacity(rate, options_.queue_depth),
                /*initial=*/1, start_tsc_);
  for (Task& task : tasks_) Park(task);
  // A timed poller, not an active one: between refills the pacer holds nothing, so a reactor
  // in interrupt mode sleeps until its deadline (or a completion) instead of spinning.
  PollerOptions pacer_options;
  pacer_options.period = period;
  pacer_ = PollerHandle(Thread::Current()->RegisterPoller(
      "perf_pacer", [this] { return ReleaseDue(); }, std::move(pacer_options)));
  ReleaseDue();
}

PollResult Job::ReleaseDue() noexcept {
  bucket_.Refill(rte_rdtsc());
  bool released = false;
  // Submitted from here, each I/O is timed from now by the bdev layer: its latency counts from
  // its actual submission, not from when its token was earned.
  while (parked_ != nullptr && bucket_.TryTake()) {
    Task& task = *parked_;
    parked_ = task.next_parked;
    --parked_count_;
    (this->*release_)(task);
    released = true;
  }
  return released ? PollResult::kBusy : PollResult::kIdle;
}

// ---- Control path ----

void Job::Start(uint64_t start_tsc) {
  if (state_ != State::kOpen) return;
  state_ = State::kRunning;
  start_tsc_ = start_tsc;
  window_start_tsc_ = start_tsc;
  record_.result.ran = true;
  switch (options_.workload) {
    case Workload::kRead:
      return StartTasks<false, Mix::kRead>();
    case Workload::kWrite:
      return StartTasks<false, Mix::kWrite>();
    case Workload::kRandRead:
      return StartTasks<true, Mix::kRead>();
    case Workload::kRandWrite:
      return StartTasks<true, Mix::kWrite>();
    case Workload::kRw:
      return StartTasks<false, Mix::kMixed>();
    case Workload::kRandRw:
      return StartTasks<true, Mix::kMixed>();
    case Workload::kVerify:
      if (options_.rate_iops != 0) return StartPacing(&Job::ReleaseVerifyTask);
      for (Task& task : tasks_) SubmitVerifyWrite<false>(task);
      return;
  }
}

void Job::Stop(bool early) {
  switch (state_) {
    case State::kNew:
    case State::kOpen:
      record_.result.stopped_early = early;
      state_ = State::kStopping;
      ScheduleFinish();
      return;
    case State::kRunning:
      break;
    case State::kStopping:
    case State::kDone:
      return;
  }
  // The figures are those of the run up to now: I/O completing while draining is not counted
  // (its latency is real, but the runtime would have to include the drain).
  JobResult& r = record_.result;
  r.run_ticks = rte_rdtsc() - window_start_tsc_;
  // The job's own I/O: a job on a base bdev must not count what a job on a virtual bdev above
  // it forwarded down through the same thread's channel.
  r.stats = BdevDesc::SubmittedStats(*channel_);
  r.bdev_ops = SumOps(BdevDesc::ChannelStats(*channel_));
  r.stopped_early = early;
  PublishProgress();
  state_ = State::kStopping;
  stopping_ = true;
  pacer_.reset();
  // Every task not parked is in flight while the job runs (an unpaced completion resubmits at
  // once); a Stop from inside a completion callback is balanced by that callback's own
  // TaskDrained. Parked slots have nothing to drain.
  in_flight_ = options_.queue_depth - parked_count_;
  if (in_flight_ == 0) ScheduleFinish();
}

void Job::BeginWindow(uint64_t now_tsc) {
  if (state_ != State::kRunning) return;
  // The job's running totals now; the bdev layer's statistics cannot be reset, so the report
  // subtracts these from the totals at the stop (counters and histogram buckets).
  record_.result.window_start = BdevDesc::SubmittedStats(*channel_);
  record_.result.window_start_bdev_ops = SumOps(BdevDesc::ChannelStats(*channel_));
  record_.result.after_ramp = true;
  window_start_tsc_ = now_tsc;
}

void Job::PublishProgress() {
  if (state_ != State::kRunning) return;
  const BdevIoStats stats = BdevDesc::SubmittedStats(*channel_);
  record_.progress_ops.store(SumOps(stats), std::memory_order_relaxed);
  record_.progress_bytes.store(SumBytes(stats), std::memory_order_relaxed);
}

void Job::OnIoError(const Task& task, BdevIoStatus status, int error_number) {
  // I/O the layer aborts because the bdev is going away (a shutdown, a delete) is the
  // expected end of a job stopped early, not a device failure.
  if (status == BdevIoStatus::kAborted && record_.result.stopped_early) return;
  ++io_errors_;
  if (io_errors_ <= kMaxErrorsPrinted) {
    PX_LOG(kError, "perf",
           "I/O error on bdev %s (core %d): %s of %u blocks at block %u: %s%s%s%s%s", spec_.bdev,
           worker_.cpu(), task.write ? "write" : "read", task.num_blocks, task.offset_blocks,
           BdevIoStatusName(status), error_number != 0 ? " (" : "",
           error_number != 0 ? strerror(error_number) : "", error_number != 0 ? ")" : "",
           io_errors_ == kMaxErrorsPrinted ? " (further errors on this job only counted)" : "");
  }
  Stop(false);
}

void Job::CheckReadBack(const Task& task) {
  auto mismatch = CheckPattern(task.read_buf, task.offset_blocks, task.num_blocks, spec_.block_size,
                               spec_.seed);
  if (!mismatch) return;
  ++miscompares_;
  if (miscompares_ <= kMaxErrorsPrinted) {
    const uint64_t bdev_byte = mismatch->block * spec_.block_size + mismatch->byte_in_block;
    PX_LOG(kError, "perf",
           "verify failed on bdev %s (core %d): block %u, byte %u (byte %u of the bdev): "
           "expected 0x%02x, got 0x%02x (8-byte word at byte %u of the block: expected "
           "0x%016x, got 0x%016x); %u of the %u words of this %u-block read differ",
           spec_.bdev, worker_.cpu(), mismatch->block, mismatch->byte_in_block, bdev_byte,
           mismatch->expected_byte, mismatch->got_byte, mismatch->word_in_block, mismatch->expected,
           mismatch->got, mismatch->bad_words,
           static_cast<uint64_t>(task.num_blocks) * spec_.block_size / sizeof(uint64_t),
           task.num_blocks);
  }
  Stop(false);
}

void Job::TaskDrained() {
  if (--in_flight_ == 0) ScheduleFinish();
}

void Job::OnBdevEvent(BdevEvent event) {
  if (event == BdevEvent::kRemove) Stop(true);
}

void Job::ScheduleFinish() {
  // Finish closes the descriptor and puts the channel: not from inside the descriptor's own
  // event callback or an I/O completion callback. A one-shot poller runs it on this thread
  // right after (a poller, not a message, so that a full message ring cannot lose it).
  finish_poller_ = Thread::Current()->RegisterPoller("perf_job_finish", [this] {
    finish_poller_->Unregister();
    finish_poller_ = nullptr;
    Finish();
    return PollResult::kBusy;
  });
}

void Job::Finish() {
  JobResult& r = record_.result;
  r.io_errors = io_errors_;
  r.miscompares = miscompares_;
  // Report before closing: the app thread cannot finish the bdev subsystem (and exit) while
  // this descriptor is open, so it is alive to receive the report.
  worker_.NotifyJobDone();
  channel_ = nullptr;
  channel_ref_.reset();
  desc_ = nullptr;
  desc_owner_.reset();
  buffers_ = IoMemory();
  tasks_.clear();
  state_ = State::kDone;
  worker_.OnJobFinished();
}

}  // namespace pollux::perf
