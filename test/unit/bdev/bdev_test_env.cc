#include "bdev_test_env.h"

#include <algorithm>
#include <atomic>

#include "pollux/rpc/method_registry.h"

namespace pollux::testing {

void BdevTest::SetUp() {
  ReactorTest::SetUp();
  if (HasFatalFailure()) return;
  app_thread_ = CreateThread("bdev_test_app", 0);
  ASSERT_NE(app_thread_, nullptr);
  std::atomic<bool> done{false};
  absl::Status status;
  RunOn(app_thread_, [&] {
    InitBdevLayer(LayerOptions(), [&](absl::Status s) {
      status = std::move(s);
      done = true;
    });
  });
  ASSERT_TRUE(WaitUntil([&] { return done.load(); })) << "InitBdevLayer did not finish";
  ASSERT_TRUE(status.ok()) << status;
}

void BdevTest::TearDown() {
  if (app_thread_ != nullptr && BdevLayerInitialized()) {
    std::atomic<bool> done{false};
    RunOn(app_thread_, [&done] { FiniBdevLayer([&done] { done = true; }); });
    EXPECT_TRUE(WaitUntil([&] { return done.load(); })) << "FiniBdevLayer did not finish";
  }
  if (app_thread_ != nullptr) ExitThread(app_thread_);
  app_thread_ = nullptr;
  ReactorTest::TearDown();
}

absl::StatusOr<rpc::Json> BdevTest::CallRpc(const std::string& method, const rpc::Json& params) {
  std::atomic<bool> done{false};
  rpc::RpcReply reply;
  RunOn(app_thread_, [&] {
    rpc::MethodRegistry::Global().Call(method, params, [&](rpc::RpcReply r) {
      reply = std::move(r);
      done = true;
    });
  });
  if (!WaitUntil([&] { return done.load(); })) return absl::DeadlineExceededError(method);
  if (reply.ok) return reply.result;
  return absl::UnknownError(reply.message);
}

absl::Status BdevTest::Delete(const std::string& name) {
  std::atomic<bool> done{false};
  absl::Status result;
  RunOn(app_thread_, [&] {
    DeleteBdev(name, nullptr, [&](absl::Status s) {
      result = s;
      done = true;
    });
  });
  if (!WaitUntil([&] { return done.load(); })) return absl::DeadlineExceededError(name);
  return result;
}

bool BdevTest::Exists(const std::string& name) {
  return CallOn(app_thread_, [&] { return FindBdev(name) != nullptr; });
}

std::string BdevTest::ClaimedBy(const std::string& name) {
  return CallOn(app_thread_, [&]() -> std::string {
    Bdev* bdev = FindBdev(name);
    const BdevModule* claimer = bdev != nullptr ? bdev->claimed_by() : nullptr;
    return claimer != nullptr ? claimer->name() : "";
  });
}

IoClient::IoClient(Thread* thread, const std::string& bdev_name, bool writable)
    : thread_(thread) {
  absl::Status status;
  RunOn(thread_, [&] {
    auto desc = BdevDesc::Open(bdev_name, writable, [this](BdevEvent event, Bdev&) {
      if (event == BdevEvent::kRemove) ++remove_events_;
    });
    if (!desc.ok()) {
      status = desc.status();
      return;
    }
    desc_ = std::move(*desc);
    channel_ = desc_->GetIoChannel();
  });
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_TRUE(!desc_ || channel_) << "no channel for " << bdev_name;
}

IoClient::~IoClient() {
  if (desc_ == nullptr) return;
  RunOn(thread_, [this] {
    channel_.reset();
    desc_.reset();
  });
}

BdevIoStatus IoClient::Run(SubmitFn submit) {
  struct Wait {
    std::atomic<bool> done{false};
    BdevIoStatus status = BdevIoStatus::kFailed;
    int error_number = 0;
  } wait;
  RunOn(thread_, [&] {
    submit(*desc_, *channel_,
           [](void* arg, BdevIoStatus status, int error_number) {
             auto* w = static_cast<Wait*>(arg);
             w->status = status;
             w->error_number = error_number;
             w->done.store(true, std::memory_order_release);
           },
           &wait);
  });
  if (!WaitUntil([&] { return wait.done.load(std::memory_order_acquire); })) {
    ADD_FAILURE() << "I/O did not complete";
    std::abort();  // the callback would later write to this stack frame
  }
  last_error_number_ = wait.error_number;
  return wait.status;
}

BdevIoStatus IoClient::Read(void* buf, uint64_t offset_blocks, uint64_t num_blocks) {
  return Run([=](BdevDesc& d, IoChannel& c, BdevIoCallback cb, void* arg) {
    d.Read(c, buf, offset_blocks, num_blocks, cb, arg);
  });
}

BdevIoStatus IoClient::Write(const void* buf, uint64_t offset_blocks, uint64_t num_blocks) {
  return Run([=](BdevDesc& d, IoChannel& c, BdevIoCallback cb, void* arg) {
    d.Write(c, const_cast<void*>(buf), offset_blocks, num_blocks, cb, arg);
  });
}

BdevIoStatus IoClient::Readv(iovec* iov, int iovcnt, uint64_t offset_blocks,
                             uint64_t num_blocks) {
  return Run([=](BdevDesc& d, IoChannel& c, BdevIoCallback cb, void* arg) {
    d.Readv(c, iov, iovcnt, offset_blocks, num_blocks, cb, arg);
  });
}

BdevIoStatus IoClient::Writev(iovec* iov, int iovcnt, uint64_t offset_blocks,
                              uint64_t num_blocks) {
  return Run([=](BdevDesc& d, IoChannel& c, BdevIoCallback cb, void* arg) {
    d.Writev(c, iov, iovcnt, offset_blocks, num_blocks, cb, arg);
  });
}

BdevIoStatus IoClient::WriteZeroes(uint64_t offset_blocks, uint64_t num_blocks) {
  return Run([=](BdevDesc& d, IoChannel& c, BdevIoCallback cb, void* arg) {
    d.WriteZeroes(c, offset_blocks, num_blocks, cb, arg);
  });
}

BdevIoStatus IoClient::Unmap(uint64_t offset_blocks, uint64_t num_blocks) {
  return Run([=](BdevDesc& d, IoChannel& c, BdevIoCallback cb, void* arg) {
    d.Unmap(c, offset_blocks, num_blocks, cb, arg);
  });
}

BdevIoStatus IoClient::Flush(uint64_t offset_blocks, uint64_t num_blocks) {
  return Run([=](BdevDesc& d, IoChannel& c, BdevIoCallback cb, void* arg) {
    d.Flush(c, offset_blocks, num_blocks, cb, arg);
  });
}

BdevIoStatus IoClient::Reset() {
  return Run([](BdevDesc& d, IoChannel& c, BdevIoCallback cb, void* arg) { d.Reset(c, cb, arg); });
}

BdevIoStats IoClient::Stats() {
  return CallOn(thread_, [this] { return BdevDesc::ChannelStats(*channel_); });
}

BdevIoStats IoClient::SubmittedStats() {
  return CallOn(thread_, [this] { return BdevDesc::SubmittedStats(*channel_); });
}

std::vector<iovec> RandomIovecs(uint8_t* base, size_t len, int max_iovs, size_t granularity,
                                std::mt19937_64& rng) {
  int count = std::uniform_int_distribution<int>(1, max_iovs)(rng);
  size_t units = len / granularity;
  std::vector<size_t> cuts;
  for (int i = 1; i < count && units > 1; ++i) {
    cuts.push_back(std::uniform_int_distribution<size_t>(1, units - 1)(rng) * granularity);
  }
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  return IovecsAtCuts(base, len, cuts);
}

std::vector<iovec> IovecsAtCuts(uint8_t* base, size_t len, std::vector<size_t> cuts) {
  cuts.push_back(len);
  std::vector<iovec> iovs;
  size_t start = 0;
  for (size_t cut : cuts) {
    iovs.push_back({base + start, cut - start});
    start = cut;
  }
  return iovs;
}

}  // namespace pollux::testing
