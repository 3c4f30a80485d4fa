#include "nbd_connection.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_format.h"
#include "nbd_exports.h"
#include "nbd_protocol.h"
#include "pollux/bdev/bdev.h"
#include "pollux/env/log.h"

namespace pollux::nbd {
namespace {

constexpr size_t kInputBufferSize = 256 * 1024;
constexpr size_t kBufferAlignment = 4096;
constexpr int kMaxIovecs = 64;

uint32_t ErrorFor(BdevIoStatus status, int error_number) {
  switch (status) {
    case BdevIoStatus::kSuccess:
      return 0;
    case BdevIoStatus::kFailed:
      return error_number != 0 ? NbdErrorFromErrno(error_number) : kEio;
    case BdevIoStatus::kNoMemory:
      return kEnomem;
    case BdevIoStatus::kNotSupported:
      return kEnotsup;
    case BdevIoStatus::kOutOfRange:
    case BdevIoStatus::kInvalid:
      return kEinval;
    default:
      return kEio;  // aborted (the bdev went away or was reset), miscompare
  }
}

}  // namespace

NbdConnection::NbdConnection(uint64_t id, int fd, std::string peer)
    : id_(id), fd_(fd), peer_(std::move(peer)), handshake_(*this), in_(kInputBufferSize) {
  for (Slot& slot : slots_) {
    slot.connection = this;
    slot.next = free_slots_;
    free_slots_ = &slot;
  }
}

NbdConnection::~NbdConnection() {
  for (Slot& slot : slots_) std::free(slot.data);
  close(fd_);
}

void NbdConnection::Start() {
  thread_ = Thread::Current();
  handshake_.Start(handshake_out_);
  PollerOptions options;
  // Readable is what an idle client does next; the reactor watches the socket while it
  // sleeps or once this poller is parked.
  options.wake_fd = fd_;
  // Stay awake only for work this poller can do now: replies the socket will take, or a
  // whole request already read with a slot free for it. What waits for the bdev wakes the
  // reactor by itself.
  options.arm = [this] {
    bool can_send = HasPendingOutput() && !send_retry_;
    bool can_take =
        phase_ == Phase::kServing && free_slots_ != nullptr && in_end_ - in_begin_ >= kRequestSize;
    return !can_send && !can_take;
  };
  options.disarm = [] {};
  poller_ = PollerHandle(thread_->RegisterPoller(
      "nbd_connection", [this] { return Poll(); }, std::move(options)));
  PollerOptions deadline;
  deadline.period = std::chrono::seconds(kHandshakeSeconds);
  handshake_timer_ = PollerHandle(thread_->RegisterPoller(
      "nbd_handshake_deadline",
      [this] {
        if (phase_ == Phase::kHandshake) {
          Die(absl::StrFormat("no export chosen within %u s", kHandshakeSeconds), true);
          MaybeFinish();
        }
        return PollResult::kBusy;
      },
      std::move(deadline)));
}

void NbdConnection::Kill(const std::string& reason) {
  Die(reason, false);
  MaybeFinish();
}

// ---- HandshakeExports ----

absl::StatusOr<ExportInfo> NbdConnection::Find(std::string_view name) {
  std::optional<ExportEntry> entry = LookupExport(name);
  if (!entry) return absl::NotFoundError(absl::StrFormat("no export \"%s\"", name));
  Bdev* bdev = FindBdev(entry->bdev_name);
  if (bdev == nullptr) {
    return absl::NotFoundError(
        absl::StrFormat("export \"%s\": bdev %s is gone", entry->name, entry->bdev_name));
  }
  ExportInfo info;
  info.name = entry->name;
  info.description = entry->description;
  info.size_bytes = bdev->size_bytes();
  info.block_size = bdev->block_size();
  info.readonly = entry->readonly;
  info.can_trim = !entry->readonly && bdev->Supports(IoType::kUnmap);
  return info;
}

std::vector<std::string> NbdConnection::Names() { return ExportNames(); }

absl::Status NbdConnection::Open(const ExportInfo& info) {
  std::optional<ExportEntry> entry = LookupExport(info.name);
  if (!entry) return absl::NotFoundError(absl::StrFormat("no export \"%s\"", info.name));
  absl::StatusOr<std::unique_ptr<BdevDesc>> desc =
      BdevDesc::Open(entry->bdev_name, !entry->readonly, [id = id_](BdevEvent event, Bdev& bdev) {
        // Not from inside the layer's call: ending closes this very descriptor.
        if (event == BdevEvent::kRemove) {
          KillConnectionLater(id, absl::StrFormat("bdev %s was removed", bdev.name()));
        }
      });
  if (!desc.ok()) {
    return absl::Status(desc.status().code(),
                        absl::StrFormat("export \"%s\": %s", info.name, desc.status().message()));
  }
  IoChannelRef channel = (*desc)->GetIoChannel();
  if (!channel)
    return absl::UnavailableError(absl::StrFormat("export \"%s\": bdev is going away", info.name));
  if (!BindConnection(id_, info.name)) {
    return absl::NotFoundError(absl::StrFormat("export \"%s\" was removed", info.name));
  }
  bdev_blocks_ = (*desc)->bdev().block_count();
  desc_ = std::move(*desc);
  channel_ = std::move(channel);
  export_name_ = info.name;
  return absl::OkStatus();
}

// ---- Polling ----

PollResult NbdConnection::Poll() {
  bool busy = FlushReplies();
  if (phase_ == Phase::kHandshake) {
    busy |= PollHandshake();
  } else if (phase_ == Phase::kServing) {
    busy |= ReceiveRequests();
  }
  if (MaybeFinish()) return PollResult::kBusy;  // `this` is gone
  return busy ? PollResult::kBusy : PollResult::kIdle;
}

bool NbdConnection::PollHandshake() {
  bool busy = FillInput();
  if (phase_ != Phase::kHandshake) return busy;
  size_t used = handshake_.Consume(in_.data() + in_begin_, in_end_ - in_begin_, handshake_out_);
  in_begin_ += used;
  switch (handshake_.state()) {
    case Handshake::State::kNegotiating:
      break;
    case Handshake::State::kClosed:
      FlushReplies();  // the last option reply (ABORT's ack, an error), if the socket takes it
      Die(handshake_.close_reason(), true);
      return true;
    case Handshake::State::kTransmission: {
      const ExportInfo& chosen = handshake_.chosen();
      params_.size_bytes = chosen.size_bytes;
      params_.block_size = chosen.block_size;
      params_.max_payload = chosen.max_payload;
      params_.readonly = chosen.readonly;
      params_.can_trim = chosen.can_trim;
      params_.structured_replies = handshake_.structured_replies();
      params_.base_allocation = handshake_.base_allocation();
      phase_ = Phase::kServing;
      handshake_timer_.reset();
      PX_LOG(kInfo, "nbd", "client %s uses export \"%s\"%s", peer_, export_name_,
             params_.structured_replies ? " with structured replies" : "");
      // Requests may have come with the last option.
      ReceiveRequests();
      return true;
    }
  }
  return used != 0 || busy;
}

bool NbdConnection::FillInput() {
  if (in_begin_ == in_end_) {
    in_begin_ = in_end_ = 0;
  } else if (in_begin_ > in_.size() / 2) {
    std::memmove(in_.data(), in_.data() + in_begin_, in_end_ - in_begin_);
    in_end_ -= in_begin_;
    in_begin_ = 0;
  }
  if (in_end_ == in_.size()) return false;
  ssize_t n = recv(fd_, in_.data() + in_end_, in_.size() - in_end_, MSG_DONTWAIT);
  if (n > 0) {
    in_end_ += static_cast<size_t>(n);
    return true;
  }
  if (n == 0) {
    Die(phase_ == Phase::kHandshake ? "the client left during the handshake"
                                    : "the client closed the connection",
        false);
  } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    Die(absl::StrFormat("receive: %s", strerror(errno)), false);
  }
  return false;
}

