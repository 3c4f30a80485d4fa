// The RAID0 bdev: the mapping of blocks to bases and the I/O path (raid0.h explains the layout).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "raid0.h"
#include "raid0_layout.h"

namespace raid0 {

// One base as a thread sees it: its descriptor (the RAID's claim, which outlives every
// channel) beside this thread's channel of it, so that Submit finds both in one place.
struct BaseChannel {
  pollux::BdevDesc* desc;
  pollux::IoChannelRef channel;
};

// Per-thread state: every base, in base order.
struct RaidChannel final : pollux::ChannelContext {
  std::vector<BaseChannel> bases;
};

// A request the RAID cut into one per base (UNMAP, WRITE_ZEROES, FLUSH, RESET): the per-I/O
// scratch space of the original (BdevModule::io_context_size).
struct FanOut {
  uint32_t outstanding = 0;
  pollux::BdevIoStatus status = pollux::BdevIoStatus::kSuccess;
  int error_number = 0;
};

class RaidBdev final : public pollux::Bdev {
 public:
  // `bases` are the claimed descriptors of `raid` (all present), in order.
  RaidBdev(Raid& raid, pollux::BdevProperties properties, uint32_t strip_shift);

  void Submit(pollux::BdevIo& io) noexcept override;
  bool IoTypeSupported(pollux::IoType type) const override;
  std::unique_ptr<pollux::ChannelContext> CreateChannel() override;
  void DumpInfo(pollux::rpc::Json& driver_specific) const override;
  void Destruct(absl::AnyInvocable<void()> done) override;

  Raid& raid() const { return raid_; }

 private:
  // Cuts a request the layer does not split into one per base it touches.
  void SubmitFanOut(pollux::BdevIo& io) noexcept;
  static void FanOutDone(void* cb_arg, pollux::BdevIoStatus status, int error_number);

  Raid& raid_;
  const uint32_t base_count_;
  const uint32_t strip_shift_;  // strip size in blocks is 1 << strip_shift_
  const uint64_t strip_mask_;
  const int base_count_shift_;  // log2 of base_count_ when a power of two, else -1
};

}  // namespace raid0
