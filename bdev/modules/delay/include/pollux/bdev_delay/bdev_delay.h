// The delay bdev module (SPDK's vbdev_delay): a virtual bdev over a base bdev that holds each
// read's and write's completion for a configured latency after the base completed it. About one
// I/O in a hundred gets the "p99" latency, the others the average, so that a latency test sees
// a tail. Other I/O types complete as the base completes them. For tests of timeouts and of
// latency statistics.
//
// Threads: every function here runs on the app thread (like the RPC methods in delay_rpc.cc);
// I/O runs on any thread. Held completions are released by a timed poller per thread, paused
// while nothing is held, so an idle delay bdev never keeps a reactor awake.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pollux/bdev/bdev.h"
#include "pollux/bdev/bdev_module.h"
#include "pollux/bdev/virtual_bdev_configs.h"

namespace pollux {

// Latencies, in microseconds (SPDK's units).
enum class DelayLatency : uint8_t { kAvgRead = 0, kP99Read, kAvgWrite, kP99Write };
inline constexpr int kDelayLatencyCount = 4;
// The largest latency accepted: one hour.
inline constexpr uint64_t kMaxDelayLatencyUs = 3'600'000'000;

// "avg_read", "p99_read", "avg_write", "p99_write" (bdev_delay_update_latency's names).
const char* DelayLatencyName(DelayLatency latency);

// One delay bdev as configured: what bdev_delay_create takes.
struct DelayBdevOptions {
  std::string base_bdev_name;  // the bdev to sit on; it may not exist yet
  std::string name;
  std::string uuid;                              // empty: the layer generates one
  uint64_t latency_us[kDelayLatencyCount] = {};  // indexed by DelayLatency
};

class DelayModule final : public BdevModule {
 public:
  DelayModule();
  static DelayModule& Get();

  void ExamineConfig(Bdev& bdev) override { configs_.Examine(bdev); }
  // One bdev_delay_create per configured bdev, with its current latencies.
  void WriteConfig(rpc::Json& config) const override;
  int config_order() const override { return 1; }
  void Fini() override { configs_.Clear(); }
  size_t io_context_size() const override;

 private:
  friend absl::StatusOr<Bdev*> CreateDelayBdev(const DelayBdevOptions& options);
  friend void DeleteDelayBdev(std::string_view name, absl::AnyInvocable<void(absl::Status)> done);
  friend void UpdateDelayLatency(std::string_view name, DelayLatency latency, uint64_t latency_us,
                                 absl::AnyInvocable<void(absl::Status)> done);

  // Every delay bdev asked for, attached or waiting for its base.
  VirtualBdevConfigs<DelayBdevOptions> configs_;
};

// Records the delay bdev and creates it now if its base exists (then returns it) or when the
// base registers (then returns nullptr). Each p99 latency must be at least its average (as in
// SPDK). On any error nothing is left behind.
absl::StatusOr<Bdev*> CreateDelayBdev(const DelayBdevOptions& options);

// Unregisters the delay bdev `name` and forgets its configuration (one still waiting for its
// base is just forgotten). Held completions are released when their time comes, so the delete
// finishes at most one latency later. done runs on the calling thread.
void DeleteDelayBdev(std::string_view name, absl::AnyInvocable<void(absl::Status)> done);

// Sets one latency of delay bdev `name` (attached or waiting for its base). It applies to I/Os
// the base completes from now on. As in SPDK it is not checked against the other latency of the
// pair, so that a test can raise both one after the other. done runs on the calling thread.
void UpdateDelayLatency(std::string_view name, DelayLatency latency, uint64_t latency_us,
                        absl::AnyInvocable<void(absl::Status)> done);

}  // namespace pollux
