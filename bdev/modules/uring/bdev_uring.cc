// The uring bdev: a FileBdev whose channels each own an io_uring.
//
// Per channel (one per thread doing I/O on the bdev):
//   - a ring set up with SINGLE_ISSUER|DEFER_TASKRUN|TASKRUN_FLAG where the kernel takes them
//     (only this thread ever touches it, and completions are then posted only when this thread
//     asks: no inter-processor interrupt, no task work interrupting the poll loop), falling back
//     flag by flag on older kernels;
//   - the file registered (IOSQE_FIXED_FILE: no fd lookup per request);
//   - I/O memory registered (READ_FIXED / WRITE_FIXED: no page pinning per request) for
//     buffers in published I/O regions, every IoMemory (registered_buffers.h);
//   - an eventfd registered for completions, silenced (IORING_CQ_EVENTFD_DISABLED) while the
//     reactor polls and enabled only while it sleeps.
// Submit (FileChannel::Submit -> Enqueue) prepares an SQE and makes no syscall; the poller
// hands the iteration's SQEs to the kernel with one io_uring_submit, then reads the CQ ring.
// Except while the kernel holds fewer than kStarvingDepth of the channel's requests: then
// Enqueue submits at once (file_bdev.h says why).
// With DEFER_TASKRUN (or COOP_TASKRUN) the kernel sets IORING_SQ_TASKRUN in the SQ ring's flags
// when completions wait to be posted: only then does the poller enter the kernel to post them
// (io_uring_get_events, or folded into the submit), so an idle poll makes no syscall.
#include "pollux/bdev_uring/bdev_uring.h"

#include <liburing.h>
#include <linux/falloc.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "pollux/bdev_file/file_engine.h"
#include "pollux/bdev_file/file_io.h"
#include "pollux/env/log.h"
#include "pollux/reactor/thread.h"
#include "registered_buffers.h"

