// libFuzzer target: the vhost-user initiator's handling of what a back-end sends back on its
// socket (virtio/vhost_user_frontend.cc: headers, flags, sizes, acks, GET_VRING_BASE,
// GET_CONFIG; virtio/virtio_blk_controller.cc: the negotiation and the configuration space's
// checks) and of its answer to GET_ID on the first ring. The input plays the back-end
// (vhost_user_replies_backend.h): for each request the front-end sends, the next bytes of the
// input say what comes back.
//
// Two modes. Attach: VirtioBlkController::Attach, as bdev_virtio_attach_controller calls it
// (all but registering the bdev), then Stop (GET_VRING_BASE per queue), as a detach does.
// Calls: VhostUserFrontend's calls in the order the input says, so that a connection that
// broke is used again.
//
// Checked, besides no crash, hang or sanitizer report:
// - every failure is an absl error with a message, and an attach's names the socket. No reply
//   timeout: no input leaves a reply owed, so one means the front-end waited for nothing;
// - what an attach accepted keeps its rules: features offered, VERSION_1, the ring layout
//   asked for; a block size that is a power of two from 512 to 65536; a capacity of at least
//   one block; no more queues than GET_QUEUE_NUM and the config space offered; segments,
//   transfer size and discard limits as the config space says; the serial printable, and the
//   one the back-end wrote;
// - calls: a call that failed for anything but a refusal (an ack other than 0, an empty
//   GET_CONFIG, a bad argument) leaves the connection closed, and every later call fails at
//   once; a refusal leaves it open;
// - what the front-end sends is well-formed and consistent (the back-end's checks);
// - every fd and every byte of shared memory an input took is given back before the next.
//
// Input (missing bytes read as 0):
//   header, 33 bytes: [0] bit 0 packed_ring, bit 1 calls mode; [1] vq_count 1 + b % 4;
//     [2] vq_size: split 1 << (1 + b % 7), packed 2 + b % 127; then how the back-end answers
//     GET_ID (GetIdAnswer): mode u8 (b % 2), status u8, length u32, id u16, extra u16,
//     serial 20 bytes
//   calls mode: a count u8 (b % 33), then that many calls: op u8 (b % kCallCount, see CallOp)
//     and its arguments
//   the rest: the back-end's actions, one per request it reads (vhost_user_replies_backend.cc)
// test/fuzz/make_seeds_vhost_user_replies.py writes inputs in this format.
#include <dirent.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fuzz_input.h"
#include "pollux/env/log.h"
#include "pollux/env/shared_io_memory.h"
#include "pollux/virtio/bdev_virtio_blk.h"
#include "pollux/virtio/vhost_user_protocol.h"
#include "pollux/virtio/vring.h"
#include "vhost_user_frontend.h"
#include "vhost_user_replies_backend.h"
#include "virtio_blk_controller.h"

