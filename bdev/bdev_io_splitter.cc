// Splitting, emulation and bouncing: what the layer does so that modules see only requests
// they can take (SPDK's bdev_io_split and bounce buffers).
//
// A parent is cut into children in block order, at the optimal I/O boundary (when the bdev
// asks for it), at max_transfer_blocks and at max_segments (and at BdevIo::kChildIovs, the
// iovecs a child carries inline). Up to kMaxChildrenInFlight children run at once; each
// completion cuts the next. The parent completes once the last child has, with the first
// failure among them. An emulated WRITE_ZEROES is the same with WRITE children that all point
// at a zero buffer.
//
// A bdev that requires shared memory gets its bounce buffers and zero buffer from the shared
// I/O arena, which its back-end maps.
#include <rte_malloc.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <mutex>
#include <utility>

#include "bdev_channel.h"
#include "bdev_io_pool.h"
#include "pollux/env/io_memory.h"
#include "pollux/env/log.h"
#include "pollux/env/shared_io_memory.h"

namespace pollux {
namespace {

struct SharedZeroBuffer {
  std::mutex mutex;
  IoMemory memory;
  uint32_t users = 0;
};

// Never destroyed: a channel may outlive this file's statics at exit.
SharedZeroBuffer& TheSharedZeroBuffer() {
  static auto* buffer = new SharedZeroBuffer;
  return *buffer;
}

}  // namespace

void* BdevChannel::AcquireSharedZeroBuffer(const Bdev& bdev) noexcept {
  SharedZeroBuffer& zero = TheSharedZeroBuffer();
  std::lock_guard lock(zero.mutex);
  if (zero.users == 0) {
    absl::StatusOr<IoMemory> memory =
        IoMemory::AllocateShared(BdevIoPool::kZeroBufferSize, "the bdev layer's zero buffer");
    if (!memory.ok()) {
      PX_LOG(kError, "bdev", "%s: %s: its emulated WRITE_ZEROES will fail", bdev.name(),
             memory.status().message());
      return nullptr;
    }
    zero.memory = std::move(*memory);
  }
  ++zero.users;
  return zero.memory.data();
}

void BdevChannel::ReleaseSharedZeroBuffer() noexcept {
  SharedZeroBuffer& zero = TheSharedZeroBuffer();
  std::lock_guard lock(zero.mutex);
  if (--zero.users == 0) zero.memory = IoMemory();
}

void BdevChannel::StartSplit(BdevIo& parent) noexcept {
  parent.split_next_block_ = parent.offset_blocks_;
  parent.split_iov_index_ = 0;
  parent.split_iov_offset_ = 0;
  parent.children_in_flight_ = 0;
  parent.children_status_ = BdevIoStatus::kSuccess;
  parent.error_number_ = 0;
  parent.waiting_for_io_ = false;
  ContinueSplit(parent);
}

void BdevChannel::ContinueSplit(BdevIo& parent) noexcept {
  parent.waiting_for_io_ = false;
  const uint64_t end = parent.offset_blocks_ + parent.num_blocks_;
  thread_.EnterSubmit();
  while (parent.children_in_flight_ < kMaxChildrenInFlight && parent.split_next_block_ < end) {
    BdevIo* child = thread_.Get();
    if (child == nullptr) {
      // With children in flight, the next completion comes back here; with none, only the
      // thread's poller can (once some object frees).
      if (parent.children_in_flight_ == 0) {
        parent.waiting_for_io_ = true;
        thread_.AddWaitingParent(&parent);
      }
      break;
    }
    if (!BuildChild(parent, *child)) {
      thread_.Put(child);
      parent.children_status_ = BdevIoStatus::kInvalid;
      parent.split_next_block_ = end;
      break;
    }
    ++parent.children_in_flight_;
    in_flight_.PushBack(*child);
    SubmitToModule(*child);
  }
  thread_.LeaveSubmit();
  if (parent.children_in_flight_ == 0 && parent.split_next_block_ >= end &&
      !parent.waiting_for_io_) {
    CompleteInLayer(parent, parent.children_status_, parent.error_number_);
  }
}

bool BdevChannel::BuildChild(BdevIo& parent, BdevIo& child) noexcept {
  const uint64_t end = parent.offset_blocks_ + parent.num_blocks_;
  const uint64_t block_size = bdev_.block_size();
  uint64_t limit = end - parent.split_next_block_;
  uint32_t boundary = bdev_.optimal_io_boundary();
  if (bdev_.split_on_optimal_io_boundary() && boundary != 0) {
    limit = std::min<uint64_t>(limit, boundary - parent.split_next_block_ % boundary);
  }
  if (bdev_.max_transfer_blocks() != 0) limit = std::min<uint64_t>(limit, bdev_.max_transfer_blocks());

  child.kind_ = BdevIo::Kind::kChild;
  child.forward_depth_ = 0;
  child.parent_ = &parent;
  child.data_flags_ = 0;
  child.bdev_ = &bdev_;
  child.channel_ = this;
  child.module_channel_ = module_channel_.get();
  child.offset_blocks_ = parent.split_next_block_;
  child.status_ = BdevIoStatus::kSuccess;
  child.iovs_ = child.child_iovs_;
  child.iovcnt_ = 0;

  if (parent.type_ == IoType::kWriteZeroes) {
    // Emulated: a write of (part of) the zero buffer.
    uint64_t max_blocks = BdevIoPool::kZeroBufferSize / block_size;
    uint64_t blocks = std::min(limit, max_blocks);
    child.type_ = IoType::kWrite;
    child.child_iovs_[0] = {zero_buffer_, blocks * block_size};
    child.iovcnt_ = 1;
    child.num_blocks_ = blocks;
    parent.split_next_block_ += blocks;
    return true;
  }

  child.type_ = parent.type_;
  uint64_t max_segments = bdev_.max_segments() != 0 ? bdev_.max_segments()
                                                    : std::numeric_limits<uint64_t>::max();
  max_segments = std::min<uint64_t>(max_segments, BdevIo::kChildIovs);
  const uint64_t wanted = limit * block_size;
  uint64_t taken = 0;
  size_t index = parent.split_iov_index_;
  size_t offset = parent.split_iov_offset_;
  int count = 0;
  while (taken < wanted && static_cast<uint64_t>(count) < max_segments &&
         index < static_cast<size_t>(parent.iovcnt_)) {
    const iovec& source = parent.iovs_[index];
    uint64_t take = std::min<uint64_t>(source.iov_len - offset, wanted - taken);
    if (take != 0) {
      child.child_iovs_[count++] = {static_cast<char*>(source.iov_base) + offset, take};
      taken += take;
      offset += take;
    }
    if (offset == source.iov_len) {
      ++index;
      offset = 0;
    }
  }
  // Out of segments before the limit: end the child on the last whole block.
  uint64_t tail = taken % block_size;
  taken -= tail;
  while (tail != 0) {
    iovec& last = child.child_iovs_[count - 1];
    uint64_t cut = std::min<uint64_t>(tail, last.iov_len);
    last.iov_len -= cut;
    tail -= cut;
    if (last.iov_len == 0) --count;
  }
  if (taken == 0) {
    PX_LOG(kError, "bdev",
           "%s: cannot split an I/O at block %lu: one block spans more than %lu iovecs",
           bdev_.name(), parent.split_next_block_, max_segments);
    return false;
  }
  // Advance the parent's position by exactly what the child took.
  uint64_t advance = taken;
  while (advance != 0) {
    const iovec& source = parent.iovs_[parent.split_iov_index_];
    uint64_t step = std::min<uint64_t>(source.iov_len - parent.split_iov_offset_, advance);
    advance -= step;
    parent.split_iov_offset_ += step;
    if (parent.split_iov_offset_ == source.iov_len) {
      ++parent.split_iov_index_;
      parent.split_iov_offset_ = 0;
    }
  }
  child.iovcnt_ = count;
  child.num_blocks_ = taken / block_size;
  parent.split_next_block_ += child.num_blocks_;
  return true;
}

void BdevChannel::ChildDone(BdevIo& child) noexcept {
  BdevIo& parent = *child.parent_;
  if (child.status_ != BdevIoStatus::kSuccess &&
      parent.children_status_ == BdevIoStatus::kSuccess) {
    // First failure: no more children; the parent fails once those in flight are back.
    parent.children_status_ = child.status_;
    parent.error_number_ = child.error_number_;
    parent.split_next_block_ = parent.offset_blocks_ + parent.num_blocks_;
  }
  in_flight_.Remove(child);
  thread_.Put(&child);
  --parent.children_in_flight_;
  parent.channel_->ContinueSplit(parent);
}

bool BdevChannel::Misaligned(const BdevIo& io) const noexcept {
  uint64_t bits = 0;
  for (int i = 0; i < io.iovcnt_; ++i) {
    bits |= reinterpret_cast<uintptr_t>(io.iovs_[i].iov_base) | io.iovs_[i].iov_len;
  }
  return (bits & alignment_mask_) != 0;
}

bool BdevChannel::UnsplittableSegments(const BdevIo& io) const noexcept {
  if (static_cast<uint32_t>(io.iovcnt_) <= max_segments_) return false;
  // Segments of whole blocks can always be cut between segments; otherwise a block may span
  // more segments than a child can carry, so one contiguous bounce buffer is the safe form.
  uint64_t bits = 0;
  for (int i = 0; i < io.iovcnt_; ++i) bits |= io.iovs_[i].iov_len;
  return (bits & (bdev_.block_size() - 1)) != 0;
}

bool BdevChannel::Bounce(BdevIo& io) noexcept {
  uint64_t bytes = io.num_blocks_ << block_shift_;
  void* buffer;
  if (requires_shared_memory_) {
    // Per I/O from the arena's allocator (a mutex, a populate and later a punch): the slow
    // path of callers whose buffers are not shared; theirs should come from AllocateShared.
    absl::StatusOr<void*> shared =
        AllocateSharedIo(bytes, bdev_.name(), std::max<uint64_t>(alignment_mask_ + 1, 4096));
    if (!shared.ok()) {
      PX_LOG(kError, "bdev", "%s: no shared I/O memory for a %lu-byte bounce buffer: %s",
             bdev_.name(), bytes, shared.status().message());
      return false;
    }
    buffer = *shared;
  } else {
    buffer = rte_malloc("bdev_bounce", bytes, std::max<uint64_t>(alignment_mask_ + 1, 64));
    if (buffer == nullptr) {
      PX_LOG(kError, "bdev", "%s: no DPDK memory for a %lu-byte bounce buffer", bdev_.name(),
             bytes);
      return false;
    }
  }
  // The caller's single-buffer iovec lives in single_iov_, which now describes the bounce
  // buffer: keep the caller's in child_iovs_[0] (a caller's I/O has no use for it).
  if (io.iovs_ == &io.single_iov_) {
    io.child_iovs_[0] = io.single_iov_;
    io.caller_iovs_ = io.child_iovs_;
  } else {
    io.caller_iovs_ = io.iovs_;
  }
  io.caller_iovcnt_ = io.iovcnt_;
  if (io.type_ == IoType::kWrite) {
    char* out = static_cast<char*>(buffer);
    for (int i = 0; i < io.caller_iovcnt_; ++i) {
      std::memcpy(out, io.caller_iovs_[i].iov_base, io.caller_iovs_[i].iov_len);
      out += io.caller_iovs_[i].iov_len;
    }
  }
  io.single_iov_ = {buffer, bytes};
  io.iovs_ = &io.single_iov_;
  io.iovcnt_ = 1;
  io.data_flags_ |= BdevIo::kBounced;
  return true;
}

void BdevChannel::Unbounce(BdevIo& io) noexcept {
  if (io.type_ == IoType::kRead && io.status_ == BdevIoStatus::kSuccess) {
    const char* in = static_cast<const char*>(io.single_iov_.iov_base);
    for (int i = 0; i < io.caller_iovcnt_; ++i) {
      std::memcpy(io.caller_iovs_[i].iov_base, in, io.caller_iovs_[i].iov_len);
      in += io.caller_iovs_[i].iov_len;
    }
  }
  // The arena never overlaps DPDK's heap: where the buffer lies says which allocator it is.
  if (InSharedIoMemory(io.single_iov_.iov_base, io.single_iov_.iov_len)) {
    FreeSharedIo(io.single_iov_.iov_base);
  } else {
    rte_free(io.single_iov_.iov_base);
  }
  io.iovs_ = io.caller_iovs_;
  io.iovcnt_ = io.caller_iovcnt_;
  io.data_flags_ &= ~BdevIo::kBounced;
}

}  // namespace pollux