namespace pollux {
namespace {

// SQ entries per ring (the CQ gets twice as many). A channel keeps at most CQ-size requests in
// flight, so the CQ never overflows; beyond that Enqueue says "full" and the layer retries.
constexpr unsigned kRingEntries = 256;
// CQEs copied out of the ring per pass (the ring slots are released before the callbacks run).
constexpr unsigned kReapBatch = 64;

// The setup flags tried, best first, each dropping one more feature: DEFER_TASKRUN (Linux 6.1),
// SINGLE_ISSUER (6.0), then COOP_TASKRUN/TASKRUN_FLAG (5.19).
struct SetupFlags {
  unsigned flags;
  const char* names;
};
constexpr SetupFlags kSetupFlags[] = {
    {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
     "SINGLE_ISSUER|DEFER_TASKRUN|TASKRUN_FLAG"},
    {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
     "SINGLE_ISSUER|COOP_TASKRUN|TASKRUN_FLAG"},
    {IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG, "COOP_TASKRUN|TASKRUN_FLAG"},
    {0, ""},
};
constexpr int kSetupFlagCount = sizeof(kSetupFlags) / sizeof(kSetupFlags[0]);

// The first entry of kSetupFlags this kernel took (settled by the probe or the first ring).
// Read and written on reactors and the app thread: relaxed is enough, any index works.
std::atomic<int> first_working_flags{0};

// Sets up `ring` with the best flags this kernel takes, from `first_working_flags` on.
// Returns 0 or the errno of the last attempt.
// Sets a ring up with the best flags the kernel takes. `movable`: the ring's thread may move to
// another reactor, so another OS thread will drive it: no SINGLE_ISSUER (the kernel refuses a
// second issuer), and no COOP_TASKRUN either (completions would wait for the OS thread that
// submitted to enter the kernel, up to a millisecond for a polling reactor). Sets
// `single_issuer` to what the ring got.
int SetUpRing(io_uring& ring, unsigned entries, bool movable, bool& single_issuer) {
  int err = EINVAL;
  int first = movable ? kSetupFlagCount - 1 : first_working_flags.load(std::memory_order_relaxed);
  for (int i = first; i < kSetupFlagCount; ++i) {
    io_uring_params params{};
    params.flags = kSetupFlags[i].flags;
    int ret = io_uring_queue_init_params(entries, &ring, &params);
    if (ret == 0) {
      if (!movable) first_working_flags.store(i, std::memory_order_relaxed);
      single_issuer = (kSetupFlags[i].flags & IORING_SETUP_SINGLE_ISSUER) != 0;
      return 0;
    }
    err = -ret;
    if (err != EINVAL) return err;  // not a flag problem: ENOMEM, EPERM (disabled), ENOSYS
  }
  return err;
}

// Per-I/O scratch (UringModule::io_context_size): the link of the synchronous queue.
struct UringIo {
  BdevIo* next = nullptr;
};

// How many reads and writes of a bdev went into registered buffers (bdev_get_bdevs shows it):
// each channel counts its own, written by its thread only, and the bdev sums them when asked.
class RegisteredIoTally {
 public:
  void Attach(const std::atomic<uint64_t>* counter) {
    std::lock_guard<std::mutex> lock(mutex_);
    live_.push_back(counter);
  }
  // Keeps the closing channel's count.
  void Detach(const std::atomic<uint64_t>* counter) {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ += counter->load(std::memory_order_relaxed);
    live_.erase(std::find(live_.begin(), live_.end(), counter));
  }
  uint64_t Total() const {
    std::lock_guard<std::mutex> lock(mutex_);
    uint64_t total = closed_;
    for (const std::atomic<uint64_t>* counter : live_) {
      total += counter->load(std::memory_order_relaxed);
    }
    return total;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<const std::atomic<uint64_t>*> live_;
  uint64_t closed_ = 0;
};

class UringChannel final : public FileChannel {
 public:
  UringChannel(FileBdev& bdev, RegisteredIoTally& tally)
      : FileChannel(bdev), block_size_(bdev.block_size()), tally_(&tally) {
    tally_->Attach(&fixed_ios_);
    // A thread that may run on more than one core gets a ring any OS thread may drive; a
    // pinned one the fastest ring, which then binds it to its reactor.
    Thread& thread = *Thread::Current();
    int err = SetUpRing(ring_, kRingEntries, thread.cpumask().size() > 1, single_issuer_);
    if (err != 0) {
      // No ring on this thread (locked memory limit, io_uring disabled since the bdev was
      // made): every request runs synchronously from the poller. Slow, but correct.
      PX_LOG(kError, "uring",
             "bdev %s: io_uring_queue_init: %s; this thread's I/O runs "
             "synchronously",
             bdev.name(), std::strerror(err));
      StartPoller(-1);
      return;
    }
    ring_ready_ = true;
    cq_entries_ = ring_.cq.ring_entries;
    int fd = target().fd();
    fixed_file_ = io_uring_register_files(&ring_, &fd, 1) == 0;
    (void)buffers_.Init(ring_);
    if (single_issuer_) {
      // The ring's fd registered with itself, in this OS thread's table: io_uring_enter skips
      // an fd lookup (Linux 5.18+).
      (void)io_uring_register_ring_fd(&ring_);
      thread.AddReactorBoundResource();
      bound_thread_ = &thread;
    }
    event_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (event_fd_ >= 0 && io_uring_register_eventfd(&ring_, event_fd_) != 0) {
      close(event_fd_);
      event_fd_ = -1;
    }
    if (event_fd_ >= 0) {
      // Silent while the reactor polls: no eventfd write per completion (Linux 5.8+; older
      // kernels signal always, which only costs the write).
      eventfd_toggle_ = io_uring_cq_eventfd_toggle(&ring_, false) == 0;
    } else {
      PX_LOG(kWarning, "uring",
             "bdev %s: no completion eventfd: this thread's reactor cannot "
             "sleep while the bdev is open",
             bdev.name());
    }
    StartPoller(event_fd_);
  }

  ~UringChannel() override {
    tally_->Detach(&fixed_ios_);
    // The layer releases a channel once its I/O has completed: nothing is in flight.
    StopPoller();
    if (ring_ready_) io_uring_queue_exit(&ring_);
    if (bound_thread_ != nullptr) bound_thread_->RemoveReactorBoundResource();
    // The poller is unregistered, so the reactor no longer watches the fd: close it now.
    if (event_fd_ >= 0) close(event_fd_);
  }

