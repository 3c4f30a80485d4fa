// I/O regions: publishing and withdrawing moves the generation, snapshots are sorted and
// current, an IoRegion withdraws on destruction and moves its range, and every IoMemory is
// published for as long as it lives.
#include "pollux/env/io_regions.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "pollux/env/eal.h"
#include "pollux/env/io_memory.h"

namespace pollux {
namespace {

bool Holds(const std::vector<IoRegionSpan>& spans, const void* base, uint64_t size) {
  const auto b = reinterpret_cast<uintptr_t>(base);
  return std::any_of(spans.begin(), spans.end(),
                     [&](const IoRegionSpan& s) { return s.begin == b && s.end == b + size; });
}

TEST(IoRegionsTest, PublishAndWithdrawMoveTheGenerationAndTheSnapshot) {
  static char a[4096], b[8192];
  const uint64_t g0 = IoRegionsGeneration();
  uint64_t generation = 0;
  {
    IoRegion second = IoRegion::Publish(b, sizeof(b));
    IoRegion first = IoRegion::Publish(a, sizeof(a));
    EXPECT_TRUE(first.published());
    const uint64_t g1 = IoRegionsGeneration();
    EXPECT_NE(g1, g0);
    std::vector<IoRegionSpan> spans = IoRegionsSnapshot(generation);
    EXPECT_EQ(generation, g1);
    EXPECT_TRUE(Holds(spans, a, sizeof(a)));
    EXPECT_TRUE(Holds(spans, b, sizeof(b)));
    EXPECT_TRUE(std::is_sorted(
        spans.begin(), spans.end(),
        [](const IoRegionSpan& x, const IoRegionSpan& y) { return x.begin < y.begin; }));
    first.Withdraw();
    first.Withdraw();  // idempotent
    EXPECT_FALSE(first.published());
    EXPECT_NE(IoRegionsGeneration(), g1);
    spans = IoRegionsSnapshot(generation);
    EXPECT_FALSE(Holds(spans, a, sizeof(a)));
    EXPECT_TRUE(Holds(spans, b, sizeof(b)));
  }
  // Destruction withdrew the other one.
  EXPECT_FALSE(Holds(IoRegionsSnapshot(generation), b, sizeof(b)));
}

TEST(IoRegionsTest, AMovedRegionIsWithdrawnOnceByItsLastOwner) {
  static char a[4096];
  uint64_t generation = 0;
  IoRegion target;
  {
    IoRegion source = IoRegion::Publish(a, sizeof(a));
    target = std::move(source);
    EXPECT_FALSE(source.published());  // NOLINT(bugprone-use-after-move): checked on purpose
  }
  EXPECT_TRUE(Holds(IoRegionsSnapshot(generation), a, sizeof(a)));
  target = IoRegion();
  EXPECT_FALSE(Holds(IoRegionsSnapshot(generation), a, sizeof(a)));
}

TEST(IoRegionsTest, EveryIoMemoryIsPublishedWhileItLives) {
  EalOptions options;
  options.memory_mb = 64;
  auto session = InitEal(options);
  ASSERT_TRUE(session.ok()) << session.status();
  constexpr uint64_t kSize = 4 << 20;
  absl::StatusOr<IoMemory> memory = IoMemory::Allocate(kSize, "test");
  ASSERT_TRUE(memory.ok()) << memory.status();
  const uint8_t* data = memory->data();
  uint64_t generation = 0;
  std::vector<IoRegionSpan> spans = IoRegionsSnapshot(generation);
  const auto begin = reinterpret_cast<uintptr_t>(data);
  auto it = std::find_if(spans.begin(), spans.end(),
                         [&](const IoRegionSpan& s) { return s.begin == begin; });
  ASSERT_NE(it, spans.end());
  EXPECT_GE(it->end - it->begin, kSize);  // rounded up to whole huge pages without hugepages
  IoMemory moved = std::move(*memory);
  EXPECT_EQ(IoRegionsSnapshot(generation).size(), spans.size());
  const uint64_t before = IoRegionsGeneration();
  moved = IoMemory();
  EXPECT_NE(IoRegionsGeneration(), before);
  spans = IoRegionsSnapshot(generation);
  EXPECT_TRUE(std::none_of(spans.begin(), spans.end(),
                           [&](const IoRegionSpan& s) { return s.begin == begin; }));
}

}  // namespace
}  // namespace pollux
