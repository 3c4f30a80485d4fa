#include "memcpy_peer.h"

#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "absl/strings/str_format.h"
#include "random_offsets.h"

namespace pollux::perf {
namespace {

constexpr uint64_t kHugePage = 2ull << 20;

// An anonymous private mapping, unmapped on destruction.
class Mapping {
 public:
  Mapping() = default;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (base_ != nullptr) munmap(base_, size_);
  }

  // Maps `size` bytes (rounded up to 2 MiB, so the kernel can back all of it with huge
  // pages), asks for transparent huge pages, and touches every page now.
  std::string Map(uint64_t size) {
    size_ = (size + kHugePage - 1) & ~(kHugePage - 1);
    void* p = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      base_ = nullptr;
      return absl::StrFormat("mmap of %u bytes: %s", size_, strerror(errno));
    }
    base_ = static_cast<uint8_t*>(p);
    madvise(base_, size_, MADV_HUGEPAGE);  // advice only: 4 KiB pages still work
    // Non-zero contents, so that no page stays the shared zero page.
    std::memset(base_, 0x5a, size_);
    return {};
  }
  uint8_t* data() const { return base_; }

 private:
  uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
};

// Keeps the compiler from proving a copy useless (the buffers are never read back).
inline void Clobber() { asm volatile("" ::: "memory"); }

void RunPeer(const MemcpyPeerSpec& spec, MemcpyPeerResult& result) {
  result.cpu = spec.cpu;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(spec.cpu, &set);
  if (int err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set); err != 0) {
    result.error = absl::StrFormat("cannot run on core %d: %s", spec.cpu, strerror(err));
    return;
  }
  Mapping region;
  Mapping buffers;
  if (std::string e = region.Map(spec.region_bytes); !e.empty()) {
    result.error = "region: " + e;
    return;
  }
  if (std::string e = buffers.Map(spec.io_size * spec.buffers); !e.empty()) {
    result.error = "buffers: " + e;
    return;
  }

  const bool random = IsRandom(spec.workload);
  const uint64_t slots = spec.region_bytes / spec.io_size;
  // -o MIN-MAX: how many lengths a copy picks from (as Job::NextLength); 0: one size.
  const uint64_t length_choices = spec.io_size_min != 0 && spec.io_size_min < spec.io_size
                                      ? (spec.io_size - spec.io_size_min) / spec.io_size_step + 1
                                      : 0;
  uint64_t ranged_bytes = 0;
  const uint64_t read_threshold = (static_cast<uint64_t>(spec.read_percent) << 32) / 100;
  Xorshift64Star rng(static_cast<uint64_t>(spec.cpu) * 0x9E3779B97F4A7C15ULL + 1);
  uint64_t next_slot = 0;
  uint32_t buffer = 0;
  uint64_t ops = 0;

  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::seconds(spec.seconds);
  auto now = start;
  while (true) {
    // The clock costs a few tens of nanoseconds: read it once per 64 copies.
    for (int i = 0; i < 64; ++i) {
      uint64_t slot;
      if (random) {
        slot = ScaleRandom(rng.Next(), slots);
      } else {
        slot = next_slot;
        if (++next_slot == slots) next_slot = 0;
      }
      bool read;
      switch (spec.workload) {
        case Workload::kRead:
        case Workload::kRandRead:
          read = true;
          break;
        case Workload::kRw:
        case Workload::kRandRw:
          read = (rng.Next() >> 32) < read_threshold;
          break;
        default:
          read = false;
      }
      uint64_t length = spec.io_size;
      if (length_choices != 0) {
        length -= ScaleRandom(rng.Next(), length_choices) * spec.io_size_step;
        ranged_bytes += length;
      }
      uint8_t* disk = region.data() + slot * spec.io_size;
      uint8_t* buf = buffers.data() + static_cast<uint64_t>(buffer) * spec.io_size;
      if (++buffer == spec.buffers) buffer = 0;
      if (read) {
        std::memcpy(buf, disk, length);
      } else {
        std::memcpy(disk, buf, length);
      }
      Clobber();
    }
    ops += 64;
    now = Clock::now();
    if (now >= deadline) break;
  }
  result.ran = true;
  result.ops = ops;
  result.bytes = length_choices != 0 ? ranged_bytes : ops * spec.io_size;
  result.seconds = std::chrono::duration<double>(now - start).count();
}

}  // namespace

std::vector<MemcpyPeerResult> RunMemcpyPeers(const std::vector<MemcpyPeerSpec>& specs) {
  std::vector<MemcpyPeerResult> results(specs.size());
  std::vector<std::thread> threads;
  threads.reserve(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    threads.emplace_back([&specs, &results, i] { RunPeer(specs[i], results[i]); });
  }
  for (std::thread& t : threads) t.join();
  return results;
}

}  // namespace pollux::perf