bool NbdConnection::ReceiveRequests() {
  bool busy = false;
  while (phase_ == Phase::kServing) {
    bool progress;
    if (receiving_ != nullptr) {
      progress = ReceivePayload();
    } else if (discard_left_ != 0) {
      progress = DiscardPayload();
    } else if (in_end_ - in_begin_ < kRequestSize) {
      progress = FillInput();
    } else {
      progress = TakeRequest();
    }
    if (!progress) break;
    busy = true;
  }
  return busy;
}

bool NbdConnection::TakeRequest() {
  if (free_slots_ == nullptr) return false;  // the client waits for replies first
  Request request;
  if (!DecodeRequest(in_.data() + in_begin_, request)) {
    Die("a request without the NBD request magic", true);
    return false;
  }
  uint32_t error = CheckRequest(request, params_);
  const bool needs_buffer = error == 0 && (request.type == kCmdRead || request.type == kCmdWrite);
  Slot* slot = free_slots_;
  if (needs_buffer && slot->capacity < request.length &&
      buffer_bytes_ - slot->capacity + request.length > kBufferBudget && busy_slots_ != 0) {
    return false;  // buffers free up as requests complete and their replies go out
  }
  in_begin_ += kRequestSize;
  if (request.type == kCmdDisconnect && error == 0) {
    PX_LOG(kInfo, "nbd", "client %s disconnects", peer_);
    phase_ = Phase::kDraining;
    return true;
  }
  free_slots_ = slot->next;
  slot->next = nullptr;
  ++busy_slots_;
  slot->request = request;
  slot->received = 0;
  slot->flushing_for_fua = false;
  if (error == 0 && needs_buffer && !EnsureBuffer(slot, request.length)) error = kEnomem;
  if (error != 0) {
    discard_left_ = PayloadLength(request);
    Reply(slot, error);
    return true;
  }
  if (request.type == kCmdWrite) {
    receiving_ = slot;
  } else {
    Submit(slot);
  }
  return true;
}

