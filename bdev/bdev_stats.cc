#include "pollux/bdev/bdev_stats.h"

#include <algorithm>
#include <cmath>

namespace pollux {

uint64_t LatencyHistogram::BucketUpperBound(int bucket) {
  if (bucket < kSubBuckets) return static_cast<uint64_t>(bucket);
  int group = bucket / kSubBuckets;  // >= 1
  uint64_t sub = static_cast<uint64_t>(bucket % kSubBuckets);
  int shift = group - 1;  // msb = group + kSubBucketBits - 1; values (kSubBuckets + sub) << shift
  return ((kSubBuckets + sub + 1) << shift) - 1;
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (int i = 0; i < kBuckets; ++i) buckets_[i] += other.buckets_[i];
}

uint64_t LatencyHistogram::count() const {
  uint64_t total = 0;
  for (uint64_t n : buckets_) total += n;
  return total;
}

uint64_t LatencyHistogram::Percentile(double percent) const {
  uint64_t total = count();
  if (total == 0) return 0;
  percent = std::clamp(percent, 0.0, 100.0);
  // The smallest bucket at which at least `percent` % of the samples are counted.
  uint64_t rank = static_cast<uint64_t>(std::ceil(percent / 100.0 * static_cast<double>(total)));
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += buckets_[i];
    if (seen >= rank) return BucketUpperBound(i);
  }
  return BucketUpperBound(kBuckets - 1);
}

void IoTypeStats::Merge(const IoTypeStats& other) {
  ops += other.ops;
  bytes += other.bytes;
  latency_ticks += other.latency_ticks;
  min_latency_ticks = std::min(min_latency_ticks, other.min_latency_ticks);
  max_latency_ticks = std::max(max_latency_ticks, other.max_latency_ticks);
}

const char* LatencyClassName(LatencyClass latency_class) {
  static constexpr const char* kNames[kLatencyClassCount] = {"read", "write", "other"};
  return kNames[static_cast<int>(latency_class)];
}

LatencyHistogram BdevIoStats::AllLatencies() const {
  LatencyHistogram all;
  for (const LatencyHistogram& histogram : latency_by_class) all.Merge(histogram);
  return all;
}

void BdevIoStats::Merge(const BdevIoStats& other) {
  for (int i = 0; i < kIoTypeCount; ++i) by_type[i].Merge(other.by_type[i]);
  failed_ops += other.failed_ops;
  for (int i = 0; i < kLatencyClassCount; ++i) latency_by_class[i].Merge(other.latency_by_class[i]);
}

}  // namespace pollux