 protected:
  bool Enqueue(BdevIo& io) noexcept override {
    if (!ring_ready_ || (io.type() == IoType::kUnmap && target().is_block_device())) {
      // BLKDISCARD has no io_uring opcode in the kernels this builds against: it runs
      // synchronously from the poller (UNMAP is rare; reads and writes never take this path).
      PushSync(io);
      return true;
    }
    if (in_flight() >= cq_entries_) return false;  // keep the CQ from overflowing
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) return false;
    const int fd = fixed_file_ ? 0 : target().fd();
    const uint64_t offset = io.offset_blocks() * block_size_;
    switch (io.type()) {
      case IoType::kRead:
      case IoType::kWrite:
        PrepareReadWrite(sqe, fd, io, offset);
        break;
      case IoType::kFlush:
        io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
        break;
      case IoType::kUnmap:
        io_uring_prep_fallocate(sqe, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset,
                                io.num_blocks() * block_size_);
        break;
      case IoType::kWriteZeroes:
        // On a block device the kernel turns ZERO_RANGE into BLKZEROOUT's zero-out.
        io_uring_prep_fallocate(sqe, fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, offset,
                                io.num_blocks() * block_size_);
        break;
      default:
        // IoTypeSupported keeps anything else away; Finish completes it with EOPNOTSUPP.
        io_uring_prep_nop(sqe);
        break;
    }
    if (fixed_file_) sqe->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data(sqe, &io);
    // The kernel holds in_flight() minus the SQEs still queued (this one not yet counted in
    // either): when that is little, this request goes now (kStarvingDepth).
    if (KernelStarves(in_flight() + 1 - io_uring_sq_ready(&ring_), io.num_blocks() * block_size_)) {
      SubmitRing();
    }
    return true;
  }

  unsigned SubmitQueued() noexcept override {
    unsigned work = sync_head_ != nullptr ? RunSyncQueue() : 0;
    if (!ring_ready_) return work;
    return work + SubmitRing();
  }

  unsigned Reap() noexcept override {
    if (!ring_ready_ || in_flight() == 0) return 0;
    // Completions the kernel has not posted yet (deferred task work, or an overflow backlog):
    // the one case that needs a syscall. The flag is in shared memory, so an idle poll costs
    // two loads.
    if (TaskWorkPending()) (void)io_uring_get_events(&ring_);
    unsigned total = 0;
    for (;;) {
      struct Done {
        BdevIo* io;
        int res;
        bool unsupported;
      } done[kReapBatch];
      unsigned n = 0;
      unsigned head;
      io_uring_cqe* cqe;
      io_uring_for_each_cqe(&ring_, head, cqe) {
        done[n] = {static_cast<BdevIo*>(io_uring_cqe_get_data(cqe)), cqe->res, false};
        if (++n == kReapBatch) break;
      }
      if (n == 0) break;
      // Release the slots before the callbacks, which may submit again.
      io_uring_cq_advance(&ring_, n);
      for (unsigned i = 0; i < n; ++i) Finish(*done[i].io, done[i].res);
      total += n;
      if (n < kReapBatch) break;
    }
    return total;
  }

  bool Arm() noexcept override {
    SubmitQueued();
    if (!ring_ready_) return sync_head_ == nullptr;
    if (eventfd_toggle_) io_uring_cq_eventfd_toggle(&ring_, true);
    // Orders the enable (a store to the CQ ring's flags) before the loads below; the kernel
    // orders its posting / flagging before it reads the enable. Whichever comes second sees
    // the other: either the kernel signals the eventfd, or these loads see its work.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return io_uring_cq_ready(&ring_) == 0 && !TaskWorkPending() && io_uring_sq_ready(&ring_) == 0 &&
           sync_head_ == nullptr;
  }

  void Disarm() noexcept override {
    if (!ring_ready_) return;
    if (eventfd_toggle_) io_uring_cq_eventfd_toggle(&ring_, false);
    // The counter is left as it is: the reactor watches the fd edge-triggered, and every signal
    // is an edge whatever the count, so reading it back would only cost a syscall per wake-up
    // (a 64-bit count of wake-ups does not saturate).
  }

