// I/O statistics of a bdev: counters per I/O type and a latency histogram. Each channel keeps
// its own (written only by its thread, so no atomics); Bdev::GetIoStats sums them on demand.
#pragma once

#include <array>
#include <cstdint>
#include <limits>

#include "pollux/bdev/bdev_io.h"

namespace pollux {

// Log-linear histogram of latencies in TSC ticks (HdrHistogram's layout, as SPDK's): values
// below 64 get a bucket each; above, every power of two is cut into 64 buckets, so a
// percentile is exact to within 1/64 (1.6 %, fio's resolution). 1/16 was too coarse to judge
// a 5 % latency goal: at 60 us its buckets were 2-4 us apart. Adding a value is a
// count-leading-zeros and an increment; the array is 22 KiB, of which a steady load touches a
// few lines.
class LatencyHistogram {
 public:
  static constexpr int kSubBucketBits = 6;
  static constexpr int kSubBuckets = 1 << kSubBucketBits;
  static constexpr int kMaxBit = 48;  // 2^48 ticks is days; larger values share the last bucket
  static constexpr int kBuckets = (kMaxBit - kSubBucketBits + 2) * kSubBuckets;

  void Add(uint64_t ticks) noexcept { ++buckets_[BucketOf(ticks)]; }
  // Adds a value whose bucket the caller computed (BucketOf), e.g. once for several histograms.
  void AddToBucket(int bucket) noexcept { ++buckets_[bucket]; }
  void Merge(const LatencyHistogram& other);
  void Clear() { buckets_.fill(0); }
  uint64_t count() const;
  // The value below which `percent` % of the samples fall (upper bound of that bucket), or 0
  // when empty. `percent` in [0, 100].
  uint64_t Percentile(double percent) const;

  static int BucketOf(uint64_t ticks) noexcept {
    if (ticks < kSubBuckets) return static_cast<int>(ticks);
    int msb = 63 - __builtin_clzll(ticks);
    if (msb > kMaxBit) return kBuckets - 1;
    int sub = static_cast<int>(ticks >> (msb - kSubBucketBits)) & (kSubBuckets - 1);
    return (msb - kSubBucketBits + 1) * kSubBuckets + sub;
  }
  // The largest value that falls in `bucket`.
  static uint64_t BucketUpperBound(int bucket);

  const std::array<uint64_t, kBuckets>& buckets() const { return buckets_; }

 private:
  std::array<uint64_t, kBuckets> buckets_{};
};

// 64 bytes, so that a type's entry is a shift away, and no two counters a completion adds to are
// neighbours, so that GCC does not pair them into vector code (5 instructions for 2 adds).
struct alignas(64) IoTypeStats {
  uint64_t ops = 0;  // completed successfully
  uint64_t min_latency_ticks = std::numeric_limits<uint64_t>::max();
  uint64_t bytes = 0;  // of those
  uint64_t max_latency_ticks = 0;
  uint64_t latency_ticks = 0;

  void Add(uint64_t op_bytes, uint64_t ticks) noexcept {
    ++ops;
    bytes += op_bytes;
    latency_ticks += ticks;
    if (ticks < min_latency_ticks) min_latency_ticks = ticks;
    if (ticks > max_latency_ticks) max_latency_ticks = ticks;
  }
  void Merge(const IoTypeStats& other);
};

// Latency histograms are kept for reads, for writes, and for the other types together: a p99
// of each type that carries data, at 22 KiB a histogram per channel (one per type would be
// 132 KiB).
enum class LatencyClass : uint8_t { kRead = 0, kWrite = 1, kOther = 2 };
inline constexpr int kLatencyClassCount = 3;
// "read", "write", "other".
const char* LatencyClassName(LatencyClass latency_class);

// Each type's class, as a table: a completion finds its histogram with one load, where a
// comparison costs it a compare, a select and a register (measured: 10 instructions per I/O).
inline constexpr std::array<LatencyClass, kIoTypeCount> kLatencyClassOfType = [] {
  std::array<LatencyClass, kIoTypeCount> table{};
  table.fill(LatencyClass::kOther);
  table[static_cast<int>(IoType::kRead)] = LatencyClass::kRead;
  table[static_cast<int>(IoType::kWrite)] = LatencyClass::kWrite;
  return table;
}();

inline constexpr LatencyClass LatencyClassOf(IoType type) noexcept {
  return kLatencyClassOfType[static_cast<int>(type)];
}

struct BdevIoStats {
  std::array<IoTypeStats, kIoTypeCount> by_type{};
  uint64_t failed_ops = 0;  // completed with any status but success
  // Every successful I/O, in the histogram of its type's LatencyClass.
  std::array<LatencyHistogram, kLatencyClassCount> latency_by_class{};

  IoTypeStats& of(IoType type) { return by_type[static_cast<int>(type)]; }
  const IoTypeStats& of(IoType type) const { return by_type[static_cast<int>(type)]; }
  LatencyHistogram& latency_of(IoType type) noexcept {
    return latency_by_class[static_cast<int>(LatencyClassOf(type))];
  }
  const LatencyHistogram& latency(LatencyClass latency_class) const {
    return latency_by_class[static_cast<int>(latency_class)];
  }
  // Every type's latencies in one histogram (a merge: for reports, not for the data path).
  LatencyHistogram AllLatencies() const;
  void Merge(const BdevIoStats& other);
};

}  // namespace pollux
