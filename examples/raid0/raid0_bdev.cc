#include "raid0_bdev.h"

#include <utility>

namespace raid0 {

using pollux::BdevIo;
using pollux::BdevIoStatus;
using pollux::IoType;

RaidBdev::RaidBdev(Raid& raid, pollux::BdevProperties properties, uint32_t strip_shift)
    : Bdev(Raid0Module::Get(), std::move(properties)),
      raid_(raid),
      base_count_(static_cast<uint32_t>(raid.bases.size())),
      strip_shift_(strip_shift),
      strip_mask_((uint64_t{1} << strip_shift) - 1),
      base_count_shift_((base_count_ & (base_count_ - 1)) == 0 ? __builtin_ctz(base_count_) : -1) {}

void RaidBdev::Submit(BdevIo& io) noexcept {
  // READ and WRITE are the first two types: one compare.
  static_assert(static_cast<int>(IoType::kRead) == 0 && static_cast<int>(IoType::kWrite) == 1);
  if (static_cast<uint8_t>(io.type()) > static_cast<uint8_t>(IoType::kWrite)) [[unlikely]]
    return SubmitFanOut(io);
  // The layer cut the request at strip boundaries: it lies in one strip, on one base. A
  // power-of-two number of bases needs no division (tens of cycles for a 64-bit divide).
  const uint64_t strip = io.offset_blocks() >> strip_shift_;
  uint32_t base;
  uint64_t row;
  if (base_count_shift_ >= 0) [[likely]] {
    base = static_cast<uint32_t>(strip & (base_count_ - 1));
    row = strip >> base_count_shift_;
  } else {
    base = static_cast<uint32_t>(strip % base_count_);
    row = strip / base_count_;
  }
  const uint64_t base_offset = (row << strip_shift_) | (io.offset_blocks() & strip_mask_);
  const BaseChannel& target = io.module_channel<RaidChannel>().bases[base];
  if (!target.channel) [[unlikely]]
    return io.Complete(BdevIoStatus::kAborted);
  target.desc->Forward(*target.channel, io, base_offset);
}

void RaidBdev::SubmitFanOut(BdevIo& io) noexcept {
  FanOut& fan_out = io.module_context<FanOut>();
  fan_out = FanOut{};
  RaidChannel& channels = io.module_channel<RaidChannel>();
  // One more than the requests while submitting, so that a request completing at once cannot
  // complete `io` before the last one went out (completions never run inside a submission
  // call, but this does not rely on it).
  fan_out.outstanding = 1;
  for (uint32_t base = 0; base < base_count_; ++base) {
    pollux::IoChannel* channel = channels.bases[base].channel.get();
    pollux::BdevDesc& desc = *channels.bases[base].desc;
    if (channel == nullptr) {
      fan_out.status = BdevIoStatus::kAborted;
      continue;
    }
    if (io.type() == IoType::kReset) {
      ++fan_out.outstanding;
      desc.Reset(*channel, &FanOutDone, &io);
      continue;
    }
    BaseRange range;
    if (io.num_blocks() != 0) {
      range = RangeOnBase(io.offset_blocks(), io.num_blocks(), base, base_count_, strip_shift_);
      if (range.count == 0) continue;
    }  // else a FLUSH of everything: every base, whole
    ++fan_out.outstanding;
    switch (io.type()) {
      case IoType::kUnmap:
        desc.Unmap(*channel, range.offset, range.count, &FanOutDone, &io);
        break;
      case IoType::kWriteZeroes:
        desc.WriteZeroes(*channel, range.offset, range.count, &FanOutDone, &io);
        break;
      default:
        desc.Flush(*channel, range.offset, range.count, &FanOutDone, &io);
        break;
    }
  }
  FanOutDone(&io, BdevIoStatus::kSuccess, 0);
}

void RaidBdev::FanOutDone(void* cb_arg, BdevIoStatus status, int error_number) {
  BdevIo& io = *static_cast<BdevIo*>(cb_arg);
  FanOut& fan_out = io.module_context<FanOut>();
  if (status != BdevIoStatus::kSuccess && fan_out.status == BdevIoStatus::kSuccess) {
    fan_out.status = status;
    fan_out.error_number = error_number;
  }
  if (--fan_out.outstanding == 0) io.Complete(fan_out.status, fan_out.error_number);
}

bool RaidBdev::IoTypeSupported(IoType type) const {
  // What every base does, natively or emulated by the layer.
  for (const auto& base : raid_.bases) {
    if (!base->bdev().Supports(type)) return false;
  }
  return true;
}

std::unique_ptr<pollux::ChannelContext> RaidBdev::CreateChannel() {
  auto channel = std::make_unique<RaidChannel>();
  channel->bases.reserve(raid_.bases.size());
  for (const auto& base : raid_.bases) {
    channel->bases.push_back(BaseChannel{base.get(), base->GetIoChannel()});
  }
  return channel;
}

void RaidBdev::DumpInfo(pollux::rpc::Json& driver_specific) const {
  pollux::rpc::Json bases = pollux::rpc::Json::array();
  for (const std::string& name : raid_.config.base_bdevs) bases.push_back(name);
  driver_specific["raid"] = {{"strip_size_kb", raid_.config.strip_size_kb},
                             {"raid_level", "raid0"},
                             {"state", RaidStateName(raid_.state())},
                             {"num_base_bdevs", raid_.bases.size()},
                             {"base_bdevs_list", std::move(bases)}};
}

void RaidBdev::Destruct(absl::AnyInvocable<void()> done) {
  // Every descriptor and channel of ours is gone: no I/O of ours is at the bases. Close them
  // one after the other on the app thread (where they were opened), then tell the module.
  struct Closer {
    static void Next(Raid* raid, size_t slot, absl::AnyInvocable<void()> done) {
      while (slot < raid->bases.size() && raid->bases[slot] == nullptr) ++slot;
      if (slot == raid->bases.size()) {
        Raid0Module::Get().BdevGone(*raid);
        return done();
      }
      pollux::CloseBdevDesc(std::move(raid->bases[slot]),
                            [raid, slot, done = std::move(done)]() mutable {
                              Next(raid, slot + 1, std::move(done));
                            });
    }
  };
  Closer::Next(&raid_, 0, std::move(done));
}

}  // namespace raid0
