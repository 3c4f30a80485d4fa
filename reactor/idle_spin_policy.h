// How long an idle reactor in interrupt mode keeps polling before it sleeps: one policy, fed
// by what its pollers wait for and by when each of its sources last woke it.
//
//   - Work at helper threads on this core (AwaitedWork::kHelperThreads): sleep at once, the
//     core is theirs.
//   - Device I/O in flight (kDevice): the DeviceWaitPolicy's measured answer, spin the
//     maximum window or sleep at once.
//   - Otherwise the longest polling window of the reactor's sources (QEMU's aio-posix
//     adaptive polling): every source that can wake the reactor (a thread's mailbox, a poller's
//     wake fd) keeps its own window. A source whose event woke the reactor after a sleep of
//     `block` ticks, counted from the end of the last work: a window already as long changes
//     nothing; a block longer than twice the maximum resets it to 0 (polling that long would
//     cost more than the wake-up); a shorter one starts it at 4 us or doubles it, up to the
//     maximum. A source busy every few microseconds is then polled through its gaps and one
//     that wakes the reactor once a millisecond (a paced job, a timer, a slow guest) lets it
//     sleep at once after its work instead of spinning for nothing.
//
//     Twice, where QEMU says once: the block includes the wake-up itself, which is a few
//     microseconds on bare metal but 12-60 us on the virtual machines this project runs on,
//     often more than the maximum window. With QEMU's rule a source 10 us apart under a 20 us
//     maximum woke a sleeping reactor for 3848 of 5000 messages here (12 us each instead of
//     0.3), because every wake-up made its block look too long to poll for.
//
// The maximum is the runtime's spin window (`framework_set_mode spin_window_us`; QEMU's
// poll-max-ns). Sources that found nothing for the park time leave the polled set altogether
// (Reactor::ParkIdlePollers): the window decides how long to poll, parking what. Pure logic,
// no clock: the reactor passes TSC ticks in. Private.
#pragma once

#include <algorithm>
#include <cstdint>

#include "device_wait_policy.h"
#include "pollux/reactor/poller.h"

namespace pollux {

class IdleSpinPolicy {
 public:
  // A window's first step: QEMU starts polling a source at 4 us.
  static constexpr uint64_t kFirstWindowNs = 4000;

  // The new polling window of a source whose event ended a sleep of `block` ticks.
  static uint64_t AdjustWindow(uint64_t window, uint64_t block, uint64_t max,
                               uint64_t first) noexcept {
    if (block <= window) return window;  // polled long enough: the event would have been seen
    if (block > 2 * max) return 0;       // too far apart to poll for, wake-up included
    if (window >= max) return window;
    return std::min(max, window == 0 ? first : 2 * window);
  }

  // At the start of an idle episode (interrupt mode): how many ticks to keep polling before
  // sleeping. `longest_window`: the longest window of the reactor's running sources; `max`:
  // the spin window.
  uint64_t ChooseSpin(AwaitedWork awaited, uint64_t longest_window, uint64_t max) noexcept {
    episode_awaits_device_ = awaited == AwaitedWork::kDevice;
    switch (awaited) {
      case AwaitedWork::kHelperThreads:
        return 0;
      case AwaitedWork::kDevice:
        return device_wait_.ChooseSleep() ? 0 : max;
      case AwaitedWork::kNothing:
        break;
    }
    return std::min(longest_window, max);
  }

  // At the end of the episode ChooseSpin started: how long it lasted. Returns whether the
  // device-wait figures changed.
  bool EndEpisode(uint64_t ticks) noexcept {
    if (!episode_awaits_device_) return false;
    episode_awaits_device_ = false;
    device_wait_.EndEpisode(ticks);
    return true;
  }

  const DeviceWaitPolicy& device_wait() const noexcept { return device_wait_; }

 private:
  DeviceWaitPolicy device_wait_;
  bool episode_awaits_device_ = false;
};

}  // namespace pollux