namespace pollux::fuzz {
namespace {

using vhost_user::Request;

// Far above what the back-end thread takes to answer, far below anything slow: a timeout is a
// finding (see above), and an input that finds one must not stall the fuzzer for long.
constexpr uint32_t kReplyTimeoutMs = 1000;

enum CallOp : uint8_t {
  kGetU64,           // which u8: GET_FEATURES, GET_PROTOCOL_FEATURES, GET_QUEUE_NUM
  kSetU64,           // which u8: SET_FEATURES, SET_PROTOCOL_FEATURES; value u64
  kSetVringFd,       // which u8: SET_VRING_KICK, SET_VRING_CALL; index u8 (with an eventfd)
  kSetOwner,         // no arguments
  kSetMemTable,      // the shared I/O arena as the one region, as the controller sends it
  kSetVringState,    // which u8: SET_VRING_NUM, SET_VRING_BASE, SET_VRING_ENABLE; index u8;
                     // num u32
  kSetVringAddress,  // index u8
  kGetVringBase,     // index u8
  kGetConfig,        // size u16 % 300 (above 256 refused before sending)
  kSetReplyAck,      // on u8 & 1
  kCallCount,
};

struct Call {
  CallOp op;
  uint8_t which = 0;
  uint8_t index = 0;
  uint64_t value = 0;
};

struct Header {
  bool calls_mode;
  BackendOptions backend;
};

Header ReadHeader(FuzzInput& in) {
  Header h;
  const uint8_t flags = in.U8();
  h.calls_mode = (flags & 2) != 0;
  BackendOptions& o = h.backend;
  o.attach_mode = !h.calls_mode;
  o.packed_asked = (flags & 1) != 0;
  o.vq_count = 1 + in.U8() % 4;
  const uint8_t size = in.U8();
  o.vq_size = o.packed_asked ? 2 + size % 127 : 1u << (1 + size % 7);
  GetIdAnswer& a = o.get_id;
  a.mode = in.U8() % 2;
  a.status = in.U8();
  a.length = in.U32();
  a.id = in.U16();
  a.extra = in.U16();
  for (uint8_t& b : a.serial) b = in.U8();
  return h;
}

std::vector<Call> ReadCalls(FuzzInput& in) {
  std::vector<Call> calls(in.U8() % 33);
  for (Call& c : calls) {
    c.op = static_cast<CallOp>(in.U8() % kCallCount);
    switch (c.op) {
      case kGetU64:
        c.which = in.U8() % 3;
        break;
      case kSetU64:
        c.which = in.U8() % 2;
        c.value = in.U64();
        break;
      case kSetVringFd:
        c.which = in.U8() % 2;
        c.index = in.U8();
        break;
      case kSetVringState:
        c.which = in.U8() % 3;
        c.index = in.U8();
        c.value = in.U32();
        break;
      case kSetVringAddress:
      case kGetVringBase:
        c.index = in.U8();
        break;
      case kGetConfig:
        c.value = in.U16() % 300;
        break;
      case kSetReplyAck:
        c.which = in.U8() & 1;
        break;
      default:
        break;
    }
  }
  return calls;
}

void CheckError(const absl::Status& s, const std::string& what) {
  if (s.message().empty()) Finding(what + " failed without a message");
  if (s.code() == absl::StatusCode::kUnknown) Finding(what + ": an unknown error: " + s.ToString());
  if (s.code() == absl::StatusCode::kDeadlineExceeded) {
    Finding(what + " timed out waiting for an answer nobody owed it: " + s.ToString());
  }
}

absl::Status Do(VhostUserFrontend& frontend, const Call& c) {
  static constexpr Request kGets[] = {Request::kGetFeatures, Request::kGetProtocolFeatures,
                                      Request::kGetQueueNum};
  static constexpr Request kSets[] = {Request::kSetFeatures, Request::kSetProtocolFeatures};
  static constexpr Request kFds[] = {Request::kSetVringKick, Request::kSetVringCall};
  static constexpr Request kStates[] = {Request::kSetVringNum, Request::kSetVringBase,
                                        Request::kSetVringEnable};
  switch (c.op) {
    case kGetU64:
      return frontend.GetU64(kGets[c.which]).status();
    case kSetU64:
      return frontend.SetU64(kSets[c.which], c.value);
    case kSetVringFd: {
      const int fd = eventfd(0, EFD_CLOEXEC);
      if (fd < 0) Finding("eventfd failed");
      absl::Status s = frontend.SetU64(kFds[c.which], c.index, fd);
      close(fd);
      return s;
    }
    case kSetOwner:
      return frontend.SetOwner();
    case kSetMemTable: {
      absl::StatusOr<SharedIoArenaInfo> arena = SharedIoArena();
      if (!arena.ok()) Finding("no shared I/O arena: " + arena.status().ToString());
      vhost_user::MemoryTable table{};
      table.nregions = 1;
      const uint64_t base = reinterpret_cast<uint64_t>(arena->base);
      table.regions[0] = {base, arena->size, base, 0};
      return frontend.SetMemTable(table, &arena->fd, 1);
    }
    case kSetVringState:
      return frontend.SetVringState(kStates[c.which], c.index, static_cast<uint32_t>(c.value));
    case kSetVringAddress: {
      vhost_user::VringAddress address{};
      address.index = c.index;
      return frontend.SetVringAddress(address);
    }
    case kGetVringBase:
      return frontend.GetVringBase(c.index).status();
    case kGetConfig: {
      absl::StatusOr<std::vector<uint8_t>> config =
          frontend.GetConfig(static_cast<uint32_t>(c.value));
      if (config.ok() && config->size() != c.value) Finding("GET_CONFIG gave the wrong size");
      return config.status();
    }
    default:
      return absl::OkStatus();
  }
}

// Calls mode: the front-end's calls one after another, whatever happened before.
void RunCalls(const std::string& path, const std::vector<Call>& calls) {
  absl::StatusOr<VhostUserFrontend> connected =
      VhostUserFrontend::Connect(path, std::chrono::milliseconds(kReplyTimeoutMs));
  if (!connected.ok()) Finding("cannot connect to the back-end: " + connected.status().ToString());
  VhostUserFrontend& frontend = *connected;
  for (const Call& c : calls) {
    if (c.op == kSetReplyAck) {
      frontend.set_reply_ack(c.which != 0);
      continue;
    }
    const bool was_connected = frontend.connected();
    const absl::Status s = Do(frontend, c);
    if (s.ok()) {
      if (!was_connected) Finding("a call succeeded on a closed connection");
      if (!frontend.connected()) Finding("a call succeeded and closed the connection");
      continue;
    }
    CheckError(s, "a call");
    const bool refusal = s.code() == absl::StatusCode::kFailedPrecondition ||
                         s.code() == absl::StatusCode::kInvalidArgument;
    if (!was_connected && s.code() != absl::StatusCode::kUnavailable &&
        s.code() != absl::StatusCode::kInvalidArgument) {
      Finding("a call on a closed connection failed otherwise than at once: " + s.ToString());
    }
    if (!refusal && frontend.connected()) {
      Finding("a protocol error left the connection open: " + s.ToString());
    }
    if (refusal && frontend.connected() != was_connected) {
      Finding("a refusal changed the connection: " + s.ToString());
    }
  }
}

void CheckAttached(const VirtioBlkController& c, const VirtioBlkControllerOptions& o,
                   const GetIdAnswer& get_id, const BackendRecord& record) {
  const uint64_t f = c.features();
  auto has = [&](int bit) { return ((f >> bit) & 1) != 0; };
  auto bad = [&](const std::string& why) { Finding("an attach succeeded, but " + why); };
  if (!has(VIRTIO_F_VERSION_1)) bad("without VIRTIO_F_VERSION_1");
  if ((f & ~record.offered_features) != 0) bad("with features the back-end never offered");
  if (has(VIRTIO_F_RING_PACKED) != o.packed_ring || c.limits().packed != o.packed_ring) {
    bad("with another ring layout than packed_ring says");
  }
  if (c.limits().indirect != has(VIRTIO_RING_F_INDIRECT_DESC) ||
      c.limits().event_idx != has(VIRTIO_RING_F_EVENT_IDX)) {
    bad("with ring limits other than the features");
  }
  const virtio_blk_config& config = c.config();
  const uint32_t block_size = c.block_size();
  if (block_size != (has(VIRTIO_BLK_F_BLK_SIZE) ? config.blk_size : 512) ||
      c.limits().block_size != block_size) {
    bad("with a block size not the config space's");
  }
  if (block_size < 512 || block_size > 65536 || (block_size & (block_size - 1)) != 0) {
    bad("with a block size of " + std::to_string(block_size));
  }
  if (config.capacity == 0 || config.capacity > (UINT64_MAX >> 9) || c.block_count() == 0 ||
      c.block_count() != (config.capacity << 9) / block_size) {
    bad("with a capacity of " + std::to_string(config.capacity) + " sectors and " +
        std::to_string(c.block_count()) + " blocks");
  }
  if (has(VIRTIO_BLK_F_MQ) ? o.vq_count > config.num_queues : o.vq_count != 1) {
    bad(std::to_string(o.vq_count) + " queues, more than the config space offers");
  }
  if (record.queue_num_asked && o.vq_count > record.max_queue_num) {
    bad(std::to_string(o.vq_count) + " queues, more than GET_QUEUE_NUM said (" +
        std::to_string(record.max_queue_num) + ")");
  }
  const uint32_t segments = c.limits().max_data_segments;
  if (segments == 0 || segments > 256 || (!c.limits().indirect && segments > o.vq_size - 2) ||
      (has(VIRTIO_BLK_F_SEG_MAX) && segments > std::max(1u, uint32_t{config.seg_max}))) {
    bad(std::to_string(segments) + " segments per request");
  }
  const uint64_t transfer = c.max_transfer_bytes();
  if (transfer < block_size || transfer > (1u << 30) ||
      (has(VIRTIO_BLK_F_SIZE_MAX) && config.size_max != 0 && transfer > config.size_max)) {
    bad("with a largest transfer of " + std::to_string(transfer) + " bytes");
  }
  if (c.limits().max_discard_sectors !=
          (has(VIRTIO_BLK_F_DISCARD) ? config.max_discard_sectors : 0) ||
      c.limits().max_write_zeroes_sectors !=
          (has(VIRTIO_BLK_F_WRITE_ZEROES) ? config.max_write_zeroes_sectors : 0)) {
    bad("with discard or write-zeroes limits not the config space's");
  }
  const std::string& serial = c.serial();
  for (char ch : serial) {
    if (ch < 0x20 || ch > 0x7e) bad("with a serial that is not printable");
  }
  std::string expected;
  if (record.get_id_completed && get_id.status == VIRTIO_BLK_S_OK) {
    for (uint8_t b : get_id.serial) {
      if (b == 0) break;
      expected.push_back(b >= 0x20 && b < 0x7f ? static_cast<char>(b) : '?');
    }
  }
  if (serial != expected) bad("with the serial \"" + serial + "\", not \"" + expected + "\"");
}

// Attach mode: what bdev_virtio_attach_controller and bdev_virtio_detach_controller do.
void RunAttach(const std::string& path, const BackendOptions& backend_options,
               FuzzBackend& backend) {
  VirtioBlkControllerOptions o;
  o.name = "VirtioBlkFuzz";
  o.socket_path = path;
  o.vq_count = backend_options.vq_count;
  o.vq_size = backend_options.vq_size;
  o.packed_ring = backend_options.packed_asked;
  o.reply_timeout_ms = kReplyTimeoutMs;
  absl::StatusOr<std::shared_ptr<VirtioBlkController>> controller = VirtioBlkController::Attach(o);
  if (controller.ok()) (*controller)->Stop();
  backend.Stop();
  if (!controller.ok()) {
    CheckError(controller.status(), "an attach");
    if (controller.status().message().find(path) == std::string::npos) {
      Finding("an attach's error does not name the socket: " + controller.status().ToString());
    }
    return;
  }
  CheckAttached(**controller, o, backend_options.get_id, backend.record());
}

int CountOpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) Finding("cannot list /proc/self/fd");
  int count = 0;
  while (const dirent* entry = readdir(dir)) count += entry->d_name[0] != '.';
  closedir(dir);
  return count;
}

