// The virtqueue fuzz target's guest memory: region A (the rings at fixed offsets, then room
// for indirect tables and buffers) at a guest-physical address the input picks, and an
// optional region B beside it, each its own heap block so that the sanitizer sees a byte read
// past a region's end. A shadow copy tells which bytes the device wrote during one call.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "device_ring.h"

namespace pollux::fuzz {

[[noreturn]] inline void Fail(const char* what) {
  std::fprintf(stderr, "virtqueue_fuzz: %s\n", what);
  std::abort();
}
inline void Require(bool ok, const char* what) {
  if (!ok) Fail(what);
}

// Region A's layout (host offsets, the same as offsets from its guest address).
inline constexpr uint64_t kRegionABytes = 0x6000;
inline constexpr uint64_t kDescOffset = 0x0000;        // descriptors: 256 * 16 bytes at most
inline constexpr uint64_t kDriverAreaOffset = 0x1000;  // split avail ring, packed driver event
inline constexpr uint64_t kDeviceAreaOffset = 0x2000;  // split used ring, packed device event
inline constexpr uint64_t kTableOffset = 0x3000;       // indirect tables of generated chains
inline constexpr uint64_t kDataOffset = 0x4000;        // their buffers, running on into B
inline constexpr uint64_t kMaxRegionBBytes = 0x4000;
inline constexpr uint64_t kGapBytes = 0x1000;  // between A and B when they are not adjacent

enum class RegionBPlacement : uint8_t { kAfterA, kAfterAWithGap, kBeforeA, kNone };

// A byte range of region A the device may write during one call.
struct DeviceWrite {
  uint64_t offset = 0;
  uint64_t len = 0;
};

class FuzzGuest {
 public:
  FuzzGuest(uint64_t gpa_a, RegionBPlacement placement, uint64_t size_b)
      : host_a_(new uint8_t[kRegionABytes]()),
        host_b_(new uint8_t[size_b]()),
        shadow_a_(kRegionABytes),
        shadow_b_(size_b),
        gpa_a_(gpa_a) {
    gpa_b_ = placement == RegionBPlacement::kAfterAWithGap ? gpa_a + kRegionABytes + kGapBytes
             : placement == RegionBPlacement::kBeforeA     ? gpa_a - size_b
                                                           : gpa_a + kRegionABytes;
    given_.push_back({gpa_a_, kRegionABytes, host_a_.get()});
    if (placement != RegionBPlacement::kNone) given_.push_back({gpa_b_, size_b, host_b_.get()});
    // What GuestMemory should keep: regions whose last byte has an address (the sum wraps
    // otherwise), stated here as a comparison that cannot overflow.
    for (const GuestMemoryRegion& r : given_) {
      if (r.size <= UINT64_MAX - r.guest_phys_addr) kept_.push_back(r);
    }
    memory_ = GuestMemory(given_);
  }

  const GuestMemory& memory() const { return memory_; }
  std::span<const GuestMemoryRegion> kept() const { return kept_; }
  uint64_t gpa_a() const { return gpa_a_; }
  uint64_t gpa_b() const { return gpa_b_; }
  uint64_t size_b() const { return shadow_b_.size(); }
  // Region A's host bytes, where the rings are whether or not its guest address is usable.
  uint8_t* ring_memory() const { return host_a_.get(); }

  // The guest writes bytes at a guest address; bytes outside the kept regions are dropped.
  void Write(uint64_t gpa, const void* bytes, size_t n) {
    const auto* from = static_cast<const uint8_t*>(bytes);
    for (size_t i = 0; i < n; ++i) {
      if (uint8_t* to = HostByte(gpa + i)) *to = from[i];
    }
  }

  // Whether an iovec lies wholly inside one kept region's host bytes.
  bool Holds(const iovec& v) const {
    const auto base = reinterpret_cast<uintptr_t>(v.iov_base);
    for (const GuestMemoryRegion& r : kept_) {
      const auto host = reinterpret_cast<uintptr_t>(r.host_addr);
      if (v.iov_len != 0 && base >= host && base - host < r.size &&
          v.iov_len <= r.size - (base - host)) {
        return true;
      }
    }
    return false;
  }

  // Takes the memory as it is now as the reference for CheckDeviceWrites.
  void SyncShadow() {
    std::memcpy(shadow_a_.data(), host_a_.get(), shadow_a_.size());
    std::memcpy(shadow_b_.data(), host_b_.get(), shadow_b_.size());
  }

  // Fails when a byte changed since SyncShadow outside `allowed` (ranges of region A), then
  // syncs: the device writes nothing but the ring fields its call is documented to write.
  void CheckDeviceWrites(std::span<const DeviceWrite> allowed, const char* call) {
    if (std::memcmp(shadow_b_.data(), host_b_.get(), shadow_b_.size()) != 0) Fail(call);
    if (std::memcmp(shadow_a_.data(), host_a_.get(), shadow_a_.size()) != 0) {
      for (uint64_t i = 0; i < kRegionABytes; ++i) {
        if (shadow_a_[i] == host_a_[i]) continue;
        bool ok = false;
        for (const DeviceWrite& w : allowed) ok |= i >= w.offset && i - w.offset < w.len;
        if (!ok) Fail(call);
      }
    }
    SyncShadow();
  }

 private:
  uint8_t* HostByte(uint64_t gpa) const {
    for (const GuestMemoryRegion& r : kept_) {
      if (gpa >= r.guest_phys_addr && gpa - r.guest_phys_addr < r.size) {
        return r.host_addr + (gpa - r.guest_phys_addr);
      }
    }
    return nullptr;
  }

  std::unique_ptr<uint8_t[]> host_a_;
  std::unique_ptr<uint8_t[]> host_b_;
  std::vector<uint8_t> shadow_a_;
  std::vector<uint8_t> shadow_b_;
  uint64_t gpa_a_;
  uint64_t gpa_b_ = 0;
  std::vector<GuestMemoryRegion> given_;
  std::vector<GuestMemoryRegion> kept_;
  GuestMemory memory_;
};

}  // namespace pollux::fuzz
