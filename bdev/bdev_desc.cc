#include "pollux/bdev/bdev_desc.h"

#include <mutex>

#include "absl/strings/str_format.h"
#include "bdev_channel.h"
#include "bdev_registry.h"
#include "bdev_state.h"
#include "pollux/env/log.h"
#include "pollux/reactor/thread.h"

namespace pollux {
namespace {

// Stands for a null iovec array in Readv/Writev: with iovcnt 0 the checks refuse it as a
// malformed request, where a null pointer would mean the single-buffer form.
iovec no_iov{};

}  // namespace

absl::StatusOr<std::unique_ptr<BdevDesc>> BdevDesc::Open(std::string_view name, bool writable,
                                                         BdevEventCallback event_cb) {
  return BdevRegistry::Get().Open(name, writable, std::move(event_cb));
}

absl::StatusOr<std::unique_ptr<BdevDesc>> BdevDesc::OpenAndClaim(std::string_view name,
                                                                 BdevModule& module,
                                                                 BdevEventCallback event_cb) {
  auto desc = Open(name, /*writable=*/true, std::move(event_cb));
  if (!desc.ok()) return desc.status();
  if (absl::Status claimed = (*desc)->Claim(module); !claimed.ok()) return claimed;
  return desc;
}

void CloseBdevDesc(std::unique_ptr<BdevDesc> desc, absl::AnyInvocable<void()> done) {
  uint64_t owner = desc->thread_id();
  Thread* current = Thread::Current();
  if (current != nullptr && current->id() == owner) {
    desc.reset();
    return done();
  }
  // Shared between the message and this function: if the message cannot be queued (the
  // thread is gone), the closure is destroyed unrun and the state is still ours.
  struct Close {
    std::unique_ptr<BdevDesc> desc;
    absl::AnyInvocable<void()> done;
  };
  auto close = std::make_shared<Close>(Close{std::move(desc), std::move(done)});
  auto run = [close] {
    close->desc.reset();
    close->done();
  };
  if (RunOnThread(owner, run)) return;
  PX_LOG(kWarning, "bdev", "the thread that opened %s is gone: closing it on this one",
         close->desc->bdev().name());
  run();
}

BdevDesc::~BdevDesc() {
  // No channel may report to a closed descriptor (nor to a new one at its address).
  if (timeout_us_ != 0) PublishTimeout(0, nullptr, nullptr);
  BdevRegistry::Get().Close(*this);
}

absl::Status BdevDesc::Claim(BdevModule& module) {
  return BdevRegistry::Get().Claim(*this, module);
}

void BdevDesc::ReleaseClaim() { BdevRegistry::Get().ReleaseClaim(*this); }

IoChannelRef BdevDesc::GetIoChannel() { return pollux::GetIoChannel(bdev_->state_->channels); }

void BdevDesc::DeliverCompletions(IoChannel& channel) noexcept {
  channel.context<BdevChannel>().DeliverDeferred();
}

BdevIoStats BdevDesc::ChannelStats(IoChannel& channel) {
  return channel.context<BdevChannel>().TotalStats();
}

BdevIoStats BdevDesc::SubmittedStats(IoChannel& channel) {
  return channel.context<BdevChannel>().SubmittedStats();
}

void BdevDesc::Submit(IoChannel& channel, IoType type, iovec* iov, int iovcnt, void* buf,
                      uint64_t offset_blocks, uint64_t num_blocks, BdevIoCallback cb,
                      void* cb_arg) noexcept {
  BdevChannel& bdev_channel = channel.context<BdevChannel>();
  bdev_channel.Submit(WaitingRequest{&bdev_channel, type, writable_, iov, iovcnt, buf,
                                     offset_blocks, num_blocks, cb, cb_arg, this, false, false});
}

void BdevDesc::Abort(IoChannel& channel, void* bio_cb_arg, BdevIoCallback cb,
                     void* cb_arg) noexcept {
  BdevChannel& bdev_channel = channel.context<BdevChannel>();
  bdev_channel.Abort(WaitingRequest{&bdev_channel, IoType::kRead, writable_, nullptr, 0, bio_cb_arg,
                                    0, 0, cb, cb_arg, this, true, false});
}

absl::Status BdevDesc::SetTimeout(uint64_t timeout_us, BdevIoTimeoutCallback cb, void* cb_arg) {
  if (timeout_us != 0 && cb == nullptr) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "bdev_set_timeout: %s: a timeout of %u us needs a callback", bdev_->name(), timeout_us));
  }
  if (timeout_us == 0 && timeout_us_ == 0) return absl::OkStatus();
  PublishTimeout(timeout_us, cb, cb_arg);
  return absl::OkStatus();
}