 private:
  // A READ or WRITE: a single buffer in a registered piece goes as READ_FIXED / WRITE_FIXED, any
  // other single buffer as READ / WRITE, iovecs as READV / WRITEV.
  void PrepareReadWrite(io_uring_sqe* sqe, int fd, BdevIo& io, uint64_t offset) noexcept {
    const bool write = io.type() == IoType::kWrite;
    if (io.iovcnt() != 1) {
      const auto count = static_cast<unsigned>(io.iovcnt());
      if (write) {
        io_uring_prep_writev(sqe, fd, io.iovs(), count, offset);
      } else {
        io_uring_prep_readv(sqe, fd, io.iovs(), count, offset);
      }
      return;
    }
    void* base = io.iovs()[0].iov_base;
    const size_t len = io.iovs()[0].iov_len;
    const auto ulen = static_cast<unsigned>(len);
    const int slot = buffers_.Find(ring_, base, len);
    if (slot >= 0) {
      // Only this thread writes it: a plain increment, atomic so that the tally may read it.
      fixed_ios_.store(fixed_ios_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      if (write) {
        io_uring_prep_write_fixed(sqe, fd, base, ulen, offset, slot);
      } else {
        io_uring_prep_read_fixed(sqe, fd, base, ulen, offset, slot);
      }
    } else if (write) {
      io_uring_prep_write(sqe, fd, base, ulen, offset);
    } else {
      io_uring_prep_read(sqe, fd, base, ulen, offset);
    }
  }

  // Hands the queued SQEs to the kernel; returns how many it took.
  unsigned SubmitRing() noexcept {
    if (io_uring_sq_ready(&ring_) == 0) return 0;
    // One syscall for the iteration's requests; if completions also wait to be posted, the
    // same call posts them (GETEVENTS).
    int ret = TaskWorkPending() ? io_uring_submit_and_get_events(&ring_) : io_uring_submit(&ring_);
    if (ret > 0) return static_cast<unsigned>(ret);
    if (ret < 0 && ret != -EAGAIN && ret != -EBUSY && ret != -EINTR && !submit_error_logged_) {
      // The SQEs stay queued and are retried every iteration. EEXIST here means the ring was
      // used from another OS thread than its creator (SINGLE_ISSUER).
      submit_error_logged_ = true;
      PX_LOG(kError, "uring", "bdev %s: io_uring_submit: %s", bdev().name(), std::strerror(-ret));
    }
    return 0;
  }

  bool TaskWorkPending() const noexcept {
    return (IO_URING_READ_ONCE(*ring_.sq.kflags) & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) !=
           0;
  }

  // One CQE's request: errors carry the kernel's errno; a short read or write (the file ended,
  // or the kernel stopped early) is finished synchronously from where it stopped, so that a
  // read past a truncated end fails with kFileShortReadErrno like every engine's.
  void Finish(BdevIo& io, int res) noexcept {
    if (res < 0) return CompleteAsync(io, -res);
    if (io.type() == IoType::kRead || io.type() == IoType::kWrite) {
      uint64_t expected = io.num_blocks() * block_size_;
      if (static_cast<uint64_t>(res) < expected) {
        return CompleteAsync(io, ContinueFileIo(target(), io, static_cast<uint64_t>(res)));
      }
    } else if (io.type() != IoType::kFlush && io.type() != IoType::kUnmap &&
               io.type() != IoType::kWriteZeroes) {
      return CompleteAsync(io, EOPNOTSUPP);
    }
    CompleteAsync(io, 0);
  }

  void PushSync(BdevIo& io) noexcept {
    io.module_context<UringIo>().next = nullptr;
    (sync_tail_ != nullptr ? sync_tail_->module_context<UringIo>().next : sync_head_) = &io;
    sync_tail_ = &io;
  }

  // Runs the synchronous queue (taken whole first: completions may queue more).
  unsigned RunSyncQueue() noexcept {
    BdevIo* io = sync_head_;
    sync_head_ = sync_tail_ = nullptr;
    unsigned n = 0;
    while (io != nullptr) {
      BdevIo* next = io->module_context<UringIo>().next;
      CompleteAsync(*io, ExecuteFileIo(target(), *io));
      io = next;
      ++n;
    }
    return n;
  }

  const uint32_t block_size_;
  io_uring ring_{};
  RegisteredBuffers buffers_;
  RegisteredIoTally* tally_;
  std::atomic<uint64_t> fixed_ios_{0};  // reads and writes into registered buffers
  bool ring_ready_ = false;
  bool single_issuer_ = false;
  // The thread this channel's single-issuer ring binds to its reactor (released at the end).
  Thread* bound_thread_ = nullptr;
  bool fixed_file_ = false;
  bool eventfd_toggle_ = false;
  bool submit_error_logged_ = false;
  unsigned cq_entries_ = 0;
  int event_fd_ = -1;
  BdevIo* sync_head_ = nullptr;
  BdevIo* sync_tail_ = nullptr;
};

class UringBdev final : public FileBdev {
 public:
  UringBdev(const FileBdevOptions& options, std::unique_ptr<FileTarget> target)
      : FileBdev(UringModule::Get(), "uring", "URING bdev", options, std::move(target)) {}

