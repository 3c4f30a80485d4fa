#include "pollux/env/io_regions.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <utility>

namespace pollux {
namespace {

struct Registry {
  std::mutex mutex;
  std::map<uint64_t, IoRegionSpan> spans;  // by id
  uint64_t next_id = 1;
};

Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: IoMemory may outlive static teardown
  return *r;
}

std::atomic<uint64_t> generation{0};

}  // namespace

IoRegion IoRegion::Publish(const void* base, uint64_t size) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  const uint64_t id = r.next_id++;
  const auto begin = reinterpret_cast<uintptr_t>(base);
  r.spans.emplace(id, IoRegionSpan{begin, begin + size});
  generation.fetch_add(1, std::memory_order_release);
  return IoRegion(id);
}

IoRegion::IoRegion(IoRegion&& other) noexcept : id_(std::exchange(other.id_, 0)) {}

IoRegion& IoRegion::operator=(IoRegion&& other) noexcept {
  if (this != &other) {
    Withdraw();
    id_ = std::exchange(other.id_, 0);
  }
  return *this;
}

void IoRegion::Withdraw() {
  if (id_ == 0) return;
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.spans.erase(id_);
  generation.fetch_add(1, std::memory_order_release);
  id_ = 0;
}

uint64_t IoRegionsGeneration() noexcept { return generation.load(std::memory_order_acquire); }

std::vector<IoRegionSpan> IoRegionsSnapshot(uint64_t& out_generation) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<IoRegionSpan> spans;
  spans.reserve(r.spans.size());
  for (const auto& [id, span] : r.spans) spans.push_back(span);
  std::sort(spans.begin(), spans.end(),
            [](const IoRegionSpan& a, const IoRegionSpan& b) { return a.begin < b.begin; });
  out_generation = generation.load(std::memory_order_relaxed);  // stable under the mutex
  return spans;
}

}  // namespace pollux