std::string folder;

void RemoveFolder() { rmdir(folder.c_str()); }

void SetUp() {
  char name[] = "/tmp/pollux-fuzz-vhost-XXXXXX";
  if (mkdtemp(name) == nullptr) Finding("mkdtemp failed");
  folder = name;
  std::atexit(RemoveFolder);
  // Warnings (a detach that finds the back-end gone) are what bad input gets.
  SetLogLevel(LogLevel::kError);
  // The arena's memfd stays open for the process's life: made now, it is not counted as an
  // input's.
  if (!SharedIoArena().ok()) Finding("cannot create the shared I/O arena");
}

void RunInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  const Header header = ReadHeader(in);
  std::vector<Call> calls;
  if (header.calls_mode) calls = ReadCalls(in);
  const std::string path = folder + "/backend.sock";
  FuzzBackend backend(path, header.backend, in);
  if (header.calls_mode) {
    RunCalls(path, calls);
  } else {
    RunAttach(path, header.backend, backend);
  }
}

}  // namespace
}  // namespace pollux::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace fuzz = pollux::fuzz;
  static const bool set_up = (fuzz::SetUp(), true);
  (void)set_up;
  const int fds = fuzz::CountOpenFds();
  const uint64_t shared = pollux::SharedIoBytesAllocated();
  fuzz::RunInput(data, size);
  if (const int left = fuzz::CountOpenFds() - fds; left != 0) {
    fuzz::Finding("an input left " + std::to_string(left) + " more fds open");
  }
  if (pollux::SharedIoBytesAllocated() != shared) {
    fuzz::Finding("an input left shared I/O memory allocated");
  }
  return 0;
}
