// MeasuredChoice: which of two ways of doing the same thing takes less time on this machine,
// learnt by doing it both ways, with no tunable. The reactor's choice between spinning and
// sleeping while a device works (device_wait_policy.h) and the file engines' choice between a
// synchronous call and the asynchronous engine for a lone request (adaptive_submit.h) are such
// choices: which answer wins differs from machine to machine and from day to day (on the
// virtual machines this project runs on, a vCPU that halts has cost tens of microseconds to
// wake on some days and little on others), so it is measured where it runs.
//
// Attempts run in phases of kPhase with one option; the first kSettle of a phase are not
// counted (the machine settles into the answer: a hypervisor's halt polling adapts to how a
// vCPU has been halting). Each option is tried for kWarmUpPhases phases, alternately and
// option 0 first; then the better average is taken, and one phase in kExplorePhases gives the
// other option a try so that a change (another load, another device) is noticed. Averages are
// moving (1/16 per sample) and a sample is cut to kOutlierFactor times its option's average.
//
// Option 0 may cost more than its time (spinning burns the core it waits on): it is taken only
// when `weight0` times its average is under option 1's. Pure logic, no clock: the caller
// passes the lengths in (TSC ticks or anything else). Not thread-safe: one owner.
#pragma once

#include <algorithm>
#include <cstdint>

namespace pollux {

class MeasuredChoice {
 public:
  // Attempts an option is kept for in a row.
  static constexpr uint32_t kPhase = 8;
  // The first attempts of a phase, not counted.
  static constexpr uint32_t kSettle = 2;
  // Phases each option is tried, alternately and option 0 first, before the averages decide.
  static constexpr uint32_t kWarmUpPhases = 2;
  // Attempts of warm-up in all (both options).
  static constexpr uint32_t kWarmUpAttempts = 2 * kWarmUpPhases * kPhase;
  // Once warm, one phase in this many takes the option that is not the best.
  static constexpr uint32_t kExplorePhases = 32;
  // A sample is cut to this many times its option's average (once it has one).
  static constexpr uint64_t kOutlierFactor = 4;

  explicit constexpr MeasuredChoice(uint64_t weight0 = 1) : weight0_(weight0) {}

  // At the start of an attempt: the option to take (0 or 1). An attempt that ends without
  // End (given up) is simply not counted.
  int Choose() noexcept {
    ++attempts_;
    if (attempt_in_phase_ == 0) {
      if (phases_ < 2 * kWarmUpPhases) {
        current_ = static_cast<int>(phases_ % 2);
      } else {
        current_ = best();
        if (phases_ % kExplorePhases == 0) current_ = 1 - current_;
      }
    }
    return current_;
  }

  // The attempt Choose started took `length`.
  void End(uint64_t length) noexcept {
    if (attempt_in_phase_++ >= kSettle) Count(current_, length);
    if (attempt_in_phase_ == kPhase) {
      attempt_in_phase_ = 0;
      ++phases_;
    }
  }

  // What the averages say now: option 0 until both have samples.
  int best() const noexcept {
    if (samples_[0] == 0 || samples_[1] == 0) return 0;
    return weight0_ * average_[0] < average_[1] ? 0 : 1;
  }
  uint64_t average(int option) const noexcept { return average_[option]; }
  uint64_t samples(int option) const noexcept { return samples_[option]; }
  uint64_t attempts() const noexcept { return attempts_; }

 private:
  void Count(int option, uint64_t length) noexcept {
    if (samples_[option] == 0) {
      average_[option] = length;
    } else {
      // One attempt stretched by something else (the vCPU preempted, a wake-up that waited
      // for a timer) counts as at most kOutlierFactor times the average: one such sample
      // would otherwise outweigh hundreds of ordinary ones.
      length = std::min(length, kOutlierFactor * average_[option]);
      // average += (length - average) / 16, in signed arithmetic.
      average_[option] = static_cast<uint64_t>(
          static_cast<int64_t>(average_[option]) +
          (static_cast<int64_t>(length) - static_cast<int64_t>(average_[option])) / 16);
    }
    ++samples_[option];
  }

  uint64_t weight0_;
  int current_ = 0;
  uint32_t attempt_in_phase_ = 0;
  uint64_t phases_ = 0;
  uint64_t attempts_ = 0;
  uint64_t samples_[2] = {0, 0};
  uint64_t average_[2] = {0, 0};
};

}  // namespace pollux
