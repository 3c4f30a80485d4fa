#include "bdev_buffer_pool.h"

#include <rte_errno.h>

#include <atomic>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"

namespace pollux {
namespace {

// Ring names must be unique in the process: layers start and stop many times in one test.
std::atomic<int> ring_generation{0};

}  // namespace

absl::StatusOr<std::unique_ptr<BdevBufferPool>> BdevBufferPool::Create(const std::string& name,
                                                                       uint32_t count,
                                                                       uint32_t buffer_size,
                                                                       bool shared) {
  if (count == 0 || buffer_size == 0 || buffer_size % 4096 != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: %u buffers of %u bytes (at least one, of a multiple of 4 KiB)", name,
                        count, buffer_size));
  }
  const uint64_t bytes = uint64_t{count} * buffer_size;
  absl::StatusOr<IoMemory> memory =
      shared ? IoMemory::AllocateShared(bytes, name) : IoMemory::Allocate(bytes, name);
  if (!memory.ok()) return memory.status();
  std::string ring_name = absl::StrFormat("bdev_buf_%d", ring_generation.fetch_add(1));
  // RING_F_EXACT_SZ: room for exactly `count` (the ring rounds up to a power of two inside).
  rte_ring* ring = rte_ring_create(ring_name.c_str(), count, SOCKET_ID_ANY, RING_F_EXACT_SZ);
  if (ring == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("%s: cannot create the ring of its %u free buffers: %s", name, count,
                        rte_strerror(rte_errno)));
  }
  std::vector<void*> buffers(count);
  for (uint32_t i = 0; i < count; ++i) buffers[i] = memory->data() + uint64_t{i} * buffer_size;
  rte_ring_enqueue_bulk(ring, buffers.data(), count, nullptr);
  return std::unique_ptr<BdevBufferPool>(
      new BdevBufferPool(std::move(*memory), ring, count, buffer_size));
}

BdevBufferPool::~BdevBufferPool() { rte_ring_free(ring_); }

}  // namespace pollux
