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
// lengths in (pollux/reactor/measured_choice.h does the learning). Private.
#pragma once

#include <cstdint>

#include "pollux/reactor/measured_choice.h"

namespace pollux {

class DeviceWaitPolicy {
 public:
  static constexpr uint32_t kPhase = MeasuredChoice::kPhase;
  static constexpr uint32_t kSettle = MeasuredChoice::kSettle;
  static constexpr uint32_t kWarmUpPhases = MeasuredChoice::kWarmUpPhases;
  static constexpr uint32_t kWarmUpEpisodes = MeasuredChoice::kWarmUpAttempts;
  static constexpr uint32_t kExplorePhases = MeasuredChoice::kExplorePhases;
  static constexpr uint64_t kOutlierFactor = MeasuredChoice::kOutlierFactor;

  // At the start of an episode: whether to sleep at once (true) or spin for the spin window.
  bool ChooseSleep() noexcept { return choice_.Choose() == kSleep; }
  // At the end of the episode ChooseSleep started: how long it lasted (TSC ticks).
  void EndEpisode(uint64_t ticks) noexcept { choice_.End(ticks); }

  // What the averages say now (for figures and RPC): true unless spinning halves the wait.
  bool prefers_sleep() const noexcept { return choice_.best() == kSleep; }
  uint64_t average_spin_ticks() const noexcept { return choice_.average(kSpin); }
  uint64_t average_sleep_ticks() const noexcept { return choice_.average(kSleep); }
  uint64_t episodes() const noexcept { return choice_.attempts(); }

 private:
  static constexpr int kSpin = 0;
  static constexpr int kSleep = 1;
  // Spinning burns the core it waits on: taken only when it halves the wait.
  MeasuredChoice choice_{/*weight0=*/2};
};

}  // namespace pollux