bool NbdConnection::ReceivePayload() {
  Slot* slot = receiving_;
  size_t want = slot->request.length - slot->received;
  size_t have = in_end_ - in_begin_;
  if (have != 0) {
    size_t n = std::min(want, have);
    std::memcpy(slot->data + slot->received, in_.data() + in_begin_, n);
    in_begin_ += n;
    slot->received += static_cast<uint32_t>(n);
  } else {
    // Large payloads go straight into the request's buffer.
    ssize_t n = recv(fd_, slot->data + slot->received, want, MSG_DONTWAIT);
    if (n <= 0) {
      if (n == 0) {
        Die("the client closed the connection in the middle of a write", true);
      } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        Die(absl::StrFormat("receive: %s", strerror(errno)), false);
      }
      return false;
    }
    slot->received += static_cast<uint32_t>(n);
  }
  if (slot->received == slot->request.length) {
    receiving_ = nullptr;
    Submit(slot);
  }
  return true;
}

bool NbdConnection::DiscardPayload() {
  if (in_begin_ == in_end_ && !FillInput()) return false;
  size_t n = static_cast<size_t>(std::min<uint64_t>(discard_left_, in_end_ - in_begin_));
  in_begin_ += n;
  discard_left_ -= n;
  return true;
}

// ---- Requests ----

void NbdConnection::Submit(Slot* slot) {
  const Request& r = slot->request;
  const uint64_t offset_blocks = r.offset / params_.block_size;
  const uint64_t num_blocks = r.length / params_.block_size;
  ++in_flight_;
  switch (r.type) {
    case kCmdRead:
      return desc_->Read(*channel_, slot->data, offset_blocks, num_blocks, OnIoDone, slot);
    case kCmdWrite:
      return desc_->Write(*channel_, slot->data, offset_blocks, num_blocks, OnIoDone, slot);
    case kCmdFlush:
      return desc_->Flush(*channel_, 0, bdev_blocks_, OnIoDone, slot);
    case kCmdTrim:
      return desc_->Unmap(*channel_, offset_blocks, num_blocks, OnIoDone, slot);
    case kCmdWriteZeroes:
      return desc_->WriteZeroes(*channel_, offset_blocks, num_blocks, OnIoDone, slot);
    default:
      // BLOCK_STATUS: every block is allocated data; nothing to ask the bdev.
      --in_flight_;
      return Reply(slot, 0);
  }
}

void NbdConnection::OnIoDone(void* arg, BdevIoStatus status, int error_number) {
  Slot* slot = static_cast<Slot*>(arg);
  slot->connection->Completed(slot, status, error_number);
}

void NbdConnection::Completed(Slot* slot, BdevIoStatus status, int error_number) {
  --in_flight_;
  uint32_t error = ErrorFor(status, error_number);
  if (error == 0 && (slot->request.flags & kCmdFlagFua) != 0 && !slot->flushing_for_fua &&
      phase_ != Phase::kDead) {
    // FUA: the reply waits until the data is on stable storage.
    slot->flushing_for_fua = true;
    ++in_flight_;
    desc_->Flush(*channel_, 0, bdev_blocks_, OnIoDone, slot);
    return;
  }
  Reply(slot, error);
  MaybeFinish();
}

void NbdConnection::Reply(Slot* slot, uint32_t error) {
  if (phase_ == Phase::kDead) return ReleaseSlot(slot);
  slot->error = error;
  slot->header_size =
      static_cast<uint8_t>(EncodeReplyHeader(slot->header, slot->request, error, params_));
  slot->next = nullptr;
  if (out_tail_ != nullptr) {
    out_tail_->next = slot;
  } else {
    out_head_ = slot;
  }
  out_tail_ = slot;
}

