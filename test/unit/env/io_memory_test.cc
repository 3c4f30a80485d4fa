// IoMemory: zeroed, page-aligned, populated memory that is returned when its owner goes; not
// DPDK's shmem without hugepages; a size beyond the machine fails with a message naming the
// owner. One EAL for the binary (IoMemory asks it whether there are hugepages).
#include "pollux/env/io_memory.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rte_eal.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "pollux/env/eal.h"

namespace pollux {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr uint64_t kMiB = 1 << 20;

class IoMemoryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (session_ != nullptr) return;
    EalOptions options;
    options.memory_mb = 64;
    auto session = InitEal(options);
    ASSERT_TRUE(session.ok()) << session.status();
    session_ = std::move(*session);
  }

  // The line of /proc/self/maps that holds `address`, or "" if none does.
  static std::string MappingOf(const void* address) {
    FILE* f = std::fopen("/proc/self/maps", "r");
    if (f == nullptr) return "";
    char line[512];
    std::string found;
    const auto a = reinterpret_cast<uintptr_t>(address);
    while (std::fgets(line, sizeof(line), f) != nullptr) {
      unsigned long long start = 0, end = 0;
      if (std::sscanf(line, "%llx-%llx", &start, &end) == 2 && a >= start && a < end) {
        found = line;
        break;
      }
    }
    std::fclose(f);
    return found;
  }

  static inline std::unique_ptr<EalSession> session_;
};

TEST_F(IoMemoryTest, IsZeroedAlignedAndReturnedWhenDestroyed) {
  const uint64_t held_before = IoMemory::KernelBytesHeld();
  {
    absl::StatusOr<IoMemory> memory = IoMemory::Allocate(3 * kMiB + 512, "the test");
    ASSERT_TRUE(memory.ok()) << memory.status();
    uint8_t* data = memory->data();
    ASSERT_NE(data, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(data) % 4096, 0u);
    for (uint64_t i = 0; i < 3 * kMiB + 512; i += 4093) ASSERT_EQ(data[i], 0) << "byte " << i;
    std::memset(data, 0xa5, 3 * kMiB + 512);  // every byte is writable
    if (!rte_eal_has_hugepages()) {
      // Whole huge pages from the kernel, private: not the memfd behind DPDK's no-huge heap.
      EXPECT_EQ(IoMemory::KernelBytesHeld(), held_before + 4 * kMiB);
      std::string mapping = MappingOf(data);
      EXPECT_THAT(mapping, Not(HasSubstr("memfd")));
      EXPECT_THAT(mapping, HasSubstr("rw-p"));
    }
  }
  EXPECT_EQ(IoMemory::KernelBytesHeld(), held_before);
}

TEST_F(IoMemoryTest, MovingHandsOverAndAssignmentReleasesTheOldBlock) {
  const uint64_t held_before = IoMemory::KernelBytesHeld();
  absl::StatusOr<IoMemory> first = IoMemory::Allocate(kMiB, "first");
  absl::StatusOr<IoMemory> second = IoMemory::Allocate(kMiB, "second");
  ASSERT_TRUE(first.ok() && second.ok());
  uint8_t* second_data = second->data();
  IoMemory holder(std::move(*first));
  EXPECT_EQ(first->data(), nullptr);
  holder = std::move(*second);  // first's block goes back here
  EXPECT_EQ(holder.data(), second_data);
  EXPECT_EQ(second->data(), nullptr);
  if (!rte_eal_has_hugepages()) {
    EXPECT_EQ(IoMemory::KernelBytesHeld(), held_before + 2 * kMiB);
  }
  holder = IoMemory();
  EXPECT_EQ(holder.data(), nullptr);
  EXPECT_EQ(IoMemory::KernelBytesHeld(), held_before);
}

TEST_F(IoMemoryTest, TooMuchFailsNamingTheOwnerAndHoldsNothing) {
  const uint64_t held_before = IoMemory::KernelBytesHeld();
  // 4 PiB: more than any machine has, refused before anything is mapped or populated.
  absl::StatusOr<IoMemory> memory = IoMemory::Allocate(4ull << 50, "the buffers of job 7");
  ASSERT_FALSE(memory.ok());
  EXPECT_EQ(memory.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(memory.status().message()),
              HasSubstr("cannot allocate 4 PiB for the buffers of job 7"));
  EXPECT_EQ(IoMemory::KernelBytesHeld(), held_before);
}

TEST_F(IoMemoryTest, BeyondTheProcessLimitFailsNamingItAndHoldsNothing) {
  if (rte_eal_has_hugepages()) GTEST_SKIP() << "the limit is on memory from the kernel";
  const uint64_t held_before = IoMemory::KernelBytesHeld();
  IoMemory::SetKernelBytesLimit(held_before + 4 * kMiB);
  absl::StatusOr<IoMemory> first = IoMemory::Allocate(3 * kMiB, "first");
  ASSERT_TRUE(first.ok()) << first.status();
  // 4 MiB held (whole 2 MiB pages): one more byte does not fit.
  absl::StatusOr<IoMemory> second = IoMemory::Allocate(1, "\"Malloc9\"");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(second.status().message()),
              HasSubstr("cannot allocate 1 byte for \"Malloc9\": the process may hold "));
  EXPECT_EQ(IoMemory::KernelBytesHeld(), held_before + 4 * kMiB);
  // Room again once the first is gone; no limit again with 0.
  *first = IoMemory();
  EXPECT_TRUE(IoMemory::Allocate(kMiB, "third").ok());
  IoMemory::SetKernelBytesLimit(0);
  EXPECT_TRUE(IoMemory::Allocate(8 * kMiB, "fourth").ok());
  EXPECT_EQ(IoMemory::KernelBytesHeld(), held_before);
}

}  // namespace
}  // namespace pollux