  std::unique_ptr<FileChannel> CreateFileChannel() override {
    return std::make_unique<UringChannel>(*this, registered_ios_);
  }

  void DumpInfo(rpc::Json& driver_specific) const override {
    FileBdev::DumpInfo(driver_specific);
    driver_specific["uring"]["setup_flags"] = UringSetupFlagNames();
    driver_specific["uring"]["registered_buffer_ios"] = registered_ios_.Total();
  }

 private:
  RegisteredIoTally registered_ios_;
};

void DeleteUring(std::string_view name, absl::AnyInvocable<void(absl::Status)> done) {
  DeleteUringBdev(name, std::move(done));
}

}  // namespace

POLLUX_BDEV_MODULE(UringModule);

size_t UringModule::io_context_size() const { return sizeof(UringIo); }

absl::Status ProbeUring() {
  // A real ring, with the flags channels will use: io_uring may be compiled out (ENOSYS),
  // disabled by sysctl kernel.io_uring_disabled (EPERM) or refused by seccomp (EPERM/ENOSYS).
  io_uring ring{};
  first_working_flags.store(0, std::memory_order_relaxed);
  bool single_issuer = false;
  if (int err = SetUpRing(ring, 4, /*movable=*/false, single_issuer); err != 0) {
    return absl::UnavailableError(absl::StrFormat("io_uring_queue_init: %s", std::strerror(err)));
  }
  // A NOP round trip: a ring that sets up but cannot submit is no use.
  io_uring_sqe* sqe = io_uring_get_sqe(&ring);
  io_uring_prep_nop(sqe);
  int ret = io_uring_submit_and_wait(&ring, 1);
  io_uring_cqe* cqe = nullptr;
  if (ret >= 0) ret = io_uring_peek_cqe(&ring, &cqe);
  io_uring_queue_exit(&ring);
  if (ret < 0) {
    return absl::UnavailableError(absl::StrFormat("io_uring_submit: %s", std::strerror(-ret)));
  }
  return absl::OkStatus();
}

std::string UringSetupFlagNames() {
  return kSetupFlags[first_working_flags.load(std::memory_order_relaxed)].names;
}

absl::StatusOr<Bdev*> CreateUringBdev(const FileBdevOptions& options) {
  if (options.name.empty()) return absl::InvalidArgumentError("the bdev name must not be empty");
  absl::StatusOr<std::unique_ptr<FileTarget>> target = FileTarget::Open(options.target_options());
  if (!target.ok()) return target.status();
  return RegisterBdev(std::make_unique<UringBdev>(options, std::move(*target)));
}

void DeleteUringBdev(std::string_view name, absl::AnyInvocable<void(absl::Status)> done) {
  DeleteBdev(name, &UringModule::Get(), std::move(done));
}

POLLUX_FILE_ENGINE(uring, FileEngine{"uring", 10, &ProbeUring, &CreateUringBdev, &DeleteUring});

}  // namespace pollux
