// A vhost-user-blk back-end for tests of pollux's vhost-user front-end: a RAM disk served over a
// Unix socket, split and packed rings, and faults injected on request.
//
// Lifecycle: construct with options, Start() (creates and listens on the socket), then one
// front-end at a time connects; after it disconnects the next one may. Stop() (or the destructor)
// joins the threads and removes the socket. Two threads of its own: one speaks the protocol
// (accepts, reads messages, replies), one polls the enabled queues and completes requests. All
// public methods may be called from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace pollux::testing {

// The most queues the back-end serves (options.num_queues is 1..kVhostTestMaxQueues).
inline constexpr uint32_t kVhostTestMaxQueues = 8;

// Misbehaviour injected once. `fault_after` counts the events that go right before the fault
// fires (0: the very first one is faulty); the events are requests, messages or replies as noted.
// Counts run over the back-end's lifetime, not per connection, so the front-end that reconnects
// after the fault finds a healthy back-end.
enum class VhostUserTestFault {
  kNone,
  // Completed request number fault_after gets a used id >= the queue size.
  kUsedIdOutOfRange,
  // Completed request number fault_after gets a used len one byte larger than its writable bytes.
  kUsedLenTooLong,
  // Completed request number fault_after: split, used->idx advances by queue size + 1; packed,
  // the used descriptor carries a buffer id never made available on that queue.
  kUsedIdxJump,
  // Reply number fault_after (explicit replies and REPLY_ACK acks alike) carries another
  // request code.
  kWrongReplyType,
  // Reply number fault_after has a size field 4 bytes too large (and that many bytes follow,
  // zero-padded, so the stream stays framed).
  kBadReplySize,
  // Message number fault_after is not handled: the back-end closes the connection on receipt.
  kCloseDuringHandshake,
  // Upon receiving request number fault_after (popped from a ring), the back-end stops processing
  // every queue and closes the connection: that request and any still pending never complete.
  kCloseMidIo,
  // From message number fault_after on, messages are read and dropped without an answer; the
  // socket stays open until the front-end closes it.
  kHang,
};

// "none", "used-id-out-of-range", "used-len-too-long", "used-idx-jump", "wrong-reply-type",
// "bad-reply-size", "close-during-handshake", "close-mid-io", "hang".
const char* VhostUserTestFaultName(VhostUserTestFault fault);
std::optional<VhostUserTestFault> ParseVhostUserTestFault(std::string_view name);

struct VhostUserTestBackendOptions {
  std::string socket_path;         // created by Start(), removed by Stop()
  uint64_t num_blocks = 16384;     // disk size in blocks
  uint32_t block_size = 512;       // 512 or 4096 (a power of two in 512..65536)
  uint32_t num_queues = 1;         // 1..kVhostTestMaxQueues (GET_QUEUE_NUM, config num_queues)
  uint32_t queue_size_max = 256;   // the largest SET_VRING_NUM accepted (a power of two)
  bool offer_packed_ring = false;  // VIRTIO_F_RING_PACKED
  bool offer_event_idx = true;     // VIRTIO_RING_F_EVENT_IDX
  bool offer_indirect = true;      // VIRTIO_RING_F_INDIRECT_DESC
  bool write_cache = true;         // offers VIRTIO_BLK_F_CONFIG_WCE, config wce starts at 1
  bool read_only = false;          // VIRTIO_BLK_F_RO: writes, discards, write zeroes fail
  uint32_t seg_max = 126;          // data segments per request (enforced: more -> IOERR)
  uint32_t size_max = 1u << 20;    // bytes per segment (enforced: larger -> IOERR)
  uint32_t max_discard_sectors = 1u << 16;  // per segment, 512-byte sectors
  uint32_t max_discard_seg = 16;
  uint32_t max_write_zeroes_sectors = 1u << 16;  // per segment, 512-byte sectors
  uint32_t max_write_zeroes_seg = 16;
  std::string serial = "pollux-vhost-test";  // GET_ID answer (up to 20 bytes)
  uint32_t completion_delay_us = 0;  // each request completes this long after it was received
  VhostUserTestFault fault = VhostUserTestFault::kNone;
  uint64_t fault_after = 0;
};

// What the back-end saw and did; updated by its threads, read by tests at any time.
struct VhostUserTestBackendCounters {
  std::atomic<uint64_t> connections{0};         // front-ends accepted
  std::atomic<uint64_t> messages{0};            // vhost-user messages received
  std::atomic<uint64_t> requests_received{0};   // chains popped from rings
  std::atomic<uint64_t> requests_completed{0};  // used entries written
  // Requests executed, per virtio-blk type.
  std::atomic<uint64_t> requests_in{0};
  std::atomic<uint64_t> requests_out{0};
  std::atomic<uint64_t> requests_flush{0};
  std::atomic<uint64_t> requests_get_id{0};
  std::atomic<uint64_t> requests_discard{0};
  std::atomic<uint64_t> requests_write_zeroes{0};
  std::atomic<uint64_t> requests_unsupported{0};  // answered VIRTIO_BLK_S_UNSUPP
  std::atomic<uint64_t> requests_failed{0};       // answered VIRTIO_BLK_S_IOERR (or no status)
  std::atomic<uint64_t> flushes{0};               // FLUSH requests answered OK
  std::array<std::atomic<uint64_t>, kVhostTestMaxQueues> requests_per_queue{};  // received
  std::atomic<uint64_t> kicks{0};        // reads of a kick eventfd that returned a count
  std::atomic<uint64_t> interrupts{0};   // writes to a call eventfd
  std::atomic<uint64_t> ring_errors{0};  // malformed rings (the queue stops, as with vu_panic)
};

class VhostUserTestBackend {
 public:
  using Options = VhostUserTestBackendOptions;
  using Fault = VhostUserTestFault;
  using Counters = VhostUserTestBackendCounters;

  explicit VhostUserTestBackend(Options options);
  ~VhostUserTestBackend();  // Stop()
  VhostUserTestBackend(const VhostUserTestBackend&) = delete;
  VhostUserTestBackend& operator=(const VhostUserTestBackend&) = delete;

  // Checks the options, creates the socket (replacing a stale socket file) and starts the
  // threads. Fails on bad options or when the socket cannot be created.
  absl::Status Start();
  // Disconnects the front-end, joins the threads and removes the socket. Idempotent.
  void Stop();

  const Options& options() const;
  const Counters& counters() const;

  // The RAM disk itself; reading or writing it races with requests in flight, so tests use it
  // only while the front-end is idle. ReadDisk/WriteDisk lock out the data path instead; both
  // return false when the range is past the end.
  std::span<uint8_t> disk();
  bool ReadDisk(uint64_t offset, std::span<uint8_t> out) const;
  bool WriteDisk(uint64_t offset, std::span<const uint8_t> data);

  bool connected() const;                // a front-end is connected
  bool fault_fired() const;              // the configured fault has happened
  uint64_t negotiated_features() const;  // SET_FEATURES of the current connection (0 if none)
  uint64_t negotiated_protocol_features() const;
  bool write_cache_enabled() const;  // config wce (changed by SET_CONFIG)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pollux::testing
