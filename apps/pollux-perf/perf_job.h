// One job: one bdev driven from one core, DEPTH I/Os kept in flight, each completion
// submitting the next I/O from inside its callback. Under --rate (a paced job) a completion
// resubmits only while its token bucket holds a token; otherwise its slot is parked, and a
// timed poller (the pacer) refills the bucket and releases parked slots (token_bucket.h).
//
// Threads: everything here runs on the job's worker Thread (perf_worker.h), except the
// atomics of JobRecord, which the progress printer reads from another thread.
//
// Life cycle: kNew -> Open() -> kOpen -> Start() -> kRunning -> Stop() -> kStopping (in-flight
// I/O drains) -> Finish -> kDone. Stop() also ends a job that never started (kNew, kOpen), so
// every job reaches kDone and reports exactly once.
//
// The per-I/O path is a handful of instructions: no clock read (the bdev layer's channel
// statistics time every I/O already), no division (random offsets by multiply-high, sequential
// ones by increment), no allocation (one buffer per in-flight I/O, allocated at Open), and
// no branch on the workload (a callback instantiated per workload and per pacing). A paced
// job adds a token take per I/O; its clock read is the pacer's, once per refill period.
// With -o MIN-MAX each I/O draws its length (a random number and a multiply-high); a single
// -o costs one predicted branch on a field beside io_blocks_, and no draw.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "command_line.h"
#include "pollux/bdev/bdev_desc.h"
#include "pollux/env/io_memory.h"
#include "pollux/reactor/poller.h"
#include "random_offsets.h"
#include "report.h"
#include "token_bucket.h"

namespace pollux::perf {

class Worker;

// What the coordinator decided for one job.
struct JobSpec {
  std::string bdev;
  uint32_t block_size = 0;     // as seen when planning; checked again at Open
  uint64_t start_block = 0;    // the job's share of the device: [start_block,
  uint64_t slots = 0;          //   start_block + slots * io_blocks)
  uint32_t io_blocks = 0;      // a slot; with -o MIN-MAX, MAX in blocks
  uint32_t min_io_blocks = 0;  // -o MIN-MAX: MIN in blocks; otherwise io_blocks
  uint32_t buffer_alignment = 4096;
  uint64_t seed = 1;  // random offsets and the verify pattern
};

// A job's result plus what the progress printer reads while it runs.
struct JobRecord {
  JobResult result;                       // written by the job, read once the run is over
  std::atomic<uint64_t> progress_ops{0};  // published every 100 ms by the worker
  std::atomic<uint64_t> progress_bytes{0};
};

// Cache-line aligned: jobs of different cores never share a line.
class alignas(64) Job {
 public:
  Job(Worker& worker, const PerfOptions& options, JobSpec spec, JobRecord& record);
  ~Job();
  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;

  // Opens the bdev, gets this thread's channel and allocates the buffers.
  absl::Status Open();
  // Submits DEPTH I/Os (a paced job: what its bucket allows, one at first, and starts its
  // pacer). `start_tsc` is the run's common start.
  void Start(uint64_t start_tsc);
  // --ramp-time: the measured window starts now (`now_tsc`): takes the job's statistics,
  // which the figures at the stop are taken less.
  void BeginWindow(uint64_t now_tsc);
  // Stops submitting and takes the figures; the job finishes once its I/O has drained.
  // `early`: stopped by the bdev's removal, not by the timer.
  void Stop(bool early);
  // Stores the job's running totals for the progress line.
  void PublishProgress();

  bool running() const { return state_ == State::kRunning; }
  bool done() const { return state_ == State::kDone; }
  const JobSpec& spec() const { return spec_; }

 private:
  enum class State : uint8_t { kNew, kOpen, kRunning, kStopping, kDone };
  enum class Mix : uint8_t { kRead, kWrite, kMixed };

  // One in-flight I/O and its buffers (each sized for io_blocks_, --buffer-offset bytes past
  // an aligned start).
  struct Task {
    Job* job;
    void* buf;       // data written or read
    void* read_buf;  // verify: where the read-back lands
    uint64_t offset_blocks;
    Task* next_parked;  // paced job: the next parked slot
    // The length of the last I/O submitted: io_blocks_ for a single -o (set at Open, never
    // written again), drawn per I/O with -o MIN-MAX; verify reads back exactly these blocks.
    uint32_t num_blocks;
    bool write;  // the last I/O submitted (verify: a parked slot reads back next)
  };
  // What a released slot submits: the workload's next I/O.
  using ReleaseFn = void (Job::*)(Task&) noexcept;

