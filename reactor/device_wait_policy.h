// Whether a reactor that is idle while device I/O is in flight should spin or sleep at once.
//
// Spinning is the poll-mode answer: the completion is seen the moment it lands, with no
// wake-up to pay. But it is not always the fast one. On the virtual machines this project runs
// on, a vCPU that spins in user space has got the disk's completion interrupt tens of
// microseconds late on some days (io_uring at depth 2: 109 us median spinning, 74 us sleeping;
// fio, which sleeps, 65 us) and early on others (randwrite at depth 8: 63-75 us spinning, ~110
// sleeping), while on bare metal a sleeping core pays its wake-up. Neither answer can be fixed
// in advance, and no user should have to tune it, so the reactor measures:
//
//   an episode starts at the first idle pass after work, when some poller awaits a device
//   (Poller::SetAwaiting), and ends at the next busy pass; its length, from the end of the
//   work to the start of the next, is what the choice costs. The policy keeps a moving average
//   of episode lengths for each answer, tries each for a few phases first, then takes the
//   better, and keeps giving the other one phase in kExplorePhases so that a change (another
//   load, another device) is noticed.
//
// Answers run in phases of kPhase episodes in a row, and the first kSettle episodes of a phase
// are not counted: how long a wake-up takes depends on how the vCPU has been halting (a
// hypervisor's halt polling adapts to it), so one sleep among spins measures the wake-up of a
// vCPU that never sleeps, not the sleeping answer. Taken one episode at a time, sleeping
// averaged 150 us among spins where the reactor sleeping throughout averaged 85-120 us.
//
// Both answers wait for the same device, so the difference of the averages is the time the
// answer makes up. But they do not cost the same: spinning burns the whole episode on the core,
// sleeping only a wake-up. A microsecond of core is weighed as a microsecond of waiting, so
// spinning is taken only when it saves more waiting than it burns core: when its average is
// under half of sleeping's (the rule of spin-then-block: spin only as long as a block would
// cost). Randwrite at depth 8 on this VM: spinning 63 us against sleeping 110 us made 1.2x
// the IOPS at 1.8x the CPU per I/O, and the reactor sleeps; where a wake-up costs more than
// the wait itself (a fast device), it spins. Pure logic, no clock: the reactor passes the
// lengths in. Private.
#pragma once

#include <algorithm>
#include <cstdint>

namespace pollux {

class DeviceWaitPolicy {
 public:
  // Episodes an answer is kept for in a row.
  static constexpr uint32_t kPhase = 8;
  // The first episodes of a phase, not counted: the machine settles into the answer.
  static constexpr uint32_t kSettle = 2;
  // Phases each answer is tried, alternately and spinning first, before the averages decide.
  static constexpr uint32_t kWarmUpPhases = 2;
  // Episodes of warm-up in all (both answers).
  static constexpr uint32_t kWarmUpEpisodes = 2 * kWarmUpPhases * kPhase;
  // Once warm, one phase in this many takes the answer that is not the best.
  static constexpr uint32_t kExplorePhases = 32;
  // A sample is cut to this many times its answer's average (once it has one).
  static constexpr uint64_t kOutlierFactor = 4;

  // At the start of an episode: whether to sleep at once (true) or spin for the spin window.
  bool ChooseSleep() noexcept {
    ++episodes_;
    if (episode_in_phase_ == 0) {
      if (phases_ < 2 * kWarmUpPhases) {
        current_ = phases_ % 2 == 0 ? kSpin : kSleep;
      } else {
        current_ = best();
        if (phases_ % kExplorePhases == 0) current_ = current_ == kSpin ? kSleep : kSpin;
      }
    }
    return current_ == kSleep;
  }

  // At the end of the episode ChooseSleep started: how long it lasted (TSC ticks).
  void EndEpisode(uint64_t ticks) noexcept {
    if (episode_in_phase_++ >= kSettle) Count(current_, ticks);
    if (episode_in_phase_ == kPhase) {
      episode_in_phase_ = 0;
      ++phases_;
    }
  }

  // What the averages say now (for figures and RPC): true unless spinning halves the wait.
  bool prefers_sleep() const noexcept { return best() == kSleep; }
  uint64_t average_spin_ticks() const noexcept { return average_[kSpin]; }
  uint64_t average_sleep_ticks() const noexcept { return average_[kSleep]; }
  uint64_t episodes() const noexcept { return episodes_; }

 private:
  enum Answer { kSpin = 0, kSleep = 1 };

  Answer best() const noexcept {
    if (samples_[kSpin] == 0 || samples_[kSleep] == 0) return kSpin;
    return 2 * average_[kSpin] < average_[kSleep] ? kSpin : kSleep;
  }

  void Count(Answer a, uint64_t ticks) noexcept {
    if (samples_[a] == 0) {
      average_[a] = ticks;
    } else {
      // One episode stretched by something else (the vCPU preempted, a wake-up that waited for
      // a timer) counts as at most kOutlierFactor times the average, not as what it was: one
      // such sample would otherwise outweigh hundreds of ordinary ones.
      ticks = std::min(ticks, kOutlierFactor * average_[a]);
      // average += (ticks - average) / 16, in signed arithmetic.
      average_[a] = static_cast<uint64_t>(static_cast<int64_t>(average_[a]) +
                                          (static_cast<int64_t>(ticks) -
                                           static_cast<int64_t>(average_[a])) / 16);
    }
    ++samples_[a];
  }

  Answer current_ = kSpin;
  uint32_t episode_in_phase_ = 0;
  uint64_t phases_ = 0;
  uint64_t episodes_ = 0;
  uint64_t samples_[2] = {0, 0};
  uint64_t average_[2] = {0, 0};
};

}  // namespace pollux
