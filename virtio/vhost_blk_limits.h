// What the target advertises to guests and sizes its per-request state by. Private header.
#pragma once

#include <cstdint>

namespace pollux {

// Data segments per request the guest may use (config seg_max), as qemu-storage-daemon.
inline constexpr uint32_t kVhostBlkSegMax = 126;
// Iovecs per request: the data segments, the header and the status byte, and room for a few
// buffers that cross from one guest memory region into the next.
inline constexpr int kVhostBlkTaskIovecs = static_cast<int>(kVhostBlkSegMax) + 8;
// Largest data segment (config size_max).
inline constexpr uint32_t kVhostBlkSizeMax = 128 * 1024;
// Discard and write-zeroes: one segment per request, up to 2 GiB.
inline constexpr uint32_t kVhostBlkMaxRangeSectors = 1u << 22;
// Queues a controller offers (config num_queues; QEMU's num-queues may not exceed it).
inline constexpr uint16_t kVhostBlkMaxQueues = 64;
// Interrupt coalescing re-measures each queue's request rate this often (SPDK: every 10 ms).
inline constexpr uint64_t kVhostCoalescingChecksPerSecond = 100;

}  // namespace pollux
