// BdevIo: one block I/O request as a module sees it, from submission to completion.
//
// Life cycle: the layer takes a BdevIo from the submitting thread's cache (backed by a DPDK
// mempool, so no malloc per I/O), fills it, checks it (bounds, type, splitting, alignment) and
// hands it to the bdev's Submit() on the submitting thread. The module completes it exactly
// once with Complete(), on that same thread, now or later (from one of its pollers). After
// the user's callback the object goes back to the cache: a module must not touch it after
// Complete().
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>

namespace pollux {

class Bdev;
class BdevChannel;
class BdevIo;
class BdevDesc;
class ChannelContext;

enum class IoType : uint8_t {
  kRead = 0,
  kWrite,
  kFlush,
  kUnmap,
  kWriteZeroes,
  kReset,
};
inline constexpr int kIoTypeCount = 6;

// "read", "write", "flush", "unmap", "write_zeroes", "reset" (SPDK's JSON names).
const char* IoTypeName(IoType type);

// How an I/O ended. Everything but kSuccess is a failure the caller sees, except kNoMemory,
// which a module returns to say "out of resources, retry later": the layer queues the I/O on
// its channel and submits it again when another I/O on that channel completes.
enum class BdevIoStatus : int8_t {
  kSuccess = 0,
  kFailed,        // the device failed it (media error, module error)
  kNoMemory,      // module only: retry later (never reaches the caller)
  kOutOfRange,    // past the end of the device; never reached the module
  kNotSupported,  // the bdev does not do this I/O type
  kInvalid,       // malformed request (bad iovecs, read-only descriptor, zero length)
  kAborted,       // aborted (BdevDesc::Abort), or the bdev went away or was reset with it queued
  kMiscompare,    // data did not match (verify workloads, error injection of corruption)
};

const char* BdevIoStatusName(BdevIoStatus status);

// The caller's completion callback. Runs on the submitting thread, never inside the
// submission call itself (a completion found during submission is deferred to the thread's
// next poll), so a callback may submit again without recursion. `error_number` is the errno
// the module gave a failed I/O (EIO, ENOSPC from a kernel engine), 0 when it gave none or the
// I/O succeeded.
using BdevIoCallback = void (*)(void* cb_arg, BdevIoStatus status, int error_number);

// The completion of a read submitted without a buffer (BdevDesc::ReadWithoutBuffer): like
// BdevIoCallback, plus the data. On kSuccess, `iovs` (`iovcnt` of them, one today) hold the
// blocks read, in memory the layer lends until the callback returns; otherwise nullptr and 0.
using BdevReadDataCallback = void (*)(void* cb_arg, BdevIoStatus status, int error_number,
                                      const iovec* iovs, int iovcnt);

// The answer to BdevIo::GetDataBuffer: kSuccess, and io.iovs() holds the buffer; otherwise the
// status to complete the I/O with (kInvalid: larger than the layer's largest buffer; kFailed:
// no memory could be had for the pool).
using BdevIoBufferCallback = void (*)(BdevIo& io, BdevIoStatus status);

class alignas(64) BdevIo {
 public:
  BdevIo(const BdevIo&) = delete;
  BdevIo& operator=(const BdevIo&) = delete;

  // ---- The request, for the module ----
  IoType type() const { return type_; }
  Bdev& bdev() const { return *bdev_; }
  uint64_t offset_blocks() const { return offset_blocks_; }
  uint64_t num_blocks() const { return num_blocks_; }
  // Data buffers (READ, WRITE). Their total length is num_blocks * block size, and each
  // meets the bdev's required alignment (the layer bounces buffers that do not).
  iovec* iovs() const { return iovs_; }
  int iovcnt() const { return iovcnt_; }

  // Whether this is a READ without a data buffer: its caller used BdevDesc::ReadWithoutBuffer
  // and the bdev takes such reads (BdevProperties::takes_reads_without_buffer). iovs() is then
  // one iovec {nullptr, length}; call GetDataBuffer before reading into it.
  bool needs_data_buffer() const { return (data_flags_ & kNeedsBuffer) != 0; }
  // Gives this I/O a data buffer from the layer's pools (SPDK's spdk_bdev_io_get_buf), 8 KiB or
  // 132 KiB, meeting the bdev's required alignment and, for a bdev that requires shared
  // memory, inside the shared I/O arena. cb(io, kSuccess) runs with io.iovs() set to it: now,
  // inside this call, when one is free, or later, on this thread, when one is returned (the
  // request waits in a first-come first-served queue for the buffers this thread's I/O give
  // back; see docs/bdev-module-guide.md, section 13a). On failure
  // cb(io, status) gives the status to complete the I/O with. The buffer goes back to the pool
  // when the I/O's caller has seen the data (after its callback). An I/O that has a buffer
  // already gets cb(io, kSuccess) at once, so a module may call this for every READ. If the
  // I/O is aborted while it waits (BdevDesc::Abort, a reset, the bdev going away), the layer
  // completes it with kAborted and cb never runs. In Submit, or later on the same thread.
  void GetDataBuffer(BdevIoBufferCallback cb) noexcept;

  // The module's per-I/O scratch space, BdevModule::io_context_size() bytes, 64-byte aligned.
  template <typename T>
  T& module_context() {
    return *reinterpret_cast<T*>(this + 1);
  }
  // The module's per-thread channel of this bdev (what Bdev::CreateChannel returned).
  template <typename T>
  T& module_channel() const {
    return static_cast<T&>(*module_channel_);
  }

