// The shared I/O arena and IoMemory::AllocateShared: one arena per process, allocations inside
// it that are zeroed, aligned, reused once freed (and zero again), coalesced, visible through a
// second mapping of the fd (as a vhost-user back-end maps it), InSharedIoMemory's bounds, the
// size option, and clear ResourceExhausted errors. The arena is process-wide: tests share it
// and leave nothing allocated, so their order does not matter; what needs a process without an
// arena runs in a child (a threadsafe death test re-executes the binary).
#include "pollux/env/shared_io_memory.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "pollux/env/io_memory.h"
#include "pollux/env/io_regions.h"

namespace pollux {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * 1024;

SharedIoArenaInfo Arena() {
  absl::StatusOr<SharedIoArenaInfo> info = SharedIoArena();
  EXPECT_TRUE(info.ok()) << info.status();
  return info.ok() ? *info : SharedIoArenaInfo{nullptr, 0, -1};
}

uint64_t OffsetOf(const void* p) {
  return reinterpret_cast<uintptr_t>(p) - reinterpret_cast<uintptr_t>(Arena().base);
}

// Bytes of RAM the memfd holds now.
uint64_t ArenaBytesResident() {
  struct stat st {};
  EXPECT_EQ(fstat(Arena().fd, &st), 0) << strerror(errno);
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

bool AllZero(const uint8_t* data, uint64_t size) {
  for (uint64_t i = 0; i < size; ++i) {
    if (data[i] != 0) return false;
  }
  return true;
}

TEST(SharedIoMemoryTest, TheArenaIsCreatedOnceAndStaysTheSame) {
  SharedIoArenaInfo first = Arena();
  SharedIoArenaInfo second = Arena();
  ASSERT_NE(first.base, nullptr);
  EXPECT_EQ(first.base, second.base);
  EXPECT_EQ(first.size, second.size);
  EXPECT_EQ(first.fd, second.fd);
  EXPECT_GE(first.size, kMinSharedIoArenaSize);
  EXPECT_EQ(first.size % kSharedIoArenaGranule, 0u);
  // A memfd, closed on exec.
  char target[256] = {};
  std::string link = "/proc/self/fd/" + std::to_string(first.fd);
  ASSERT_GT(readlink(link.c_str(), target, sizeof(target) - 1), 0);
  EXPECT_THAT(std::string(target), HasSubstr("memfd:pollux-shared-io"));
  EXPECT_NE(fcntl(first.fd, F_GETFD) & FD_CLOEXEC, 0);
}

TEST(SharedIoMemoryTest, AllocateSharedIsInsideTheArenaZeroedAlignedAndPublished) {
  const uint64_t allocated_before = SharedIoBytesAllocated();
  const uint64_t kernel_before = IoMemory::KernelBytesHeld();
  const uint64_t size = 3 * kMiB + 512;
  {
    absl::StatusOr<IoMemory> memory = IoMemory::AllocateShared(size, "the test");
    ASSERT_TRUE(memory.ok()) << memory.status();
    uint8_t* data = memory->data();
    ASSERT_NE(data, nullptr);
    EXPECT_TRUE(memory->shared());
    EXPECT_EQ(reinterpret_cast<uintptr_t>(data) % 4096, 0u);
    EXPECT_TRUE(InSharedIoMemory(data, size));
    EXPECT_TRUE(AllZero(data, size));
    std::memset(data, 0x5a, size);  // every byte is writable
    EXPECT_EQ(SharedIoBytesAllocated(), allocated_before + 3 * kMiB + 4 * kKiB);
    EXPECT_EQ(IoMemory::KernelBytesHeld(), kernel_before);  // not a private mapping
    uint64_t generation = 0;
    std::vector<IoRegionSpan> spans = IoRegionsSnapshot(generation);
    bool published = false;
    for (const IoRegionSpan& span : spans) {
      published |= span.begin == reinterpret_cast<uintptr_t>(data) &&
                   span.end == reinterpret_cast<uintptr_t>(data) + size;
    }
    EXPECT_TRUE(published);
  }
  EXPECT_EQ(SharedIoBytesAllocated(), allocated_before);
}

TEST(SharedIoMemoryTest, FreedMemoryGoesBackToTheKernelIsReusedAndReadsZeroAgain) {
  const uint64_t size = 4 * kMiB;
  uint8_t* first_data = nullptr;
  {
    absl::StatusOr<IoMemory> memory = IoMemory::AllocateShared(size, "the test");
    ASSERT_TRUE(memory.ok()) << memory.status();
    first_data = memory->data();
    std::memset(first_data, 0xab, size);
    const uint64_t resident = ArenaBytesResident();
    EXPECT_GE(resident, size);
    memory = IoMemory();  // freed: punched out of the memfd
    EXPECT_LE(ArenaBytesResident(), resident - size);
  }
  absl::StatusOr<IoMemory> again = IoMemory::AllocateShared(size, "the test");
  ASSERT_TRUE(again.ok()) << again.status();
  // First fit: the range just freed (coalesced with its free neighbours) comes first again.
  EXPECT_EQ(again->data(), first_data);
  EXPECT_TRUE(AllZero(again->data(), size));
}

TEST(SharedIoMemoryTest, FreedNeighboursCoalesceIntoOneRange) {
  const uint64_t allocated_before = SharedIoBytesAllocated();
  absl::StatusOr<void*> a = AllocateSharedIo(64 * kKiB, "a");
  absl::StatusOr<void*> b = AllocateSharedIo(64 * kKiB, "b");
  absl::StatusOr<void*> c = AllocateSharedIo(64 * kKiB, "c");
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  ASSERT_EQ(OffsetOf(*b), OffsetOf(*a) + 64 * kKiB);
  ASSERT_EQ(OffsetOf(*c), OffsetOf(*b) + 64 * kKiB);
  // Freed out of order: a and c alone leave two holes; b joins them into one.
  FreeSharedIo(*a);
  FreeSharedIo(*c);
  FreeSharedIo(*b);
  absl::StatusOr<void*> whole = AllocateSharedIo(192 * kKiB, "whole");
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_EQ(*whole, *a);
  FreeSharedIo(*whole);
  EXPECT_EQ(SharedIoBytesAllocated(), allocated_before);
}

TEST(SharedIoMemoryTest, AlignmentAboveAPageIsHonoured) {
  absl::StatusOr<void*> small = AllocateSharedIo(4 * kKiB, "small");
  absl::StatusOr<void*> aligned = AllocateSharedIo(8 * kKiB, "aligned", 2 * kMiB);
  ASSERT_TRUE(small.ok() && aligned.ok());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(*aligned) % (2 * kMiB), 0u);
  FreeSharedIo(*aligned);
  FreeSharedIo(*small);
  EXPECT_EQ(AllocateSharedIo(4 * kKiB, "bad", 3000).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SharedIoMemoryTest, ASecondMappingOfTheFdSeesTheSameBytes) {
  SharedIoArenaInfo info = Arena();
  const uint64_t size = 256 * kKiB;
  absl::StatusOr<IoMemory> memory = IoMemory::AllocateShared(size, "the test");
  ASSERT_TRUE(memory.ok()) << memory.status();
  // What a back-end does with the region it received: map the whole fd, and translate an
  // address by its offset from the front-end's base.
  void* mapped =
      mmap(nullptr, info.size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, info.fd, 0);
  ASSERT_NE(mapped, MAP_FAILED) << strerror(errno);
  uint8_t* peer = static_cast<uint8_t*>(mapped) + OffsetOf(memory->data());
  for (uint64_t i = 0; i < size; ++i) memory->data()[i] = static_cast<uint8_t>(i * 7 + 1);
  EXPECT_EQ(std::memcmp(peer, memory->data(), size), 0);
  std::memset(peer + 4096, 0xee, 4096);  // and the other way
  EXPECT_EQ(memory->data()[4096], 0xee);
  EXPECT_EQ(memory->data()[8191], 0xee);
  munmap(mapped, info.size);
}

TEST(SharedIoMemoryTest, InSharedIoMemoryBounds) {
  SharedIoArenaInfo info = Arena();
  const auto* base = static_cast<const uint8_t*>(info.base);
  EXPECT_TRUE(InSharedIoMemory(base, 1));
  EXPECT_TRUE(InSharedIoMemory(base, info.size));
  EXPECT_TRUE(InSharedIoMemory(base + info.size - 4096, 4096));
  EXPECT_FALSE(InSharedIoMemory(base + info.size - 4096, 4097));  // crosses the end
  EXPECT_FALSE(InSharedIoMemory(base, info.size + 1));
  EXPECT_FALSE(InSharedIoMemory(base + 4096, std::numeric_limits<uint64_t>::max()));
  EXPECT_FALSE(InSharedIoMemory(base + info.size, 1));  // just past it
  EXPECT_FALSE(InSharedIoMemory(base - 1, 1));          // just before it
  EXPECT_FALSE(InSharedIoMemory(base - 1, 2));          // crosses the start
  int on_stack = 0;
  EXPECT_FALSE(InSharedIoMemory(&on_stack, sizeof(on_stack)));
  std::vector<uint8_t> on_heap(4096);
  EXPECT_FALSE(InSharedIoMemory(on_heap.data(), on_heap.size()));
  EXPECT_FALSE(InSharedIoMemory(nullptr, 0));
}

TEST(SharedIoMemoryTest, TheSizeCannotChangeOnceTheArenaExists) {
  SharedIoArenaInfo info = Arena();
  absl::Status s = SetSharedIoArenaSize(32 * kMiB);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_EQ(Arena().size, info.size);
}

TEST(SharedIoMemoryTest, MoreThanTheArenaIsResourceExhaustedNamingTheOwner) {
  SharedIoArenaInfo info = Arena();
  const uint64_t allocated_before = SharedIoBytesAllocated();
  absl::StatusOr<IoMemory> memory = IoMemory::AllocateShared(info.size + 4096, "\"Vhost0\"");
  ASSERT_FALSE(memory.ok());
  EXPECT_EQ(memory.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(memory.status().message(), HasSubstr("\"Vhost0\""));
  EXPECT_THAT(memory.status().message(), HasSubstr("shared I/O arena"));
  EXPECT_THAT(memory.status().message(), HasSubstr("free"));
  EXPECT_EQ(SharedIoBytesAllocated(), allocated_before);
}

TEST(SharedIoMemoryTest, MovingHandsOverAndAssignmentReleasesTheOldBlock) {
  const uint64_t allocated_before = SharedIoBytesAllocated();
  absl::StatusOr<IoMemory> a = IoMemory::AllocateShared(64 * kKiB, "a");
  absl::StatusOr<IoMemory> b = IoMemory::AllocateShared(64 * kKiB, "b");
  ASSERT_TRUE(a.ok() && b.ok());
  uint8_t* a_data = a->data();
  IoMemory moved(std::move(*a));
  EXPECT_EQ(moved.data(), a_data);
  EXPECT_TRUE(moved.shared());
  EXPECT_EQ(a->data(), nullptr);
  EXPECT_FALSE(a->shared());
  moved = std::move(*b);  // a's block goes back now
  EXPECT_EQ(SharedIoBytesAllocated(), allocated_before + 64 * kKiB);
  moved = IoMemory();
  EXPECT_EQ(SharedIoBytesAllocated(), allocated_before);
}

TEST(SharedIoMemoryTest, ConcurrentAllocationsNeverOverlap) {
  const uint64_t allocated_before = SharedIoBytesAllocated();
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &failures] {
      for (int i = 0; i < 200; ++i) {
        const uint64_t size = static_cast<uint64_t>((i % 5) + 1) * 4096;
        absl::StatusOr<void*> p = AllocateSharedIo(size, "thread");
        if (!p.ok()) {
          ++failures;
          continue;
        }
        auto* bytes = static_cast<uint8_t*>(*p);
        // Zero when received, and ours alone while held.
        if (!AllZero(bytes, size)) ++failures;
        std::memset(bytes, t + 1, size);
        for (uint64_t j = 0; j < size; j += 512) {
          if (bytes[j] != t + 1) ++failures;
        }
        FreeSharedIo(*p);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(SharedIoBytesAllocated(), allocated_before);
}

// In a fresh process: nothing is in shared memory before the arena exists, and the size option
// applies. Returns a bit per failed check (0: all passed).
int CheckAFreshProcess() {
  static int outside = 0;
  int failed = 0;
  if (InSharedIoMemory(nullptr, 0) || InSharedIoMemory(&outside, 1)) failed |= 1;
  if (SetSharedIoArenaSize(3 * kMiB).code() != absl::StatusCode::kInvalidArgument) failed |= 2;
  if (SetSharedIoArenaSize(2 * kMiB).code() != absl::StatusCode::kInvalidArgument) failed |= 4;
  if (!SetSharedIoArenaSize(32 * kMiB).ok()) failed |= 8;
  absl::StatusOr<SharedIoArenaInfo> info = SharedIoArena();
  if (!info.ok() || info->size != 32 * kMiB) failed |= 16;
  // The option only sets the size: what fits is had, the rest is refused.
  absl::StatusOr<IoMemory> fits = IoMemory::AllocateShared(16 * kMiB, "fits");
  if (!fits.ok()) failed |= 32;
  absl::StatusOr<IoMemory> too_much = IoMemory::AllocateShared(17 * kMiB, "too much");
  if (too_much.status().code() != absl::StatusCode::kResourceExhausted) failed |= 64;
  return failed;
}

TEST(SharedIoMemoryTest, BeforeTheArenaNothingIsSharedAndTheSizeMaySet) {
  // Threadsafe: the child re-executes the binary for this test alone, so it has no arena yet
  // (a forked child would inherit this process's).
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(std::_Exit(CheckAFreshProcess()), ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace pollux
