// The layer's bookkeeping of one registered bdev: its channel device, open descriptors, claim,
// removal progress and the statistics of channels already gone. Private.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "bdev_channel.h"
#include "pollux/bdev/bdev.h"
#include "pollux/bdev/bdev_stats.h"
#include "pollux/reactor/io_channel.h"

namespace pollux {

class BdevDesc;

// The IoDevice whose per-thread channels are the bdev's BdevChannels.
class BdevChannelDevice : public IoDevice {
 public:
  explicit BdevChannelDevice(Bdev& bdev) : IoDevice("bdev:" + bdev.name()), bdev_(bdev) {}

 protected:
  std::unique_ptr<ChannelContext> CreateChannelContext() override {
    return std::make_unique<BdevChannel>(bdev_);
  }

 private:
  Bdev& bdev_;
};

class BdevState {
 public:
  explicit BdevState(Bdev& bdev) : channels(bdev) {}

  // Sums the statistics of a channel that is going away (its thread, any time).
  void RetireStats(const BdevIoStats& stats) {
    std::lock_guard lock(mutex);
    retired_stats.Merge(stats);
  }

  BdevChannelDevice channels;

  std::mutex mutex;  // everything below; never taken on the data path
  bool removing = false;
  // Every module's OnBdevRemoved has run: from then on the last close finishes the removal.
  bool modules_told = false;
  std::vector<BdevDesc*> descs;
  const BdevModule* claim_module = nullptr;
  BdevDesc* claim_desc = nullptr;
  BdevIoStats retired_stats;
  std::vector<BdevTimeoutSetting> timeouts;  // descriptors with a timeout (BdevDesc::SetTimeout)
  uint64_t unregister_thread_id = 0;
  absl::AnyInvocable<void(absl::Status)> unregister_done;
};

}  // namespace pollux
