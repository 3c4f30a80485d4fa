// Descriptors and I/O submission (SPDK's spdk_bdev_desc and spdk_bdev_read_blocks & co).
//
// A BdevDesc is an open handle on a bdev, owned by the Thread that opened it: its event
// callback runs there, and it must be closed (destroyed) there. I/O goes through the calling
// thread's channel of the bdev (GetIoChannel), so submission and completion take no lock.
//
// Every submission function returns nothing: every outcome, errors included (past the end,
// unsupported type, read-only descriptor), arrives through the callback, on the submitting
// thread, never inside the submission call. When the thread's BdevIo cache and the shared
// pool are empty, the request waits and is submitted when an object frees; it never fails
// for that reason.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <string_view>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "pollux/bdev/bdev.h"
#include "pollux/bdev/bdev_io.h"
#include "pollux/reactor/io_channel.h"

namespace pollux {

enum class BdevEvent : uint8_t {
  kRemove,  // the bdev is going away: stop submitting, wait for your I/O, close the descriptor
  // The bdev's size changed (bdev.block_count(); NotifyBdevBlockCountChange): the channels
  // check ranges against the new size already. Ignore it if the size does not matter to you.
  kResize,
};

// Runs on the descriptor's thread.
using BdevEventCallback = absl::AnyInvocable<void(BdevEvent event, Bdev& bdev)>;

// An I/O outstanding longer than its descriptor's timeout (BdevDesc::SetTimeout). Valid during
// the callback only.
struct BdevIoTimeoutInfo {
  IoChannel& channel;  // the channel it was submitted on: Abort(channel, io_cb_arg, ...) aborts it
  IoType type;
  uint64_t offset_blocks;
  uint64_t num_blocks;
  uint64_t outstanding_us;  // since its submission
  void* io_cb_arg;          // the cb_arg it was submitted with
};
// Runs on the I/O's channel's thread (SPDK's spdk_bdev_io_timeout_cb).
using BdevIoTimeoutCallback = void (*)(void* cb_arg, const BdevIoTimeoutInfo& io);

class BdevDesc {
 public:
  // Opens `name` (a name or an alias). Fails when no such bdev exists, it is being removed,
  // or `writable` is asked of a bdev a module holds a write claim on. Call on a Thread.
  static absl::StatusOr<std::unique_ptr<BdevDesc>> Open(std::string_view name, bool writable,
                                                        BdevEventCallback event_cb);
  // Opens `name` writable and takes `module`'s write claim on it: what a virtual bdev does with
  // its base. Fails with the reason of whichever step failed (nothing stays open).
  static absl::StatusOr<std::unique_ptr<BdevDesc>> OpenAndClaim(std::string_view name,
                                                                BdevModule& module,
                                                                BdevEventCallback event_cb);
  // Closes. On the opening thread. The caller's I/O must have completed and its channel
  // references must be gone (or go on this thread).
  ~BdevDesc();
  BdevDesc(const BdevDesc&) = delete;
  BdevDesc& operator=(const BdevDesc&) = delete;

  Bdev& bdev() const { return *bdev_; }
  bool writable() const { return writable_; }
  uint64_t thread_id() const { return thread_id_; }

  // Takes the exclusive write claim on the bdev for `module` (a virtual bdev over its base):
  // from then on nobody else can open it writable or claim it, until this descriptor closes or
  // ReleaseClaim. The descriptor must be writable. Fails when someone holds a claim already or
  // another descriptor has it open writable.
  absl::Status Claim(BdevModule& module);
  void ReleaseClaim();

  // The calling thread's channel of this bdev (created on first use). Empty when the bdev is
  // being removed.
  IoChannelRef GetIoChannel();

  // ---- I/O, on the thread owning `channel` (a channel from GetIoChannel) ----
  void Read(IoChannel& channel, void* buf, uint64_t offset_blocks, uint64_t num_blocks,
            BdevIoCallback cb, void* cb_arg) noexcept;
  void Readv(IoChannel& channel, iovec* iov, int iovcnt, uint64_t offset_blocks,
             uint64_t num_blocks, BdevIoCallback cb, void* cb_arg) noexcept;
  // Reads into memory the layer lends (SPDK's spdk_bdev_read_blocks with a NULL buffer), for
  // a caller that has none of its own to give (a target that sends the data on): cb receives
  // the data's iovecs, valid until it returns; the buffer then goes back to the layer's pools
  // (8 KiB and 132 KiB buffers, meeting the bdev's alignment and shared-memory needs). A read
  // larger than 132 KiB (with room for the bdev's alignment) fails with kInvalid. When every
  // buffer is lent, the read waits for one (first come, first served) instead of failing;
  // Abort ends the wait. Read, Write and Writev with a null buffer stay kInvalid.
  void ReadWithoutBuffer(IoChannel& channel, uint64_t offset_blocks, uint64_t num_blocks,
                         BdevReadDataCallback cb, void* cb_arg) noexcept;
  void Write(IoChannel& channel, void* buf, uint64_t offset_blocks, uint64_t num_blocks,
             BdevIoCallback cb, void* cb_arg) noexcept;
  void Writev(IoChannel& channel, iovec* iov, int iovcnt, uint64_t offset_blocks,
              uint64_t num_blocks, BdevIoCallback cb, void* cb_arg) noexcept;
  void WriteZeroes(IoChannel& channel, uint64_t offset_blocks, uint64_t num_blocks,
                   BdevIoCallback cb, void* cb_arg) noexcept;
  void Unmap(IoChannel& channel, uint64_t offset_blocks, uint64_t num_blocks, BdevIoCallback cb,
             void* cb_arg) noexcept;
  void Flush(IoChannel& channel, uint64_t offset_blocks, uint64_t num_blocks, BdevIoCallback cb,
             void* cb_arg) noexcept;
  void Reset(IoChannel& channel, BdevIoCallback cb, void* cb_arg) noexcept;