  template <bool kRandom, Mix kMix, bool kPaced>
  static void OnIoDone(void* arg, BdevIoStatus status, int error_number) noexcept;
  template <bool kRandom, Mix kMix, bool kPaced>
  void SubmitNext(Task& task) noexcept;
  template <bool kRandom, Mix kMix>
  void StartTasks() noexcept;

  template <bool kPaced>
  static void OnVerifyWriteDone(void* arg, BdevIoStatus status, int error_number) noexcept;
  template <bool kPaced>
  static void OnVerifyReadDone(void* arg, BdevIoStatus status, int error_number) noexcept;
  template <bool kPaced>
  void SubmitVerifyWrite(Task& task) noexcept;
  template <bool kPaced>
  void SubmitVerifyRead(Task& task) noexcept;
  void ReleaseVerifyTask(Task& task) noexcept;

  // ---- Pacing (--rate) ----
  void StartPacing(ReleaseFn release);
  // The pacer: refills the bucket and submits parked slots while tokens last.
  PollResult ReleaseDue() noexcept;
  void Park(Task& task) noexcept {
    task.next_parked = parked_;
    parked_ = &task;
    ++parked_count_;
  }

  uint64_t NextRandom() noexcept { return rng_.Next(); }
  // -o MIN-MAX only: a length from MIN to MAX blocks, each as likely, from the job's seeded
  // numbers (MAX less a multiply-high of the number of choices: no division).
  uint32_t NextLength() noexcept {
    return io_blocks_ - static_cast<uint32_t>(ScaleRandom(NextRandom(), length_choices_));
  }
  uint64_t NextSequential() noexcept {
    uint64_t offset = next_block_;
    next_block_ += io_blocks_;
    if (next_block_ >= end_block_) next_block_ = start_block_;
    return offset;
  }

  void OnIoError(const Task& task, BdevIoStatus status, int error_number);
  // Compares a verify read with the pattern; a mismatch is reported and stops the job.
  void CheckReadBack(const Task& task);
  void TaskDrained();
  void ScheduleFinish();
  void Finish();
  void OnBdevEvent(BdevEvent event);

  // ---- Hot fields (the first cache line; spec_ holds the same, colder) ----
  BdevDesc* desc_ = nullptr;
  IoChannel* channel_ = nullptr;
  uint64_t start_block_;
  uint64_t slots_;
  uint32_t io_blocks_;  // a slot: every I/O's length, or with -o MIN-MAX the longest
  // -o MIN-MAX: how many lengths an I/O picks from (MAX - MIN + 1 blocks); 0: a single size
  // (also MIN = MAX). In io_blocks_'s padding: the hot line does not grow.
  uint32_t length_choices_ = 0;
  Xorshift64Star rng_{1};
  uint64_t next_block_;
  uint64_t end_block_;
  uint64_t read_threshold_;  // rw mixes: a read when the top 32 random bits are below this
  bool stopping_ = false;
  // Counted only while draining: a running job has DEPTH in flight, less its parked slots.
  uint32_t in_flight_ = 0;
  // Pacing (--rate only; an unpaced job never touches these).
  TokenBucket bucket_;
  Task* parked_ = nullptr;  // slots waiting for a token, a stack through Task::next_parked
  uint32_t parked_count_ = 0;

  // ---- Cold fields ----
  State state_ = State::kNew;
  Worker& worker_;
  const PerfOptions& options_;
  JobSpec spec_;
  JobRecord& record_;
  std::unique_ptr<BdevDesc> desc_owner_;
  IoChannelRef channel_ref_;
  IoMemory buffers_;  // one block cut into the tasks' buffers
  std::vector<Task> tasks_;
  Poller* finish_poller_ = nullptr;
  PollerHandle pacer_;           // paced job, while it runs
  ReleaseFn release_ = nullptr;  // paced job: what the pacer submits for a released slot
  uint64_t start_tsc_ = 0;
  uint64_t window_start_tsc_ = 0;  // start_tsc_, or the ramp's end with --ramp-time
  uint64_t io_errors_ = 0;
  uint64_t miscompares_ = 0;
};

}  // namespace pollux::perf