  // Whether other I/O of the submitting thread has completed and still waits for its
  // callback (the layer delivers completions at the thread's next poll). A request arriving
  // then overlaps another: adaptive modules read this in Submit (a file engine runs a lone
  // request inline, synchronously, and overlapping ones asynchronously).
  bool ThreadHasUndeliveredCompletions() const noexcept;

  // Completes the I/O. Call exactly once, on the submitting thread (the thread the module's
  // Submit ran on). kNoMemory asks the layer to retry it later. A failure may carry the errno
  // that caused it (a kernel engine's -res); the caller's callback receives it.
  void Complete(BdevIoStatus status, int error_number = 0) noexcept;

 private:
  friend class BdevChannel;
  friend class BdevDesc;
  friend class BdevThreadContext;
  friend class BdevIoSplitter;
  friend class BdevIoPool;
  friend class BdevInFlightList;
  friend class BdevBufferCache;

  BdevIo() = default;
  ~BdevIo() = default;

  // data_flags_: what the layer does with the I/O's data at delivery (0 for most I/O: one test
  // on the completion path).
  static constexpr uint8_t kReadData = 1;           // cb_ is a BdevReadDataCallback
  static constexpr uint8_t kBounced = 2;            // iovs_ point at a bounce buffer (Unbounce)
  static constexpr uint8_t kLentBuffer = 4;         // holds a pool buffer (buffer_, buffer_pool_)
  static constexpr uint8_t kNeedsBuffer = 8;        // no buffer yet (needs_data_buffer)
  static constexpr uint8_t kWaitingForBuffer = 16;  // in its thread's queue for one

  enum class Kind : uint8_t {
    kUser,        // what a caller submitted; counted in the statistics
    kChild,       // a piece of a split (or emulated) parent
    kAbort,       // a BdevDesc::Abort: counts the module aborts it waits for; never reaches a module
  };

  // ---- Hot fields, first cache line ----
  IoType type_ = IoType::kRead;
  Kind kind_ = Kind::kUser;
  // How many channels this I/O was forwarded from (BdevDesc::Forward); next to kind_, as the
  // completion path tests both (a forwarded caller's I/O one level down is the common case),
  // and to data_flags_, as Forward tests both (one 16-bit test: see BdevChannel::Forward).
  uint8_t forward_depth_ = 0;
  uint8_t data_flags_ = 0;  // kBounced, kReadData...: see above
  int iovcnt_ = 0;
  Bdev* bdev_ = nullptr;
  BdevChannel* channel_ = nullptr;
  ChannelContext* module_channel_ = nullptr;
  iovec* iovs_ = nullptr;
  uint64_t offset_blocks_ = 0;
  uint64_t num_blocks_ = 0;
  BdevIoCallback cb_ = nullptr;
  void* cb_arg_ = nullptr;
  uint64_t submit_tsc_ = 0;
  BdevIo* next_ = nullptr;  // intrusive link: deferred completions, retry queue, cache
  BdevIoStatus status_ = BdevIoStatus::kSuccess;
  // Channels this I/O was forwarded from, outermost first: its completion is counted at each
  // of them on the way back up.
  // A power of two: forward_depth_ & kMaxForwardDepth tests forward_depth_ == kMaxForwardDepth.
  static constexpr int kMaxForwardDepth = 4;
  static_assert((kMaxForwardDepth & (kMaxForwardDepth - 1)) == 0);
  BdevChannel* forwarded_from_[kMaxForwardDepth]{};

  // ---- Cold fields: errors, splitting, emulation, bouncing ----
  int32_t error_number_ = 0;     // with a failed status_ (for a split parent: its first failure)
  iovec single_iov_{};           // the iovec of single-buffer requests and bounce buffers
  iovec* caller_iovs_ = nullptr;  // the caller's iovecs while bounced
  int caller_iovcnt_ = 0;
  // As a parent: how far children have been cut, how many are in flight.
  BdevIo* parent_ = nullptr;
  uint64_t split_next_block_ = 0;
  size_t split_iov_index_ = 0;   // parent iov where the next child starts
  size_t split_iov_offset_ = 0;  // byte offset inside it
  uint32_t children_in_flight_ = 0;
  BdevIoStatus children_status_ = BdevIoStatus::kSuccess;
  bool waiting_for_io_ = false;  // on the thread's list of parents waiting for a free BdevIo
  // A buffer lent by the layer (kLentBuffer): where it starts (iovs_ may start further in, for
  // alignment), its pool (BdevBufferPoolIndex), and while it waits for one, who to call.
  int8_t buffer_pool_ = -1;
  void* buffer_ = nullptr;
  BdevIoBufferCallback buffer_cb_ = nullptr;
  // The submitting channel's list of I/O in flight (BdevInFlightList): callers' I/O and split
  // children, from submission to delivery. Here, not on the first line: only the submission and
  // the delivery touch them, and the walks (abort, timeouts) are rare.
  BdevIo* in_flight_prev_ = nullptr;
  BdevIo* in_flight_next_ = nullptr;
  const BdevDesc* desc_ = nullptr;  // a caller's I/O: the descriptor (its timeout applies)

 public:
  // How many iovecs a child of a split carries inline (a child is cut at this many segments).
  static constexpr int kChildIovs = 16;

 private:
  iovec child_iovs_[kChildIovs]{};
};

}  // namespace pollux
