// Shared fixture of the bdev tests: a ReactorRuntime (two reactors), an "app" Thread on the
// first reactor that initialises and finishes the bdev layer (as the bdev subsystem does), and
// helpers to run I/O from a test and wait for it.
#pragma once

#include <gtest/gtest.h>

#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "pollux/bdev/bdev.h"
#include "pollux/bdev/bdev_desc.h"
#include "pollux/bdev/bdev_module.h"
#include "pollux/rpc/json_rpc.h"
#include "reactor_test_env.h"

namespace pollux::testing {

class BdevTest : public ReactorTest {
 protected:
  // Layer options for SetUp's InitBdevLayer; override for small pools.
  virtual BdevLayerOptions LayerOptions() const { return {}; }

  void SetUp() override;
  void TearDown() override;

  // The thread that initialised the layer (where RPC methods would run).
  Thread* app_thread() const { return app_thread_; }

  // Calls RPC method `method` on the app thread and waits for its reply: the result on
  // success, or the error as a Status (message = the RPC error message).
  absl::StatusOr<rpc::Json> CallRpc(const std::string& method, const rpc::Json& params);

  // Unregisters `name` on the app thread and waits.
  absl::Status Delete(const std::string& name);

  // Whether a bdev `name` is registered (looked up on the app thread).
  bool Exists(const std::string& name);
  // The name of the module holding the write claim on `name`; "" when unclaimed or not found.
  std::string ClaimedBy(const std::string& name);

  Thread* app_thread_ = nullptr;
};

// An open descriptor and a channel on one Thread, for tests that submit I/O and wait for it
// from the test thread. Create, use and destroy it from the test thread; it does its work on
// `thread`.
class IoClient {
 public:
  // Opens `bdev_name` on `thread` and takes a channel. ASSERTs on failure (check ok()).
  IoClient(Thread* thread, const std::string& bdev_name, bool writable = true);
  ~IoClient();  // puts the channel and closes the descriptor on the thread
  IoClient(const IoClient&) = delete;
  IoClient& operator=(const IoClient&) = delete;

  bool ok() const { return desc_ != nullptr; }
  BdevDesc& desc() { return *desc_; }
  IoChannel& channel() { return *channel_; }
  Thread* thread() const { return thread_; }
  // Remove events received so far (counted on the thread).
  int remove_events() const { return remove_events_.load(); }
  // The errno the last completed I/O carried (0 for none).
  int last_error_number() const { return last_error_number_; }

  // Submits one I/O on the thread and waits for its completion; returns its status.
  BdevIoStatus Read(void* buf, uint64_t offset_blocks, uint64_t num_blocks);
  BdevIoStatus Write(const void* buf, uint64_t offset_blocks, uint64_t num_blocks);
  BdevIoStatus Readv(iovec* iov, int iovcnt, uint64_t offset_blocks, uint64_t num_blocks);
  BdevIoStatus Writev(iovec* iov, int iovcnt, uint64_t offset_blocks, uint64_t num_blocks);
  BdevIoStatus WriteZeroes(uint64_t offset_blocks, uint64_t num_blocks);
  BdevIoStatus Unmap(uint64_t offset_blocks, uint64_t num_blocks);
  BdevIoStatus Flush(uint64_t offset_blocks, uint64_t num_blocks);
  BdevIoStatus Reset();

  // Submits with `submit` (called on the thread with desc, channel, cb, cb_arg) and waits.
  using SubmitFn = absl::AnyInvocable<void(BdevDesc&, IoChannel&, BdevIoCallback, void*)>;
  BdevIoStatus Run(SubmitFn submit);

  // This client's channel statistics, read on the thread.
  BdevIoStats Stats();
  // What the callers of this client's channel submitted (BdevDesc::SubmittedStats), on the
  // thread.
  BdevIoStats SubmittedStats();

 private:
  Thread* thread_;
  std::unique_ptr<BdevDesc> desc_;
  IoChannelRef channel_;
  int last_error_number_ = 0;
  std::atomic<int> remove_events_{0};
};

// One I/O (or abort) submitted from a test thread and awaited there: its callback records the
// status, the errno and, with `order` set, its place among callbacks sharing that counter.
struct AwaitedIo {
  std::atomic<bool> done{false};
  std::atomic<BdevIoStatus> status{BdevIoStatus::kSuccess};
  std::atomic<int> error_number{0};
  std::atomic<int>* order = nullptr;
  int position = -1;
  static void Callback(void* arg, BdevIoStatus status, int error_number) {
    auto* io = static_cast<AwaitedIo*>(arg);
    io->status = status;
    io->error_number = error_number;
    if (io->order != nullptr) io->position = io->order->fetch_add(1);
    io->done.store(true, std::memory_order_release);
  }
};

// The iovecs of `len` bytes at `base` cut at `cuts` (sorted, distinct, inside (0, len)).
std::vector<iovec> IovecsAtCuts(uint8_t* base, size_t len, std::vector<size_t> cuts);
// Cuts `len` bytes at `base` into 1 to max_iovs pieces at random positions that are multiples
// of `granularity` (1: anywhere, which makes the layer bounce for O_DIRECT; the block size: the
// iovecs reach the kernel as they are).
std::vector<iovec> RandomIovecs(uint8_t* base, size_t len, int max_iovs, size_t granularity,
                                std::mt19937_64& rng);

}  // namespace pollux::testing
