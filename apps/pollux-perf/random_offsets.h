// The random numbers behind random workloads: shared by the jobs and the memcpy peer, so both
// walk the same kind of offsets.
#pragma once

#include <cstdint>

namespace pollux::perf {

// xorshift64*: three shifts and a multiply; statistically good enough for offsets.
class Xorshift64Star {
 public:
  explicit Xorshift64Star(uint64_t seed) : state_(seed | 1) {}  // the state must never be zero
  uint64_t Next() noexcept {
    uint64_t x = state_;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    state_ = x;
    return x * 0x2545F4914F6CDD1DULL;
  }

 private:
  uint64_t state_;
};

// Maps a 64-bit random number onto [0, n) without a division (Lemire's multiply-shift).
inline uint64_t ScaleRandom(uint64_t r, uint64_t n) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(r) * n) >> 64);
}

}  // namespace pollux::perf