  // Aborts every I/O submitted on `channel` with `bio_cb_arg` as its cb_arg (SPDK's
  // spdk_bdev_abort), whichever descriptor submitted it. What still waits in the layer (for a
  // BdevIo, for a retry after kNoMemory, split children not cut yet) the layer completes with
  // kAborted; what a module holds, the module aborts if it can (Bdev::Abort). cb then runs,
  // after the callbacks of what was aborted: kSuccess when every match was aborted; kFailed
  // with ENOENT when nothing matched; otherwise the first failure of a module (kNotSupported:
  // the module cannot abort; kFailed/ENOENT: it had completed it meanwhile). A split I/O whose
  // children could not all be aborted still ends with kAborted once they are back. Like the
  // other calls, cb never runs inside this one.
  void Abort(IoChannel& channel, void* bio_cb_arg, BdevIoCallback cb, void* cb_arg) noexcept;

  // Reports this descriptor's I/O outstanding longer than `timeout_us` (SPDK's
  // spdk_bdev_set_timeout): cb runs once for each such I/O, on its channel's thread, and may
  // Abort it. Each channel of the bdev runs a timed poller (period: half the timeout, 10 us
  // to 1 s) only while some descriptor has a timeout. 0 disables (cb may be null then);
  // another call replaces the timeout. InvalidArgument for a timeout without cb. On the
  // descriptor's thread; the channels take the change shortly after (a message each).
  absl::Status SetTimeout(uint64_t timeout_us, BdevIoTimeoutCallback cb, void* cb_arg);

  // Hands `io` itself (an I/O a virtual bdev received in its Submit) down to this
  // descriptor's bdev, on `channel`, the calling thread's channel of it: no second BdevIo and
  // no second set of request checks, and the base's completion completes `io` directly (the
  // virtual bdev does not see it; its statistics and the base's both count it). For virtual
  // bdevs that pass I/O through unchanged. The layer still checks the type, the range and this
  // descriptor's mode against the base, and splits or bounces for the base if it needs more
  // than the virtual bdev asked for.
  void Forward(IoChannel& channel, BdevIo& io) noexcept;
  // Forward to another place: `io` (its type, length and buffers unchanged) goes to this
  // descriptor's bdev at `offset_blocks`, for virtual bdevs that map blocks (a RAID's strips, a
  // partition's window). `io` carries the new offset until it completes.
  void Forward(IoChannel& channel, BdevIo& io, uint64_t offset_blocks) noexcept;

  // Submits a new request that does what `io` does (its type, blocks and buffers) to this
  // descriptor's bdev, on `channel`: for a virtual bdev that must see the result before its
  // caller does (error injection, delays), and completes `io` from `cb`.
  void SubmitCopy(IoChannel& channel, const BdevIo& io, BdevIoCallback cb, void* cb_arg) noexcept;

  // Runs now the callbacks of this thread's I/O that completed inside submission calls (a
  // module that completes at once), which otherwise run at the thread's next poll: a caller
  // that submitted a batch and publishes its results itself (a virtqueue's used ring) gets
  // them in the same pass. Not from inside a submission call or a completion callback (does
  // nothing there). On the thread owning `channel`.
  static void DeliverCompletions(IoChannel& channel) noexcept;

  // The statistics of one channel (the calling thread's I/O on this bdev, including what it
  // forwarded or was forwarded). On that thread.
  static BdevIoStats ChannelStats(IoChannel& channel);
  // The I/O the channel's own callers (this thread's descriptors of the bdev) submitted,
  // wherever it was forwarded, without what virtual bdevs above forwarded into it: with a
  // passthru and its base both measured on one thread, the base's figures are its own. On the
  // channel's thread. Costs nothing per I/O: the layer counts forwarded I/O apart already.
  static BdevIoStats SubmittedStats(IoChannel& channel);

 private:
  friend class BdevRegistry;

  BdevDesc(Bdev* bdev, bool writable, BdevEventCallback event_cb, uint64_t thread_id)
      : bdev_(bdev), writable_(writable), event_cb_(std::move(event_cb)), thread_id_(thread_id) {}

  void Submit(IoChannel& channel, IoType type, iovec* iov, int iovcnt, void* buf,
              uint64_t offset_blocks, uint64_t num_blocks, BdevIoCallback cb,
              void* cb_arg) noexcept;
  // Publishes this descriptor's timeout (0: none) to the bdev's channels.
  void PublishTimeout(uint64_t timeout_us, BdevIoTimeoutCallback cb, void* cb_arg);

  Bdev* bdev_;
  bool writable_;
  bool claim_held_ = false;
  bool remove_notified_ = false;
  BdevEventCallback event_cb_;
  uint64_t thread_id_;
  uint64_t timeout_us_ = 0;
};

// Closes `desc` on the thread that opened it (now, when that is the calling thread), then runs
// `done` there: for a virtual bdev's Destruct, which may run on any thread. If that thread is
// gone (only at shutdown), closes on the calling thread.
void CloseBdevDesc(std::unique_ptr<BdevDesc> desc, absl::AnyInvocable<void()> done);

}  // namespace pollux
