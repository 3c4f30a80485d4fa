// The address ranges that I/O buffers are carved from (every IoMemory), published for the
// engines that can register memory with the kernel once instead of pinning it on every request:
// io_uring's registered ("fixed") buffers. A read into an unregistered buffer makes the kernel
// look up and pin its pages, and unpin and dirty-check them at completion; into a registered
// one it does neither.
//
// Publishing and withdrawing a range is a control-path operation (a mutex). An engine checks
// IoRegionsGeneration() (one atomic load) on its data path and takes a new snapshot only when
// it has moved. A range is withdrawn before its memory is returned, so an engine that sees the
// generation it synced cannot be holding a range whose address now means other memory.
#pragma once

#include <cstdint>
#include <vector>

namespace pollux {

struct IoRegionSpan {
  uintptr_t begin = 0;
  uintptr_t end = 0;  // one past the last byte
};

// RAII: a published range, withdrawn on destruction. Move-only.
class IoRegion {
 public:
  IoRegion() = default;
  // Publishes [base, base + size). Any thread.
  static IoRegion Publish(const void* base, uint64_t size);

  IoRegion(IoRegion&& other) noexcept;
  IoRegion& operator=(IoRegion&& other) noexcept;
  IoRegion(const IoRegion&) = delete;
  IoRegion& operator=(const IoRegion&) = delete;
  ~IoRegion() { Withdraw(); }

  bool published() const { return id_ != 0; }
  // Withdraws the range now (idempotent).
  void Withdraw();

 private:
  explicit IoRegion(uint64_t id) : id_(id) {}
  uint64_t id_ = 0;
};

// Changes whenever a range is published or withdrawn (acquire: a snapshot taken after seeing a
// value holds at least the changes up to it).
uint64_t IoRegionsGeneration() noexcept;

// The ranges published now, sorted by address, and in `generation` the generation they are.
std::vector<IoRegionSpan> IoRegionsSnapshot(uint64_t& generation);

}  // namespace pollux
