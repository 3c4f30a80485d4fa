// One virtio-blk request queue of a vhost-user controller, driver side: its ring (split or
// packed), the per-request memory the back-end reads and writes (request headers, status
// bytes, discard ranges, indirect tables), the kick and call eventfds, and the BdevIo of each
// request in flight.
//
// The controller creates every queue at attach (the ring set-up goes over the socket) and a
// bdev channel claims one for its thread. From then on only that thread touches it: Submit
// writes descriptors and publishes them at once, Poll reaps completions and kicks the
// back-end once per batch, and only when the back-end asked for it.
//
// Private header.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "pollux/bdev/bdev_io.h"
#include "pollux/env/io_memory.h"

namespace pollux {

// What the back-end's configuration allows, as the controller negotiated it.
struct VirtioBlkQueueLimits {
  uint32_t block_size = 512;
  uint32_t max_data_segments = 126;  // data descriptors per request
  bool indirect = false;             // VIRTIO_RING_F_INDIRECT_DESC negotiated
  bool event_idx = false;            // VIRTIO_RING_F_EVENT_IDX negotiated
  bool packed = false;               // VIRTIO_F_RING_PACKED negotiated
  uint32_t max_discard_sectors = 0;  // per request; 0: no limit beyond 32 bits
  uint32_t max_write_zeroes_sectors = 0;
};

// Figures of one queue, written by its thread (AddToCounter), read by RPC.
struct VirtioBlkQueueCounters {
  std::atomic<uint64_t> requests{0};     // virtio requests made available
  std::atomic<uint64_t> completions{0};  // used entries reaped
  std::atomic<uint64_t> kicks{0};        // notifications sent to the back-end
  std::atomic<uint64_t> arms{0};         // times completion interrupts were asked for
};

// Per-I/O scratch space (the module's io_context_size): where a discard or write-zeroes
// larger than the back-end's limit continues.
struct VirtioBlkIo {
  uint64_t next_sector;
  uint64_t remaining_sectors;
};

class VirtioBlkQueue {
 public:
  // `name` names the queue in logs ("VirtioBlk0 queue 1").
  static absl::StatusOr<std::unique_ptr<VirtioBlkQueue>> Create(std::string name, uint16_t index,
                                                                uint32_t size,
                                                                const VirtioBlkQueueLimits& limits);
  virtual ~VirtioBlkQueue();
  VirtioBlkQueue(const VirtioBlkQueue&) = delete;
  VirtioBlkQueue& operator=(const VirtioBlkQueue&) = delete;

  // ---- Set-up (the controller, before the queue is claimed) ----
  uint16_t index() const { return index_; }
  uint32_t size() const { return size_; }
  const std::string& name() const { return name_; }
  int kick_fd() const { return kick_fd_; }
  int call_fd() const { return call_fd_; }
  virtual uint64_t desc_address() const = 0;
  virtual uint64_t avail_address() const = 0;
  virtual uint64_t used_address() const = 0;
  virtual uint32_t initial_base() const = 0;
  // VIRTIO_BLK_T_GET_ID, waited for on the calling thread (at attach, before any channel).
  virtual absl::StatusOr<std::string> GetId(uint64_t timeout_us) = 0;

  // ---- Data path, on the claiming thread ----
  // Makes the request available. False when the ring has no room (retry later).
  virtual bool Submit(BdevIo& io) noexcept = 0;
  // Reaps completions (completing their BdevIos) and kicks the back-end for what was
  // submitted since, if it asked. Returns the completions reaped.
  virtual int Poll() noexcept = 0;
  // Interrupts on (before the reactor sleeps); false if a completion is already there.
  virtual bool Arm() noexcept = 0;
  virtual void Disarm() noexcept = 0;
  uint32_t in_flight() const { return in_flight_; }
  // The back-end broke the protocol or went away: every request in flight fails with
  // `error_number`, later ones fail at once.
  void FailAll(int error_number) noexcept;
  bool dead() const { return dead_; }
  // Set when Poll found the back-end breaking the protocol (the controller then hot-removes
  // the device); `broken_reason()` says how.
  bool broken() const { return broken_reason_ != nullptr; }
  const char* broken_reason() const { return broken_reason_; }

  const VirtioBlkQueueCounters& counters() const { return counters_; }

 protected:
  // Memory the back-end sees for one request id.
  struct alignas(64) RequestSlot {
    uint8_t header[16];  // struct virtio_blk_outhdr
    uint8_t range[16];   // struct virtio_blk_discard_write_zeroes
    uint8_t status;
    uint8_t pad[7];
    uint8_t id[24];      // GET_ID's 20 bytes
  };
  static_assert(sizeof(RequestSlot) == 64);

  VirtioBlkQueue(std::string name, uint16_t index, uint32_t size,
                 const VirtioBlkQueueLimits& limits);
  absl::Status Init(size_t ring_bytes);
  uint8_t* ring_memory() const { return memory_.data(); }
  RequestSlot& slot(uint16_t id) const { return slots_[id]; }
  void* indirect_table(uint16_t id) const { return indirect_ + static_cast<size_t>(id) * table_bytes_; }

  // Writes `io`'s next request into its slot (request id `id`) and hands its descriptors to
  // push(address, length, device_writes), in order. Returns, for a discard or write-zeroes,
  // the sectors this request covers (the back-end's limit may cut it), else 0.
  template <typename Push>
  uint64_t Describe(BdevIo& io, uint16_t id, Push& push) noexcept;
  // After a reap that found the protocol broken.
  void Break(const char* why) noexcept;
  void Kick() noexcept;

  const std::string name_;
  const uint16_t index_;
  const uint32_t size_;
  const VirtioBlkQueueLimits limits_;
  const uint32_t sector_shift_;  // log2(block_size / 512)
  size_t table_bytes_ = 0;       // bytes of one indirect table
  IoMemory memory_;              // ring | slots | indirect tables, in shared I/O memory
  RequestSlot* slots_ = nullptr;
  uint8_t* indirect_ = nullptr;
  std::unique_ptr<BdevIo*[]> ios_;  // by request id: its I/O, nullptr when free
  int kick_fd_ = -1;
  int call_fd_ = -1;
  uint32_t in_flight_ = 0;
  bool dead_ = false;
  const char* broken_reason_ = nullptr;
  bool warned_length_ = false;
  VirtioBlkQueueCounters counters_;
};

}  // namespace pollux
