// The pacing of a job under --rate: a token bucket filled from the TSC, one token per I/O.
//
// Threads: one job's (its worker Thread), like the job itself.
//
// How a paced job uses it (perf_job.cc): a timed poller refills the bucket once per
// RefillPeriod and releases parked I/O slots while tokens last; a completion takes a token
// left in the bucket and resubmits at once, or parks its slot. Only the refill reads the clock
// (once per period, not per I/O); taking a token is a compare and a decrement.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace pollux::perf {

class TokenBucket {
 public:
  // How often a paced job wakes to refill and release: every millisecond, or every I/O
  // interval (1 / rate) when that is longer.
  //
  // Why not shorter: each wake-up of a sleeping reactor costs a fixed amount, the epoll round
  // trip and then the reactor's spin window (100 us by default) before it sleeps again. A
  // paced core's CPU is (wake-ups per second) x that cost + the I/O itself, so for CPU in
  // proportion to load a job wakes as rarely as the rate's accuracy allows, and releases
  // everything due at each wake. One millisecond is the refill granularity SPDK's bdev QoS uses
  // for its time slices (SPDK_BDEV_QOS_TIMESLICE_IN_USEC); below 1000 IOPS a millisecond
  // holds less than one token, so the period stretches to one I/O interval.
  //
  // Why not derived from the queue depth: a completion spends a token left in the bucket at
  // once, so a slot freed in the middle of a period is reused within it. The depth bounds what
  // is in flight, never what a period may release; a period of depth / rate would only wake
  // the core more often at high rates, where the spin window would then never let it sleep.
  static std::chrono::microseconds RefillPeriod(uint64_t rate_iops) {
    constexpr uint64_t kSliceUs = 1000;
    const uint64_t interval_us = (1'000'000 + rate_iops - 1) / rate_iops;
    return std::chrono::microseconds(std::max(kSliceUs, interval_us));
  }

  // The bucket's size: the tokens of the catch-up window below (at least two periods', and at
  // least the queue depth, so that a job whose slots were all in flight at a refill can fill
  // them all at once).
  //
  // Why a window of time, not just the depth: a stalled job (its core preempted by another
  // process, a vCPU descheduled by the host; Linux gives CPU-bound tasks slices of a few
  // milliseconds) earns tokens it could not spend, and a bucket of one queue depth drops them:
  // at 10000 IOPS and depth 32 that is 3.2 ms, and a spinning poll-mode job on a shared core
  // fell 12 % short of its rate. Ten milliseconds rides through such stalls and makes them up
  // at the device's speed; a longer stall is not made up (the rate is a ceiling, not an
  // average to catch up with, as fio's is). However large the bucket, at most DEPTH I/Os are
  // ever in flight: a catch-up is the device at the depth the user chose.
  static uint64_t Capacity(uint64_t rate_iops, uint32_t queue_depth) {
    constexpr uint64_t kCatchUpWindowUs = 10'000;
    const uint64_t window =
        std::max<uint64_t>(TokensPerPeriod(rate_iops, std::chrono::microseconds(kCatchUpWindowUs)),
                           2 * TokensPerPeriod(rate_iops, RefillPeriod(rate_iops)));
    return std::max<uint64_t>(queue_depth, window);
  }

  // Starts filling at `rate_iops` tokens per second (up to 10^9) from `now_tsc`, with
  // `initial` tokens in the bucket.
  void Start(uint64_t rate_iops, uint64_t tsc_hz, uint64_t capacity, uint64_t initial,
             uint64_t now_tsc) {
    rate_ = rate_iops;
    tsc_hz_ = tsc_hz;
    capacity_ = capacity;
    tokens_ = std::min(initial, capacity);
    remainder_ = 0;
    last_tsc_ = now_tsc;
    // Ticks that fill an empty bucket: a longer gap earns no more, and clamping to it keeps
    // `elapsed * rate_` below 2^64 (capacity <= 10^7 and tsc_hz < 10^10 give < 10^17).
    fill_ticks_ = capacity * tsc_hz / rate_iops + 1;
  }

  // Adds the tokens earned since the previous refill. Exact over time: the fraction of a token
  // (in TSC-tick units) carries over to the next refill.
  void Refill(uint64_t now_tsc) noexcept {
    const uint64_t elapsed = std::min(now_tsc - last_tsc_, fill_ticks_);
    last_tsc_ = now_tsc;
    const uint64_t units = remainder_ + elapsed * rate_;  // tokens x tsc_hz_
    tokens_ += units / tsc_hz_;
    remainder_ = units % tsc_hz_;
    if (tokens_ >= capacity_) {
      tokens_ = capacity_;
      remainder_ = 0;
    }
  }

  // Takes one token if there is one.
  bool TryTake() noexcept {
    if (tokens_ == 0) return false;
    --tokens_;
    return true;
  }

  uint64_t tokens() const { return tokens_; }

 private:
  // Tokens one period earns, rounded up (at least 1).
  static uint64_t TokensPerPeriod(uint64_t rate_iops, std::chrono::microseconds period) {
    return (rate_iops * static_cast<uint64_t>(period.count()) + 999'999) / 1'000'000;
  }

  uint64_t tokens_ = 0;
  uint64_t rate_ = 0;
  uint64_t tsc_hz_ = 1;
  uint64_t capacity_ = 0;
  uint64_t remainder_ = 0;
  uint64_t last_tsc_ = 0;
  uint64_t fill_ticks_ = 0;
};

}  // namespace pollux::perf
