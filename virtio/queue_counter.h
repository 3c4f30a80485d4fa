// A counter with one writer (its queue's thread) and readers anywhere (RPC). Private header.
#pragma once

#include <atomic>
#include <cstdint>

namespace pollux {

// A load and a store, not a fetch_add (a locked instruction): only the owning thread writes.
inline void AddToCounter(std::atomic<uint64_t>& counter, uint64_t n = 1) noexcept {
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

}  // namespace pollux
