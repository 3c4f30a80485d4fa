#include "virtio_blk_queue.h"

#include <linux/virtio_blk.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <thread>

#include "absl/strings/str_format.h"
#include "packed_virtqueue.h"
#include "pollux/bdev/bdev.h"
#include "pollux/env/log.h"
#include "queue_counter.h"
#include "split_virtqueue.h"
#include "virtqueue_used.h"

namespace pollux {
namespace {

constexpr uint8_t kStatusUnset = 0xff;  // a status the back-end never wrote stays this

bool IsRange(IoType type) { return type == IoType::kUnmap || type == IoType::kWriteZeroes; }

// Descriptors a request takes: header, data buffers or a range, status.
int ChainLength(const BdevIo& io) {
  switch (io.type()) {
    case IoType::kRead:
    case IoType::kWrite:
      return io.iovcnt() + 2;
    case IoType::kFlush:
      return 2;
    default:
      return 3;
  }
}

}  // namespace

template <typename Push>
uint64_t VirtioBlkQueue::Describe(BdevIo& io, uint16_t id, Push& push) noexcept {
  RequestSlot& s = slot(id);
  const IoType type = io.type();
  virtio_blk_outhdr header{};
  switch (type) {
    case IoType::kRead:
      header.type = VIRTIO_BLK_T_IN;
      header.sector = io.offset_blocks() << sector_shift_;
      break;
    case IoType::kWrite:
      header.type = VIRTIO_BLK_T_OUT;
      header.sector = io.offset_blocks() << sector_shift_;
      break;
    case IoType::kFlush:
      header.type = VIRTIO_BLK_T_FLUSH;
      break;
    default:  // kUnmap, kWriteZeroes (the only other types IoTypeSupported admits)
      header.type = type == IoType::kUnmap ? VIRTIO_BLK_T_DISCARD : VIRTIO_BLK_T_WRITE_ZEROES;
      break;
  }
  std::memcpy(s.header, &header, sizeof(header));
  s.status = kStatusUnset;
  push(reinterpret_cast<uint64_t>(s.header), sizeof(header), false);
  uint64_t piece = 0;
  if (type == IoType::kRead || type == IoType::kWrite) {
    const bool read = type == IoType::kRead;
    const iovec* iovs = io.iovs();
    for (int i = 0; i < io.iovcnt(); ++i) {
      push(reinterpret_cast<uint64_t>(iovs[i].iov_base), static_cast<uint32_t>(iovs[i].iov_len),
           read);
    }
  } else if (IsRange(type)) {
    const auto& context = io.module_context<VirtioBlkIo>();
    uint64_t limit = type == IoType::kUnmap ? limits_.max_discard_sectors
                                            : limits_.max_write_zeroes_sectors;
    if (limit == 0 || limit > UINT32_MAX) limit = UINT32_MAX;
    // Whole blocks per piece, at least one.
    const uint64_t per_block = uint64_t{1} << sector_shift_;
    limit = std::max(per_block, limit / per_block * per_block);
    piece = std::min(context.remaining_sectors, limit);
    virtio_blk_discard_write_zeroes range{};
    range.sector = context.next_sector;
    range.num_sectors = static_cast<uint32_t>(piece);
    std::memcpy(s.range, &range, sizeof(range));
    push(reinterpret_cast<uint64_t>(s.range), sizeof(range), false);
  }
  push(reinterpret_cast<uint64_t>(&s.status), 1, true);
  return piece;
}

namespace {

// The queue over one ring layout. The data path is here, in one class per layout, so that
// the ring's calls inline.
template <typename Ring>
class VirtioBlkQueueOn final : public VirtioBlkQueue {
 public:
  VirtioBlkQueueOn(std::string name, uint16_t index, uint32_t size,
                   const VirtioBlkQueueLimits& limits)
      : VirtioBlkQueue(std::move(name), index, size, limits) {}

  absl::Status Start() {
    if (absl::Status s = Init(Ring::MemoryBytes(size_)); !s.ok()) return s;
    ring_.emplace(ring_memory(), size_, limits_.event_idx);
    return absl::OkStatus();
  }

  uint64_t desc_address() const override { return ring_->desc_address(); }
  uint64_t avail_address() const override { return ring_->avail_address(); }
  uint64_t used_address() const override { return ring_->used_address(); }
  uint32_t initial_base() const override { return Ring::initial_base(); }

  bool Submit(BdevIo& io) noexcept override {
    if (dead_) [[unlikely]] {
      io.Complete(BdevIoStatus::kFailed, ENOTCONN);
      return true;
    }
    if (IsRange(io.type())) {
      auto& context = io.module_context<VirtioBlkIo>();
      context.next_sector = io.offset_blocks() << sector_shift_;
      context.remaining_sectors = io.num_blocks() << sector_shift_;
    }
    return Add(io);
  }

