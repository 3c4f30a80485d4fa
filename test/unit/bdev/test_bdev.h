// A RAM bdev for tests of the layer itself: any properties, a chosen set of I/O types, a log
// of what reached it (to check splitting and emulation), and completions either inline or
// held until the test releases them (I/O in flight on purpose).
#pragma once

#include <sys/uio.h>

#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <vector>

#include "pollux/bdev/bdev.h"
#include "pollux/bdev/bdev_desc.h"
#include "pollux/bdev/bdev_module.h"

namespace pollux::testing {

class TestBdevModule : public BdevModule {
 public:
  TestBdevModule() : BdevModule("test") {}
  static TestBdevModule& Get();
  size_t io_context_size() const override { return 16; }
};

// What one I/O looked like when it reached the module.
struct SeenIo {
  IoType type;
  uint64_t offset_blocks;
  uint64_t num_blocks;
  int iovcnt;
  bool aligned;  // every iovec base and length met required_alignment
};

class TestBdev : public Bdev {
 public:
  // Supports READ, WRITE, FLUSH, RESET by default (no UNMAP, no WRITE_ZEROES).
  explicit TestBdev(BdevProperties properties)
      : Bdev(TestBdevModule::Get(), std::move(properties)),
        data_(static_cast<size_t>(block_size() * block_count())) {}

  uint32_t supported_types = (1u << static_cast<int>(IoType::kRead)) |
                             (1u << static_cast<int>(IoType::kWrite)) |
                             (1u << static_cast<int>(IoType::kFlush)) |
                             (1u << static_cast<int>(IoType::kReset));
  // Hold completions until Release() (set before the I/O is submitted).
  std::atomic<bool> hold{false};
  // Complete the next N I/O with this status instead of doing them.
  std::atomic<int> fail_next{0};
  BdevIoStatus fail_status = BdevIoStatus::kFailed;
  int fail_errno = 0;  // the errno those failures carry

  bool IoTypeSupported(IoType type) const override {
    return (supported_types >> static_cast<int>(type)) & 1;
  }

  void Submit(BdevIo& io) noexcept override {
    bool aligned = true;
    for (int i = 0; i < io.iovcnt(); ++i) {
      uint64_t bits = reinterpret_cast<uintptr_t>(io.iovs()[i].iov_base) | io.iovs()[i].iov_len;
      if (bits & (required_alignment() - 1)) aligned = false;
    }
    {
      std::lock_guard lock(mutex_);
      seen_.push_back({io.type(), io.offset_blocks(), io.num_blocks(), io.iovcnt(), aligned});
    }
    // The module context is ours: prove it is usable and private to this I/O.
    io.module_context<uint64_t>() = io.offset_blocks();
    if (fail_next.load() > 0) {
      fail_next.fetch_sub(1);
      return io.Complete(fail_status, fail_errno);
    }
    Do(io);
    if (hold.load()) {
      std::lock_guard lock(mutex_);
      held_.push_back(&io);
      return;
    }
    io.Complete(BdevIoStatus::kSuccess);
  }

  // Completes every held I/O. Call on the thread that submitted them.
  size_t Release(BdevIoStatus status = BdevIoStatus::kSuccess) {
    std::deque<BdevIo*> held;
    {
      std::lock_guard lock(mutex_);
      held.swap(held_);
    }
    for (BdevIo* io : held) io->Complete(status);
    return held.size();
  }
  size_t held_count() {
    std::lock_guard lock(mutex_);
    return held_.size();
  }

  std::vector<SeenIo> seen() {
    std::lock_guard lock(mutex_);
    return seen_;
  }
  void ClearSeen() {
    std::lock_guard lock(mutex_);
    seen_.clear();
  }
  std::vector<char>& data() { return data_; }

 private:
  void Do(BdevIo& io) {
    char* base = data_.data() + io.offset_blocks() * block_size();
    uint64_t bytes = io.num_blocks() * block_size();
    switch (io.type()) {
      case IoType::kRead:
      case IoType::kWrite:
        for (int i = 0; i < io.iovcnt(); ++i) {
          const iovec& v = io.iovs()[i];
          if (io.type() == IoType::kRead) {
            std::memcpy(v.iov_base, base, v.iov_len);
          } else {
            std::memcpy(base, v.iov_base, v.iov_len);
          }
          base += v.iov_len;
        }
        break;
      case IoType::kWriteZeroes:
      case IoType::kUnmap:
        std::memset(base, 0, bytes);
        break;
      default:
        break;
    }
  }

  std::vector<char> data_;
  std::mutex mutex_;
  std::vector<SeenIo> seen_;
  std::deque<BdevIo*> held_;
};

// Registers a TestBdev on the calling Thread; returns it (owned by the layer) or nullptr.
inline TestBdev* RegisterTestBdev(BdevProperties properties) {
  auto bdev = std::make_unique<TestBdev>(std::move(properties));
  auto registered = RegisterBdev(std::move(bdev));
  return registered.ok() ? static_cast<TestBdev*>(*registered) : nullptr;
}

struct BaseChannel final : ChannelContext {
  IoChannelRef base;
};

// The smallest virtual bdev: every I/O forwarded to the base (properties as given).
class ForwardingBdev final : public Bdev {
 public:
  ForwardingBdev(BdevProperties properties, std::unique_ptr<BdevDesc> base)
      : Bdev(TestBdevModule::Get(), std::move(properties)), base_(std::move(base)) {}
  void Submit(BdevIo& io) noexcept override {
    base_->Forward(*io.module_channel<BaseChannel>().base, io);
  }
  bool IoTypeSupported(IoType type) const override { return base_->bdev().Supports(type); }
  std::unique_ptr<ChannelContext> CreateChannel() override {
    auto channel = std::make_unique<BaseChannel>();
    channel->base = base_->GetIoChannel();
    return channel;
  }
  void Destruct(absl::AnyInvocable<void()> done) override {
    CloseBdevDesc(std::move(base_), std::move(done));
  }

 private:
  std::unique_ptr<BdevDesc> base_;
};

}  // namespace pollux::testing