void BdevDesc::PublishTimeout(uint64_t timeout_us, BdevIoTimeoutCallback cb, void* cb_arg) {
  timeout_us_ = timeout_us;
  BdevState& state = *bdev_->state_;
  {
    std::lock_guard lock(state.mutex);
    std::erase_if(state.timeouts, [this](const BdevTimeoutSetting& s) { return s.desc == this; });
    if (timeout_us != 0) state.timeouts.push_back({this, timeout_us, cb, cb_arg});
  }
  // Channels made from now on read the list themselves; a channel made meanwhile refreshes
  // twice, which changes nothing.
  ForEachChannel(
      state.channels, [](IoChannel& channel) { channel.context<BdevChannel>().RefreshTimeouts(); },
      [](absl::Status) {});
}

void BdevDesc::Forward(IoChannel& channel, BdevIo& io) noexcept {
  channel.context<BdevChannel>().Forward(io, writable_);
}

void BdevDesc::Forward(IoChannel& channel, BdevIo& io, uint64_t offset_blocks) noexcept {
  io.offset_blocks_ = offset_blocks;
  channel.context<BdevChannel>().Forward(io, writable_);
}

void BdevDesc::SubmitCopy(IoChannel& channel, const BdevIo& io, BdevIoCallback cb,
                          void* cb_arg) noexcept {
  const bool data = io.type() == IoType::kRead || io.type() == IoType::kWrite;
  Submit(channel, io.type(), data ? io.iovs() : nullptr, data ? io.iovcnt() : 0, nullptr,
         io.offset_blocks(), io.num_blocks(), cb, cb_arg);
}

void BdevDesc::Read(IoChannel& channel, void* buf, uint64_t offset_blocks, uint64_t num_blocks,
                    BdevIoCallback cb, void* cb_arg) noexcept {
  Submit(channel, IoType::kRead, nullptr, 0, buf, offset_blocks, num_blocks, cb, cb_arg);
}

void BdevDesc::ReadWithoutBuffer(IoChannel& channel, uint64_t offset_blocks, uint64_t num_blocks,
                                 BdevReadDataCallback cb, void* cb_arg) noexcept {
  BdevChannel& bdev_channel = channel.context<BdevChannel>();
  bdev_channel.SubmitReadWithoutBuffer(
      WaitingRequest{&bdev_channel, IoType::kRead, writable_, nullptr, 0, nullptr, offset_blocks,
                     num_blocks, StoreReadDataCallback(cb), cb_arg, this, false, true});
}

void BdevDesc::Readv(IoChannel& channel, iovec* iov, int iovcnt, uint64_t offset_blocks,
                     uint64_t num_blocks, BdevIoCallback cb, void* cb_arg) noexcept {
  Submit(channel, IoType::kRead, iov != nullptr ? iov : &no_iov, iov != nullptr ? iovcnt : 0,
         nullptr, offset_blocks, num_blocks, cb, cb_arg);
}

void BdevDesc::Write(IoChannel& channel, void* buf, uint64_t offset_blocks, uint64_t num_blocks,
                     BdevIoCallback cb, void* cb_arg) noexcept {
  Submit(channel, IoType::kWrite, nullptr, 0, buf, offset_blocks, num_blocks, cb, cb_arg);
}

void BdevDesc::Writev(IoChannel& channel, iovec* iov, int iovcnt, uint64_t offset_blocks,
                      uint64_t num_blocks, BdevIoCallback cb, void* cb_arg) noexcept {
  Submit(channel, IoType::kWrite, iov != nullptr ? iov : &no_iov, iov != nullptr ? iovcnt : 0,
         nullptr, offset_blocks, num_blocks, cb, cb_arg);
}

void BdevDesc::WriteZeroes(IoChannel& channel, uint64_t offset_blocks, uint64_t num_blocks,
                           BdevIoCallback cb, void* cb_arg) noexcept {
  Submit(channel, IoType::kWriteZeroes, nullptr, 0, nullptr, offset_blocks, num_blocks, cb,
         cb_arg);
}

void BdevDesc::Unmap(IoChannel& channel, uint64_t offset_blocks, uint64_t num_blocks,
                     BdevIoCallback cb, void* cb_arg) noexcept {
  Submit(channel, IoType::kUnmap, nullptr, 0, nullptr, offset_blocks, num_blocks, cb, cb_arg);
}

void BdevDesc::Flush(IoChannel& channel, uint64_t offset_blocks, uint64_t num_blocks,
                     BdevIoCallback cb, void* cb_arg) noexcept {
  Submit(channel, IoType::kFlush, nullptr, 0, nullptr, offset_blocks, num_blocks, cb, cb_arg);
}

void BdevDesc::Reset(IoChannel& channel, BdevIoCallback cb, void* cb_arg) noexcept {
  Submit(channel, IoType::kReset, nullptr, 0, nullptr, 0, 0, cb, cb_arg);
}

}  // namespace pollux