  int Poll() noexcept override {
    int done = 0;
    uint16_t id;
    uint32_t length;
    const char* error;
    for (;;) {
      UsedResult result = ring_->NextUsed(id, length, error);
      if (result == UsedResult::kNone) break;
      if (result == UsedResult::kBroken) [[unlikely]] {
        Break(error);
        return done + 1;
      }
      ++done;
      Complete(id, length);
    }
    if (done != 0) AddToCounter(counters_.completions, done);
    if (ring_->NeedsKick()) Kick();
    return done;
  }

  bool Arm() noexcept override {
    if (ring_->NeedsKick()) Kick();
    AddToCounter(counters_.arms, 1);
    return ring_->EnableInterrupts();
  }
  void Disarm() noexcept override { ring_->DisableInterrupts(); }

  absl::StatusOr<std::string> GetId(uint64_t timeout_us) override {
    const uint16_t id = ring_->next_id();
    RequestSlot& s = slot(id);
    virtio_blk_outhdr header{};
    header.type = VIRTIO_BLK_T_GET_ID;
    std::memcpy(s.header, &header, sizeof(header));
    s.status = kStatusUnset;
    std::memset(s.id, 0, sizeof(s.id));
    auto fill = [&](auto push) {
      push(reinterpret_cast<uint64_t>(s.header), sizeof(header), false);
      push(reinterpret_cast<uint64_t>(s.id), VIRTIO_BLK_ID_BYTES, true);
      push(reinterpret_cast<uint64_t>(&s.status), 1, true);
    };
    // A ring of two entries takes no chain of three: it goes indirect (the controller allows
    // such a ring only with indirect descriptors).
    if (ring_->free_descriptors() >= 3) {
      ring_->AddChain(3, fill);
    } else if (limits_.indirect) {
      void* table = indirect_table(id);
      Ring::FillIndirect(table, 3, fill);
      ring_->AddIndirect(reinterpret_cast<uint64_t>(table), 3);
    } else {
      return absl::FailedPreconditionError(
          absl::StrFormat("%s: no room in the ring for GET_ID", name_));
    }
    (void)ring_->NeedsKick();
    Kick();  // the back-end's notification wishes are not known before its first look
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(timeout_us);
    uint16_t used_id;
    uint32_t length;
    const char* error;
    for (;;) {
      UsedResult result = ring_->NextUsed(used_id, length, error);
      if (result == UsedResult::kBroken) return absl::DataLossError(error);
      if (result == UsedResult::kUsed) break;
      if (std::chrono::steady_clock::now() > deadline) {
        return absl::DeadlineExceededError(
            absl::StrFormat("%s: no answer to GET_ID within %u ms", name_, timeout_us / 1000));
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    const uint8_t status = __atomic_load_n(&s.status, __ATOMIC_RELAXED);
    if (status == VIRTIO_BLK_S_UNSUPP) return absl::UnimplementedError("GET_ID not supported");
    if (status != VIRTIO_BLK_S_OK) {
      return absl::InternalError(absl::StrFormat("GET_ID failed with status %u", status));
    }
    std::string serial;
    for (int i = 0; i < VIRTIO_BLK_ID_BYTES && s.id[i] != 0; ++i) {
      serial.push_back(s.id[i] >= 0x20 && s.id[i] < 0x7f ? static_cast<char>(s.id[i]) : '?');
    }
    return serial;
  }

 private:
  bool Add(BdevIo& io) noexcept {
    const uint32_t free = ring_->free_descriptors();
    if (free == 0) return false;
    const uint16_t id = ring_->next_id();
    const int count = ChainLength(io);
    uint64_t piece = 0;
    auto fill = [&](auto push) { piece = Describe(io, id, push); };
    if (static_cast<uint32_t>(count) <= free) {
      ring_->AddChain(count, fill);
    } else if (limits_.indirect) {
      void* table = indirect_table(id);
      Ring::FillIndirect(table, count, fill);
      ring_->AddIndirect(reinterpret_cast<uint64_t>(table), count);
    } else {
      return false;
    }
    if (IsRange(io.type())) [[unlikely]] {
      auto& context = io.module_context<VirtioBlkIo>();
      context.next_sector += piece;
      context.remaining_sectors -= piece;
    }
    ios_[id] = &io;
    ++in_flight_;
    AddToCounter(counters_.requests, 1);
    return true;
  }

  void Complete(uint16_t id, uint32_t length) noexcept {
    BdevIo* io = ios_[id];
    ios_[id] = nullptr;
    --in_flight_;
    const uint8_t status = __atomic_load_n(&slot(id).status, __ATOMIC_RELAXED);
    // Most back-ends report 1 (the status byte) or the bytes read plus 1; only a larger length
    // costs the multiplication.
    const uint64_t writable =
        length <= 1 ? 1
                    : 1 + (io->type() == IoType::kRead ? io->num_blocks() * limits_.block_size : 0);
    if (length > writable) [[unlikely]] {
      if (!warned_length_) {
        warned_length_ = true;
        PX_LOG(kError, "virtio", "%s: the back-end reported %u bytes written into a %lu-byte "
               "buffer; the request fails", name_.c_str(), length, writable);
      }
      return io->Complete(BdevIoStatus::kFailed, EIO);
    }
    switch (status) {
      case VIRTIO_BLK_S_OK:
        if (IsRange(io->type()) && io->module_context<VirtioBlkIo>().remaining_sectors != 0) {
          // The rest of a discard or write-zeroes larger than one request may carry: the
          // descriptors just freed make room for it.
          if (Add(*io)) return;
          return io->Complete(BdevIoStatus::kNoMemory);
        }
        return io->Complete(BdevIoStatus::kSuccess);
      case VIRTIO_BLK_S_UNSUPP:
        return io->Complete(BdevIoStatus::kNotSupported);
      case VIRTIO_BLK_S_IOERR:
        return io->Complete(BdevIoStatus::kFailed, EIO);
      default:
        if (!warned_status_) {
          warned_status_ = true;
          PX_LOG(kError, "virtio", "%s: the back-end completed a request with status %u "
                 "(not OK, IOERR or UNSUPP); such requests fail", name_.c_str(), status);
        }
        return io->Complete(BdevIoStatus::kFailed, EIO);
    }
  }

  std::optional<Ring> ring_;  // made in Start, once the ring's memory exists
  bool warned_status_ = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<VirtioBlkQueue>> VirtioBlkQueue::Create(
    std::string name, uint16_t index, uint32_t size, const VirtioBlkQueueLimits& limits) {
  if (limits.packed) {
    auto queue = std::make_unique<VirtioBlkQueueOn<PackedVirtqueue>>(std::move(name), index,
                                                                     size, limits);
    if (absl::Status s = queue->Start(); !s.ok()) return s;
    return queue;
  }
  auto queue =
      std::make_unique<VirtioBlkQueueOn<SplitVirtqueue>>(std::move(name), index, size, limits);
  if (absl::Status s = queue->Start(); !s.ok()) return s;
  return queue;
}

VirtioBlkQueue::VirtioBlkQueue(std::string name, uint16_t index, uint32_t size,
                               const VirtioBlkQueueLimits& limits)
    : name_(std::move(name)),
      index_(index),
      size_(size),
      limits_(limits),
      sector_shift_(static_cast<uint32_t>(__builtin_ctz(limits.block_size / 512))),
      ios_(std::make_unique<BdevIo*[]>(size)) {}

VirtioBlkQueue::~VirtioBlkQueue() {
  if (kick_fd_ >= 0) close(kick_fd_);
  if (call_fd_ >= 0) close(call_fd_);
}

absl::Status VirtioBlkQueue::Init(size_t ring_bytes) {
  table_bytes_ = limits_.indirect ? (limits_.max_data_segments + 2) * 16 : 0;
  const size_t bytes = ring_bytes + size_ * (sizeof(RequestSlot) + table_bytes_);
  absl::StatusOr<IoMemory> memory = IoMemory::AllocateShared(bytes, name_);
  if (!memory.ok()) return memory.status();
  memory_ = std::move(*memory);
  slots_ = reinterpret_cast<RequestSlot*>(memory_.data() + ring_bytes);
  indirect_ = memory_.data() + ring_bytes + size_ * sizeof(RequestSlot);
  kick_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  call_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (kick_fd_ < 0 || call_fd_ < 0) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("%s: eventfd: %s", name_, strerror(errno)));
  }
  return absl::OkStatus();
}

void VirtioBlkQueue::Kick() noexcept {
  const uint64_t one = 1;
  // An eventfd write fails only when the counter would overflow (the back-end never reads
  // it): the back-end is woken all the same.
  (void)!write(kick_fd_, &one, sizeof(one));
  AddToCounter(counters_.kicks, 1);
}

void VirtioBlkQueue::Break(const char* why) noexcept {
  if (broken_reason_ == nullptr) {
    broken_reason_ = why;
    PX_LOG(kError, "virtio", "%s: the back-end broke the virtqueue protocol (%s): the queue is "
           "stopped and its requests fail", name_.c_str(), why);
  }
  FailAll(EIO);
}

void VirtioBlkQueue::FailAll(int error_number) noexcept {
  dead_ = true;
  for (uint32_t id = 0; id < size_; ++id) {
    if (BdevIo* io = ios_[id]; io != nullptr) {
      ios_[id] = nullptr;
      --in_flight_;
      io->Complete(BdevIoStatus::kFailed, error_number);
    }
  }
}

}  // namespace pollux
