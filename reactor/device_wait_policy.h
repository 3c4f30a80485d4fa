// Whether a reactor that is idle while device I/O is in flight should spin or sleep at once.
//
// Spinning is the poll-mode answer: the completion is seen the moment it lands, with no
// wake-up to pay. But it is not always the fast one. On the virtual machines this project runs
// on, a vCPU that spins in user space gets the disk's completion interrupt tens of
// microseconds late (io_uring at depth 2: 109 us median spinning, 74 us sleeping; fio, which
// sleeps, 65 us), while on bare metal a sleeping core pays its wake-up instead. Neither answer
// can be fixed in advance, and no user should have to tune it, so the reactor measures:
//
//   an episode starts at the first idle pass after work, when some poller awaits a device
//   (Poller::SetAwaitingDevice), and ends at the next busy pass; its length, from the end of
//   the work to the start of the next, is what the choice costs. The policy keeps a moving
//   average of episode lengths for each answer, tries each a few times first, then takes the
//   shorter, and keeps trying the other one episode in kExploreEvery so that a change (another
//   load, another device) is noticed.
//
// Both answers wait for the same device, so the difference of the averages is the difference
// the answer makes. But they do not cost the same: spinning burns the whole episode on the
// core, sleeping only a wake-up. So spinning wins only when it is clearly faster, by more than
// kSpinMustSave of the sleeping average; within that, the reactor sleeps (128 KiB reads at
// depth 8 on this VM: episodes of ~350 us that differ by ~5 % either way, and a spinning
// reactor spent twice fio's CPU per I/O for it). Pure logic, no clock: the reactor passes the
// lengths in. Private.
#pragma once

#include <algorithm>
#include <cstdint>

namespace pollux {

class DeviceWaitPolicy {
 public:
  // Episodes each answer is tried before the averages decide.
  static constexpr uint32_t kWarmUp = 8;
  // Once warm, one episode in this many takes the answer that is not the best.
  static constexpr uint32_t kExploreEvery = 32;
  // A sample is cut to this many times its answer's average (once warm).
  static constexpr uint64_t kOutlierFactor = 4;
  // Spinning is chosen only when its average is shorter than sleeping's by more than
  // 1/kSpinMustSave of the latter.
  static constexpr uint64_t kSpinMustSave = 8;

  // At the start of an episode: whether to sleep at once (true) or spin for the spin window.
  bool ChooseSleep() noexcept {
    ++episodes_;
    if (samples_[kSpin] < kWarmUp || samples_[kSleep] < kWarmUp) {
      current_ = samples_[kSpin] <= samples_[kSleep] ? kSpin : kSleep;
    } else {
      current_ = best();
      if (episodes_ % kExploreEvery == 0) current_ = current_ == kSpin ? kSleep : kSpin;
    }
    return current_ == kSleep;
  }

  // At the end of the episode ChooseSleep started: how long it lasted (TSC ticks).
  void EndEpisode(uint64_t ticks) noexcept {
    Answer a = current_;
    // One episode stretched by something else (the vCPU preempted, a wake-up that waited for
    // a timer) counts as at most kOutlierFactor times the average, not as what it was: one
    // such sample would otherwise outweigh hundreds of ordinary ones.
    if (samples_[a] >= kWarmUp) ticks = std::min(ticks, kOutlierFactor * average_[a]);
    if (samples_[a] == 0) {
      average_[a] = ticks;
    } else {
      // average += (ticks - average) / 16, in signed arithmetic.
      average_[a] = static_cast<uint64_t>(static_cast<int64_t>(average_[a]) +
                                          (static_cast<int64_t>(ticks) -
                                           static_cast<int64_t>(average_[a])) / 16);
    }
    ++samples_[a];
  }

  // What the averages say now (for figures and RPC): true unless spinning is clearly shorter.
  bool prefers_sleep() const noexcept { return best() == kSleep; }
  uint64_t average_spin_ticks() const noexcept { return average_[kSpin]; }
  uint64_t average_sleep_ticks() const noexcept { return average_[kSleep]; }
  uint64_t episodes() const noexcept { return episodes_; }

 private:
  enum Answer { kSpin = 0, kSleep = 1 };
  Answer best() const noexcept {
    if (samples_[kSpin] == 0 || samples_[kSleep] == 0) return kSpin;
    uint64_t sleep = average_[kSleep];
    return average_[kSpin] + sleep / kSpinMustSave < sleep ? kSpin : kSleep;
  }

  Answer current_ = kSpin;
  uint64_t episodes_ = 0;
  uint64_t samples_[2] = {0, 0};
  uint64_t average_[2] = {0, 0};
};

}  // namespace pollux