bool NbdConnection::FlushReplies() {
  if (phase_ == Phase::kDead || !HasPendingOutput()) return false;
  iovec iov[kMaxIovecs];
  int count = 0;
  size_t skip = out_sent_;
  if (handshake_sent_ < handshake_out_.size()) {
    iov[count++] = {handshake_out_.data() + handshake_sent_,
                    handshake_out_.size() - handshake_sent_};
  }
  for (Slot* slot = out_head_; slot != nullptr && count + 2 <= kMaxIovecs; slot = slot->next) {
    const bool with_data = slot->error == 0 && slot->request.type == kCmdRead;
    size_t header_left = slot->header_size > skip ? slot->header_size - skip : 0;
    if (header_left != 0) {
      iov[count++] = {slot->header + (slot->header_size - header_left), header_left};
    }
    if (with_data) {
      size_t data_skip = skip > slot->header_size ? skip - slot->header_size : 0;
      iov[count++] = {slot->data + data_skip, slot->request.length - data_skip};
    }
    skip = 0;
  }
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = static_cast<size_t>(count);
  ssize_t n = sendmsg(fd_, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      StartSendRetry();
    } else {
      Die(absl::StrFormat("send: %s", strerror(errno)), false);
    }
    return false;
  }
  size_t sent = static_cast<size_t>(n);
  if (handshake_sent_ < handshake_out_.size()) {
    size_t part = std::min(sent, handshake_out_.size() - handshake_sent_);
    handshake_sent_ += part;
    sent -= part;
    if (handshake_sent_ == handshake_out_.size()) {
      handshake_out_.clear();
      handshake_sent_ = 0;
    }
  }
  while (out_head_ != nullptr && sent != 0) {
    Slot* slot = out_head_;
    const bool with_data = slot->error == 0 && slot->request.type == kCmdRead;
    size_t total = slot->header_size + (with_data ? slot->request.length : 0);
    size_t part = std::min(sent, total - out_sent_);
    out_sent_ += part;
    sent -= part;
    if (out_sent_ < total) break;
    out_sent_ = 0;
    out_head_ = slot->next;
    if (out_head_ == nullptr) out_tail_ = nullptr;
    ReleaseSlot(slot);
  }
  if (HasPendingOutput()) {
    StartSendRetry();  // the socket is full: the client reads slower than we answer
  } else {
    send_retry_.reset();
  }
  return true;
}

void NbdConnection::StartSendRetry() {
  if (send_retry_) return;
  // The reactor wakes for readable sockets only: while the client's socket is full, a timer
  // tries again (the client reading nothing costs a wake-up per millisecond, not a core).
  PollerOptions options;
  options.period = std::chrono::milliseconds(1);
  send_retry_ = PollerHandle(thread_->RegisterPoller(
      "nbd_send_retry",
      [this] {
        bool busy = FlushReplies();
        if (MaybeFinish()) return PollResult::kBusy;
        return busy ? PollResult::kBusy : PollResult::kIdle;
      },
      std::move(options)));
}

bool NbdConnection::EnsureBuffer(Slot* slot, size_t size) {
  if (slot->capacity >= size) return true;
  size_t rounded = (size + kBufferAlignment - 1) & ~(kBufferAlignment - 1);
  void* data = std::aligned_alloc(kBufferAlignment, rounded);
  if (data == nullptr) return false;
  std::free(slot->data);
  buffer_bytes_ = buffer_bytes_ - slot->capacity + rounded;
  slot->data = static_cast<uint8_t*>(data);
  slot->capacity = rounded;
  return true;
}

void NbdConnection::ReleaseSlot(Slot* slot) {
  if (slot->capacity > kKeptBufferSize) {
    std::free(slot->data);
    buffer_bytes_ -= slot->capacity;
    slot->data = nullptr;
    slot->capacity = 0;
  }
  slot->next = free_slots_;
  free_slots_ = slot;
  --busy_slots_;
}

// ---- The end ----

void NbdConnection::Die(const std::string& reason, bool client_fault) {
  if (phase_ == Phase::kDead) return;
  if (client_fault) {
    PX_LOG(kWarning, "nbd", "client %s disconnected: %s", peer_, reason);
  } else {
    PX_LOG(kInfo, "nbd", "client %s: %s", peer_, reason);
  }
  phase_ = Phase::kDead;
  shutdown(fd_, SHUT_RDWR);
  while (out_head_ != nullptr) {
    Slot* slot = out_head_;
    out_head_ = slot->next;
    ReleaseSlot(slot);
  }
  out_tail_ = nullptr;
  out_sent_ = 0;
  if (receiving_ != nullptr) {
    ReleaseSlot(receiving_);
    receiving_ = nullptr;
  }
  send_retry_.reset();
}

bool NbdConnection::MaybeFinish() {
  if (in_flight_ != 0) return false;
  if (phase_ == Phase::kDraining) {
    // Every reply is queued: one last try to send them, then close.
    FlushReplies();
    Die("disconnected as asked", false);
  }
  if (phase_ != Phase::kDead) return false;
  poller_.reset();
  handshake_timer_.reset();
  send_retry_.reset();
  channel_.reset();
  desc_.reset();
  ConnectionEnded(id_);
  Thread* thread = thread_;
  delete this;
  thread->Exit();
  return true;
}

}  // namespace pollux::nbd
