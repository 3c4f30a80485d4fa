// The vhost-user protocol's wire format (QEMU's docs/interop/vhost-user.rst): message header,
// request codes, feature bits and payloads. Front-end (initiator) and test back-ends share it;
// the target speaks the protocol through DPDK's rte_vhost instead.
//
// Every message is a 12-byte header followed by `size` bytes of payload; file descriptors ride
// along as SCM_RIGHTS ancillary data. All fields are little-endian (x86 only here).
#pragma once

#include <cstddef>
#include <cstdint>

namespace pollux::vhost_user {

enum class Request : uint32_t {
  kNone = 0,
  kGetFeatures = 1,
  kSetFeatures = 2,
  kSetOwner = 3,
  kResetOwner = 4,
  kSetMemTable = 5,
  kSetLogBase = 6,
  kSetLogFd = 7,
  kSetVringNum = 8,
  kSetVringAddr = 9,
  kSetVringBase = 10,
  kGetVringBase = 11,
  kSetVringKick = 12,
  kSetVringCall = 13,
  kSetVringErr = 14,
  kGetProtocolFeatures = 15,
  kSetProtocolFeatures = 16,
  kGetQueueNum = 17,
  kSetVringEnable = 18,
  kGetConfig = 24,
  kSetConfig = 25,
  kGetInflightFd = 31,
  kSetInflightFd = 32,
  kResetDevice = 34,
  kGetMaxMemSlots = 36,
  kAddMemReg = 37,
  kRemMemReg = 38,
};

// The request's name for messages ("SET_MEM_TABLE"), "request N" for unknown codes.
const char* RequestName(uint32_t request);

// Header flags: version 1 in the low two bits, the reply bit, and "reply with an ack"
// (REPLY_ACK protocol feature).
inline constexpr uint32_t kVersion = 0x1;
inline constexpr uint32_t kVersionMask = 0x3;
inline constexpr uint32_t kFlagReply = 1u << 2;
inline constexpr uint32_t kFlagNeedReply = 1u << 3;

struct MessageHeader {
  uint32_t request;
  uint32_t flags;
  uint32_t size;  // payload bytes after the header
};
static_assert(sizeof(MessageHeader) == 12);

// Feature bit 30: the back-end speaks GET/SET_PROTOCOL_FEATURES (and then its rings start
// disabled until SET_VRING_ENABLE).
inline constexpr int kFProtocolFeatures = 30;

// Protocol feature bits.
inline constexpr int kProtocolMq = 0;
inline constexpr int kProtocolLogShmfd = 1;
inline constexpr int kProtocolReplyAck = 3;
// The back-end may send requests of its own (a config change) on a channel the front-end gives.
inline constexpr int kProtocolBackendReq = 5;
inline constexpr int kProtocolConfig = 9;
inline constexpr int kProtocolInflightShmfd = 12;
inline constexpr int kProtocolResetDevice = 13;
inline constexpr int kProtocolConfigureMemSlots = 15;

// SET_VRING_KICK / CALL / ERR payload: the queue index in the low byte; bit 8 set means no
// fd comes with it (the other side polls).
inline constexpr uint64_t kVringIndexMask = 0xff;
inline constexpr uint64_t kVringNoFd = 1ull << 8;

// SET_MEM_TABLE carries at most this many regions (one fd each).
inline constexpr int kMaxMemRegions = 8;

struct MemoryRegion {
  uint64_t guest_phys_addr;  // the address descriptors carry
  uint64_t memory_size;
  uint64_t userspace_addr;   // the front-end's virtual address (ring addresses use these)
  uint64_t mmap_offset;      // offset of the region in its fd
};
static_assert(sizeof(MemoryRegion) == 32);

struct MemoryTable {
  uint32_t nregions;
  uint32_t padding;
  MemoryRegion regions[kMaxMemRegions];
};

// SET_VRING_NUM / BASE / ENABLE, GET_VRING_BASE.
struct VringState {
  uint32_t index;
  uint32_t num;
};

// SET_VRING_ADDR: front-end virtual addresses of the ring's parts.
struct VringAddress {
  uint32_t index;
  uint32_t flags;  // bit 0: log used ring writes (unused here)
  uint64_t desc_user_addr;
  uint64_t used_user_addr;
  uint64_t avail_user_addr;
  uint64_t log_guest_addr;
};
static_assert(sizeof(VringAddress) == 40);

// GET_CONFIG / SET_CONFIG: a window of the device's configuration space.
inline constexpr uint32_t kMaxConfigSize = 256;
struct ConfigSpace {
  uint32_t offset;
  uint32_t size;
  uint32_t flags;
  uint8_t region[kMaxConfigSize];
};
inline constexpr size_t kConfigHeaderSize = 12;

// For packed rings, SET_VRING_BASE / GET_VRING_BASE carry the wrap counters: bits 0-14 the
// next avail index, bit 15 its wrap counter, bits 16-30 the used index, bit 31 its wrap
// counter. A fresh packed ring starts at 0 with both counters at 1.
inline constexpr uint32_t kPackedFreshBase = (1u << 15) | (1u << 31);

// The largest payload a message carries (the memory table).
inline constexpr size_t kMaxPayload = sizeof(MemoryTable);

}  // namespace pollux::vhost_user
