// The latency histogram and the statistics arithmetic.
#include <gtest/gtest.h>

#include <random>
#include <vector>
#include <algorithm>

#include "pollux/bdev/bdev_stats.h"

namespace pollux {
namespace {

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  LatencyHistogram h;
  for (uint64_t v = 0; v < LatencyHistogram::kSubBuckets; ++v) h.Add(v);
  EXPECT_EQ(h.count(), 64u);
  EXPECT_EQ(h.Percentile(100), 63u);
  EXPECT_EQ(h.Percentile(50), 31u);
  EXPECT_EQ(h.Percentile(0), 0u);
}

TEST(LatencyHistogramTest, BucketsCoverEveryValueOnce) {
  for (uint64_t v : {64ull, 65ull, 127ull, 128ull, 129ull, 1000ull, 123456789ull, 1ull << 40}) {
    int b = LatencyHistogram::BucketOf(v);
    EXPECT_LE(v, LatencyHistogram::BucketUpperBound(b)) << v;
    EXPECT_GT(v, LatencyHistogram::BucketUpperBound(b - 1)) << v;
  }
  EXPECT_EQ(LatencyHistogram::BucketOf(UINT64_MAX), LatencyHistogram::kBuckets - 1);
}

TEST(LatencyHistogramTest, PercentilesWithinOneSixtyFourth) {
  std::mt19937_64 rng(42);
  std::vector<uint64_t> values;
  LatencyHistogram h;
  for (int i = 0; i < 100000; ++i) {
    uint64_t v = 100 + rng() % 1000000;
    values.push_back(v);
    h.Add(v);
  }
  std::sort(values.begin(), values.end());
  for (double p : {50.0, 90.0, 99.0, 99.9}) {
    uint64_t exact = values[static_cast<size_t>(p / 100 * values.size()) - 1];
    uint64_t approx = h.Percentile(p);
    EXPECT_GE(approx, exact) << p;
    EXPECT_LE(approx, exact + exact / 64 + 1) << p;
  }
}

TEST(LatencyHistogramTest, MergeAddsCounts) {
  LatencyHistogram a, b;
  a.Add(5);
  b.Add(5);
  b.Add(5000);
  a.Merge(b);
  EXPECT_EQ(a.count(), 3u);
  EXPECT_EQ(a.Percentile(100), LatencyHistogram::BucketUpperBound(LatencyHistogram::BucketOf(5000)));
  LatencyHistogram empty;
  EXPECT_EQ(empty.Percentile(99), 0u);
}

TEST(BdevIoStatsTest, MergeKeepsMinAndMax) {
  BdevIoStats a, b;
  a.of(IoType::kRead).Add(4096, 100);
  b.of(IoType::kRead).Add(4096, 50);
  b.of(IoType::kRead).Add(4096, 300);
  b.failed_ops = 2;
  a.Merge(b);
  const IoTypeStats& r = a.of(IoType::kRead);
  EXPECT_EQ(r.ops, 3u);
  EXPECT_EQ(r.bytes, 3u * 4096);
  EXPECT_EQ(r.latency_ticks, 450u);
  EXPECT_EQ(r.min_latency_ticks, 50u);
  EXPECT_EQ(r.max_latency_ticks, 300u);
  EXPECT_EQ(a.failed_ops, 2u);
  EXPECT_EQ(a.of(IoType::kWrite).ops, 0u);
}

}  // namespace
}  // namespace pollux
