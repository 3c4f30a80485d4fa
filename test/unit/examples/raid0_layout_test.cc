// RAID0's layout (examples/raid0/raid0_layout.h) against a block-by-block model: every range
// of a small RAID, for several base counts and strip sizes.
#include "raid0_layout.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace raid0 {
namespace {

struct Place {
  uint32_t base;
  uint64_t block;
};

// Where one RAID block lies, from the definition: strip s on base s % N at row s / N.
Place PlaceOf(uint64_t block, uint32_t base_count, uint64_t strip_blocks) {
  uint64_t strip = block / strip_blocks;
  return {static_cast<uint32_t>(strip % base_count),
          strip / base_count * strip_blocks + block % strip_blocks};
}

TEST(Raid0LayoutTest, RangeOnBaseMatchesTheBlockByBlockModel) {
  for (uint32_t base_count : {1u, 2u, 3u, 4u, 5u}) {
    for (uint32_t strip_shift : {0u, 1u, 3u}) {
      const uint64_t strip_blocks = uint64_t{1} << strip_shift;
      const uint64_t raid_blocks = strip_blocks * base_count * 4;
      for (uint64_t offset = 0; offset < raid_blocks; ++offset) {
        for (uint64_t count = 1; offset + count <= raid_blocks; ++count) {
          for (uint32_t base = 0; base < base_count; ++base) {
            // The model: the blocks of the range on this base, which must be contiguous.
            uint64_t first = 0, blocks = 0;
            for (uint64_t b = offset; b < offset + count; ++b) {
              Place place = PlaceOf(b, base_count, strip_blocks);
              if (place.base != base) continue;
              if (blocks == 0) first = place.block;
              ASSERT_EQ(place.block, first + blocks) << "the model's range has a hole";
              ++blocks;
            }
            BaseRange range = RangeOnBase(offset, count, base, base_count, strip_shift);
            ASSERT_EQ(range.count, blocks)
                << "N " << base_count << " strip " << strip_blocks << " range " << offset << "+"
                << count << " base " << base;
            if (blocks != 0) {
              ASSERT_EQ(range.offset, first);
            }
          }
        }
      }
    }
  }
}

TEST(Raid0LayoutTest, SizeIsWholeStripsOfTheSmallestBase) {
  EXPECT_EQ(RaidBlockCount({1000, 1000}, 128), 2 * 7 * 128u);
  EXPECT_EQ(RaidBlockCount({4096, 1024, 2048}, 128), 3 * 1024u);
  EXPECT_EQ(RaidBlockCount({100, 4096}, 128), 0u);  // a base smaller than one strip
  EXPECT_EQ(RaidBlockCount({}, 128), 0u);
}

}  // namespace
}  // namespace raid0
