// What the device ring tests share: a fake guest memory of three regions (two adjacent in
// guest addresses, not in host memory, the third after a gap), where rings are laid out by
// hand, and the constants that place them.
#pragma once

#include "device_ring.h"


#include <gtest/gtest.h>
#include <sys/mman.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <ostream>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "packed_virtqueue.h"
#include "split_virtqueue.h"

namespace pollux::device_ring_testing {

// Guest-physical layout. A and B are adjacent (B starts where A ends); C follows a gap.
constexpr uint64_t kGpaA = 0x10000;
constexpr uint64_t kSizeA = 0x10000;
constexpr uint64_t kGpaB = kGpaA + kSizeA;
constexpr uint64_t kSizeB = 0x10000;
constexpr uint64_t kGpaC = 0x100000;
constexpr uint64_t kSizeC = 0x80000;
constexpr uint64_t kGap = 0x40000;  // in no region
// Host offsets: A and B not contiguous, so a buffer across them takes two iovecs.
constexpr uint64_t kHostA = 0;
constexpr uint64_t kHostB = 0x30000;
constexpr uint64_t kHostC = 0x50000;
constexpr uint64_t kHostBytes = kHostC + kSizeC;

// Where the tests put things, all in C.
constexpr uint64_t kDescGpa = kGpaC;            // descriptor table / packed ring
constexpr uint64_t kAvailGpa = kGpaC + 0x4000;  // split avail ring / packed driver event
constexpr uint64_t kUsedGpa = kGpaC + 0x5000;   // split used ring / packed device event
constexpr uint64_t kTableGpa = kGpaC + 0x8000;  // indirect tables
constexpr uint64_t kDataGpa = kGpaC + 0x20000;  // buffers

constexpr uint16_t kNext = VRING_DESC_F_NEXT;
constexpr uint16_t kWrite = VRING_DESC_F_WRITE;
constexpr uint16_t kIndirect = VRING_DESC_F_INDIRECT;
constexpr uint16_t kAvail = 1u << VRING_PACKED_DESC_F_AVAIL;
constexpr uint16_t kUsed = 1u << VRING_PACKED_DESC_F_USED;
constexpr uint16_t kWrap = 1u << 15;

constexpr int kMaxIov = 16;
// An indirect table one entry longer than allowed.
constexpr uint32_t kTooLong = (kMaxIndirectEntries + 1) * 16;

// A chain's id and counts on one line: "id=5 slots=3 iov=1/3 bytes=16/4097" is id 5, 3 ring
// slots, 1 readable iovec of 3, 16 readable bytes and 4097 writable.
inline std::string Counts(const DescriptorChain& c) {
  return "id=" + std::to_string(c.id) + " slots=" + std::to_string(c.ring_slots) +
         " iov=" + std::to_string(c.readable_count) + "/" + std::to_string(c.iov_count) +
         " bytes=" + std::to_string(c.readable_bytes) + "/" + std::to_string(c.writable_bytes);
}

class FakeGuest {
 public:
  FakeGuest() {
    void* p = mmap(nullptr, kHostBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    EXPECT_NE(p, MAP_FAILED);
    host_ = static_cast<uint8_t*>(p);
    // Given out of order: GuestMemory sorts them.
    const GuestMemoryRegion regions[] = {{kGpaC, kSizeC, host_ + kHostC},
                                         {kGpaA, kSizeA, host_ + kHostA},
                                         {kGpaB, kSizeB, host_ + kHostB}};
    memory_ = GuestMemory(regions);
  }
  ~FakeGuest() { munmap(host_, kHostBytes); }
  FakeGuest(const FakeGuest&) = delete;
  FakeGuest& operator=(const FakeGuest&) = delete;

  // The test's own translation, independent of GuestMemory's.
  uint8_t* Host(uint64_t gpa) const {
    if (gpa >= kGpaC) return host_ + kHostC + (gpa - kGpaC);
    if (gpa >= kGpaB) return host_ + kHostB + (gpa - kGpaB);
    return host_ + kHostA + (gpa - kGpaA);
  }
  template <typename T>
  T* At(uint64_t gpa) const {
    return reinterpret_cast<T*>(Host(gpa));
  }
  const GuestMemory& memory() const { return memory_; }

 private:
  uint8_t* host_ = nullptr;
  GuestMemory memory_;
};

}  // namespace pollux::device_ring_testing
