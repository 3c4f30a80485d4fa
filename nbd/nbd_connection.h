// One NBD client, served by a pollux thread of its own (created when the client connects, so
// the scheduler can place busy clients on different cores): the handshake, then its requests
// read from the socket, submitted to the export's bdev, and their replies sent back, many in
// flight, in batches, with no thread blocking anywhere.
//
// The socket is polled while the client is busy; once idle it is watched by the reactor's
// wake-up (the poller's wake fd), so idle clients cost their reactor nothing.
#pragma once

#include <sys/uio.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nbd_handshake.h"
#include "nbd_request.h"
#include "pollux/bdev/bdev_desc.h"
#include "pollux/reactor/io_channel.h"
#include "pollux/reactor/poller.h"
#include "pollux/reactor/thread.h"

namespace pollux::nbd {

class NbdConnection final : private HandshakeExports {
 public:
  // Requests a client may have in flight; more wait in the socket.
  static constexpr uint32_t kMaxRequests = 128;
  // Data buffers one client may hold at once (a request that would exceed it waits).
  static constexpr size_t kBufferBudget = 64u << 20;
  // Buffers up to this size stay with their request slot for the next request.
  static constexpr size_t kKeptBufferSize = 1u << 20;
  // A client that has not chosen an export by then is disconnected (QEMU's default too).
  static constexpr uint64_t kHandshakeSeconds = 10;

  // Takes `fd`, a connected non-blocking socket. Start runs on the connection's own thread.
  NbdConnection(uint64_t id, int fd, std::string peer);
  NbdConnection(const NbdConnection&) = delete;
  NbdConnection& operator=(const NbdConnection&) = delete;

  uint64_t id() const { return id_; }

  // On the connection's thread: greets the client and starts polling its socket.
  void Start();
  // On the connection's thread: stops serving at once (export removed, server stopping, bdev
  // gone): the socket is shut, the I/O in flight is waited for, then the connection ends and
  // its thread exits.
  void Kill(const std::string& reason);

 private:
  struct Slot {
    NbdConnection* connection = nullptr;
    Request request;
    uint32_t error = 0;
    bool flushing_for_fua = false;
    uint8_t header_size = 0;
    uint8_t header[kMaxReplyHeaderSize];
    uint8_t* data = nullptr;  // aligned for direct I/O
    size_t capacity = 0;
    uint32_t received = 0;  // payload bytes of a WRITE read so far
    Slot* next = nullptr;   // free list or reply queue
  };

  enum class Phase : uint8_t {
    kHandshake,
    kServing,
    kDraining,  // the client sent DISCONNECT: finish what is in flight, then close
    kDead,      // no more socket I/O: wait for the bdev I/O in flight, then end
  };

  ~NbdConnection() override;

  // HandshakeExports.
  absl::StatusOr<ExportInfo> Find(std::string_view name) override;
  std::vector<std::string> Names() override;
  absl::Status Open(const ExportInfo& info) override;

  PollResult Poll();
  bool PollHandshake();
  bool ReceiveRequests();
  // Reads into the input buffer; false when nothing came (or the socket died).
  bool FillInput();
  // Takes the request at the front of the input if a slot and its buffer are free for it;
  // false when it must wait.
  bool TakeRequest();
  bool ReceivePayload();
  bool DiscardPayload();
  void Submit(Slot* slot);
  static void OnIoDone(void* arg, BdevIoStatus status, int error_number);
  void Completed(Slot* slot, BdevIoStatus status, int error_number);
  void Reply(Slot* slot, uint32_t error);
  // Sends queued handshake bytes and replies, as many as the socket takes in one call.
  bool FlushReplies();
  bool HasPendingOutput() const { return handshake_sent_ < handshake_out_.size() || out_head_; }
  bool EnsureBuffer(Slot* slot, size_t size);
  void ReleaseSlot(Slot* slot);
  void StartSendRetry();
  // Ends the socket's use: `reason` is logged (at `warning` for a client's fault).
  void Die(const std::string& reason, bool client_fault);
  // Ends the connection (deleting it) when nothing is in flight any more; true if it did.
  bool MaybeFinish();

  const uint64_t id_;
  const int fd_;
  const std::string peer_;
  Thread* thread_ = nullptr;
  Phase phase_ = Phase::kHandshake;
  PollerHandle poller_;
  PollerHandle handshake_timer_;
  PollerHandle send_retry_;
  Handshake handshake_;
  std::string handshake_out_;
  size_t handshake_sent_ = 0;

  TransmissionParams params_;
  std::string export_name_;
  std::unique_ptr<BdevDesc> desc_;
  IoChannelRef channel_;
  uint64_t bdev_blocks_ = 0;

  std::vector<uint8_t> in_;
  size_t in_begin_ = 0;
  size_t in_end_ = 0;
  std::array<Slot, kMaxRequests> slots_;
  Slot* free_slots_ = nullptr;
  Slot* receiving_ = nullptr;  // a WRITE whose payload is being read
  uint64_t discard_left_ = 0;  // payload bytes of a refused WRITE still to drop
  Slot* out_head_ = nullptr;   // replies waiting to be sent, in order
  Slot* out_tail_ = nullptr;
  size_t out_sent_ = 0;      // bytes of the head reply already sent
  uint32_t in_flight_ = 0;   // bdev I/O outstanding
  uint32_t busy_slots_ = 0;  // slots not free: receiving, in flight or replying
  size_t buffer_bytes_ = 0;
};

}  // namespace pollux::nbd
