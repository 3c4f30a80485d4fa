// RAID0's arithmetic, apart from the I/O path so that it can be tested alone: the size of the
// RAID, and where a range of its blocks lies on each base.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace raid0 {

// The largest RAID0 of bases of `block_counts` blocks with `strip_blocks`-block strips: every
// base gives the same whole number of strips. 0 when a base is smaller than one strip.
inline uint64_t RaidBlockCount(const std::vector<uint64_t>& block_counts, uint64_t strip_blocks) {
  if (block_counts.empty() || strip_blocks == 0) return 0;
  uint64_t smallest = *std::min_element(block_counts.begin(), block_counts.end());
  return smallest / strip_blocks * strip_blocks * block_counts.size();
}

// Where RAID blocks [offset, offset + count) lie on base `base` of `base_count`, with strips of
// 1 << strip_shift blocks: one contiguous range of base blocks (its count 0 when the range
// touches no strip of that base). `count` must be at least 1.
struct BaseRange {
  uint64_t offset = 0;
  uint64_t count = 0;
};

inline BaseRange RangeOnBase(uint64_t offset, uint64_t count, uint32_t base, uint32_t base_count,
                             uint32_t strip_shift) {
  const uint64_t strip_mask = (uint64_t{1} << strip_shift) - 1;
  const uint64_t last_block = offset + count - 1;
  const uint64_t first_strip = offset >> strip_shift;
  const uint64_t last_strip = last_block >> strip_shift;
  // This base's first strip at or after first_strip, and its last at or before last_strip.
  const uint64_t first = first_strip + (base + base_count - first_strip % base_count) % base_count;
  if (first > last_strip) return {};
  const uint64_t last = last_strip - (last_strip % base_count + base_count - base) % base_count;
  uint64_t start = (first / base_count) << strip_shift;
  if (first == first_strip) start |= offset & strip_mask;
  uint64_t end = ((last / base_count) << strip_shift) | strip_mask;  // inclusive
  if (last == last_strip) end = ((last / base_count) << strip_shift) | (last_block & strip_mask);
  return {start, end - start + 1};
}

}  // namespace raid0
