#include "protocol_handler.h"

#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

namespace pollux::testing::vhost_backend {

namespace {

using vhost_user::Request;

bool ExpectSize(const Message& m, size_t size, std::string* error) {
  if (m.header.size == size) return true;
  *error =
      "payload of " + std::to_string(m.header.size) + " bytes, expected " + std::to_string(size);
  return false;
}

template <typename T>
bool ReadPayload(const Message& m, T* value, std::string* error) {
  if (!ExpectSize(m, sizeof(T), error)) return false;
  std::memcpy(value, m.payload.data(), sizeof(T));
  return true;
}

template <typename T>
void SetReply(HandleResult* result, const T& value) {
  result->has_reply = true;
  result->reply.resize(sizeof(T));
  std::memcpy(result->reply.data(), &value, sizeof(T));
}

virtio_blk_config BuildConfig(const Device& device) {
  const VhostUserTestBackendOptions& o = device.options;
  virtio_blk_config c;
  std::memset(&c, 0, sizeof(c));
  c.capacity = o.num_blocks * o.block_size / 512;
  c.size_max = o.size_max;
  c.seg_max = o.seg_max;
  c.blk_size = o.block_size;
  c.physical_block_exp = 0;
  c.alignment_offset = 0;
  c.min_io_size = 1;
  c.opt_io_size = 0;
  c.wce = device.write_cache_enabled ? 1 : 0;
  c.num_queues = static_cast<uint16_t>(o.num_queues);
  c.max_discard_sectors = o.max_discard_sectors;
  c.max_discard_seg = o.max_discard_seg;
  c.discard_sector_alignment = o.block_size / 512;
  c.max_write_zeroes_sectors = o.max_write_zeroes_sectors;
  c.max_write_zeroes_seg = o.max_write_zeroes_seg;
  c.write_zeroes_may_unmap = 1;
  return c;
}

}  // namespace

std::string RequestLabel(uint32_t request) {
  switch (static_cast<Request>(request)) {
    case Request::kGetFeatures:
      return "GET_FEATURES";
    case Request::kSetFeatures:
      return "SET_FEATURES";
    case Request::kSetOwner:
      return "SET_OWNER";
    case Request::kResetOwner:
      return "RESET_OWNER";
    case Request::kSetMemTable:
      return "SET_MEM_TABLE";
    case Request::kSetVringNum:
      return "SET_VRING_NUM";
    case Request::kSetVringAddr:
      return "SET_VRING_ADDR";
    case Request::kSetVringBase:
      return "SET_VRING_BASE";
    case Request::kGetVringBase:
      return "GET_VRING_BASE";
    case Request::kSetVringKick:
      return "SET_VRING_KICK";
    case Request::kSetVringCall:
      return "SET_VRING_CALL";
    case Request::kSetVringErr:
      return "SET_VRING_ERR";
    case Request::kGetProtocolFeatures:
      return "GET_PROTOCOL_FEATURES";
    case Request::kSetProtocolFeatures:
      return "SET_PROTOCOL_FEATURES";
    case Request::kGetQueueNum:
      return "GET_QUEUE_NUM";
    case Request::kSetVringEnable:
      return "SET_VRING_ENABLE";
    case Request::kGetConfig:
      return "GET_CONFIG";
    case Request::kSetConfig:
      return "SET_CONFIG";
    case Request::kResetDevice:
      return "RESET_DEVICE";
    default:
      return "request " + std::to_string(request);
  }
}

ProtocolHandler::ProtocolHandler(Device* device, DataPath* data_path)
    : device_(*device), data_path_(*data_path) {}

HandleResult ProtocolHandler::Handle(Message& m) {
  HandleResult result;
  std::string error;
  bool ok = false;
  bool explicit_reply = false;
  wake_data_path_ = false;
  {
    std::lock_guard lock(device_.mu);
    switch (static_cast<Request>(m.header.request)) {
      case Request::kGetFeatures:
        explicit_reply = true;
        ok = GetU64(m, device_.OfferedFeatures(), &result, &error);
        break;
      case Request::kGetProtocolFeatures:
        explicit_reply = true;
        ok = GetU64(m, device_.OfferedProtocolFeatures(), &result, &error);
        break;
      case Request::kGetQueueNum:
        explicit_reply = true;
        ok = GetU64(m, device_.options.num_queues, &result, &error);
        break;
      case Request::kGetVringBase:
        explicit_reply = true;
        ok = GetVringBase(m, &result, &error);
        break;
      case Request::kGetConfig:
        explicit_reply = true;
        GetConfig(m, &result);
        ok = true;
        break;
      case Request::kSetFeatures:
        ok = SetFeatures(m, &error);
        break;
      case Request::kSetProtocolFeatures:
        ok = SetProtocolFeatures(m, &error);
        break;
      case Request::kSetOwner:
        ok = ExpectSize(m, 0, &error);
        break;
      case Request::kResetOwner:
      case Request::kResetDevice:
        ok = ExpectSize(m, 0, &error);
        if (ok) device_.ResetConnectionState();
        break;
      case Request::kSetMemTable:
        ok = SetMemTable(m, &error);
        break;
      case Request::kSetVringNum:
        ok = SetVringNum(m, &error);
        break;
      case Request::kSetVringAddr:
        ok = SetVringAddr(m, &error);
        break;
      case Request::kSetVringBase:
        ok = SetVringBase(m, &error);
        break;
      case Request::kSetVringKick:
      case Request::kSetVringCall:
      case Request::kSetVringErr:
        ok = SetVringFd(m, &error);
        break;
      case Request::kSetVringEnable:
        ok = SetVringEnable(m, &error);
        break;
      case Request::kSetConfig:
        ok = SetConfig(m, &error);
        break;
      default:
        error = "not supported by this back-end";
        break;
    }
  }
  if (wake_data_path_) data_path_.Wake();
  if (!ok) VHOST_TEST_LOG("%s failed: %s", RequestLabel(m.header.request).c_str(), error.c_str());
  if (explicit_reply) {
    if (!ok) result.disconnect = true;
  } else if (m.header.flags & vhost_user::kFlagNeedReply) {
    SetReply(&result, uint64_t{ok ? 0u : 1u});
  }
  return result;
}

bool ProtocolHandler::GetU64(const Message& m, uint64_t value, HandleResult* result,
                             std::string* error) {
  if (!ExpectSize(m, 0, error)) return false;
  SetReply(result, value);
  return true;
}

bool ProtocolHandler::SetFeatures(const Message& m, std::string* error) {
  uint64_t features;
  if (!ReadPayload(m, &features, error)) return false;
  const uint64_t unknown = features & ~device_.OfferedFeatures();
  if (unknown != 0) {
    *error = "features " + std::to_string(unknown) + " were not offered";
    return false;
  }
  device_.features = features;
  return true;
}

bool ProtocolHandler::SetProtocolFeatures(const Message& m, std::string* error) {
  uint64_t features;
  if (!ReadPayload(m, &features, error)) return false;
  const uint64_t unknown = features & ~device_.OfferedProtocolFeatures();
  if (unknown != 0) {
    *error = "protocol features " + std::to_string(unknown) + " were not offered";
    return false;
  }
  device_.protocol_features = features;
  return true;
}

bool ProtocolHandler::SetMemTable(Message& m, std::string* error) {
  constexpr size_t kHeader = offsetof(vhost_user::MemoryTable, regions);
  if (m.header.size < kHeader) return ExpectSize(m, kHeader, error);
  vhost_user::MemoryTable table{};
  std::memcpy(&table, m.payload.data(), std::min<size_t>(m.header.size, sizeof(table)));
  if (table.nregions == 0 || table.nregions > vhost_user::kMaxMemRegions) {
    *error = std::to_string(table.nregions) + " regions (1.." +
             std::to_string(vhost_user::kMaxMemRegions) + ")";
    return false;
  }
  if (!ExpectSize(m, kHeader + table.nregions * sizeof(vhost_user::MemoryRegion), error)) {
    return false;
  }
  if (m.fds.size() != table.nregions) {
    *error = std::to_string(table.nregions) + " regions but " + std::to_string(m.fds.size()) +
             " file descriptors";
    return false;
  }
  GuestMemory memory;
  for (uint32_t i = 0; i < table.nregions; ++i) {
    std::string reason;
    if (!memory.AddRegion(table.regions[i], m.fds[i].get(), &reason)) {
      *error = "region " + std::to_string(i) + ": " + reason;
      return false;  // the old table stays in force
    }
  }
  // Requests in flight point into the old mappings: finish them before those go away.
  const Clock::time_point now = Clock::now();
  for (QueueSlot& slot : device_.queues) CompletePending(device_, slot, true, now);
  device_.memory = std::move(memory);
  // The rings' host views moved with the memory (libvhost-user re-maps them the same way).
  for (uint32_t i = 0; i < device_.queues.size(); ++i) {
    QueueSlot& slot = device_.queues[i];
    if (!slot.ring.attached()) continue;
    RingLayout layout;
    std::string reason;
    if (!Virtqueue::MapLayout(device_.memory, slot.addr.desc_user_addr, slot.addr.avail_user_addr,
                              slot.addr.used_user_addr, slot.num, device_.NegotiatedRingFeatures(),
                              &layout, &reason)) {
      VHOST_TEST_LOG("queue %u is not in the new memory table (%s); the queue stops", i,
                     reason.c_str());
      slot.broken = true;
      ++device_.counters.ring_errors;
      continue;
    }
    slot.ring.Relayout(layout);
  }
  return true;
}

QueueSlot* ProtocolHandler::Slot(uint32_t index, std::string* error) {
  if (index < device_.queues.size()) return &device_.queues[index];
  *error = "queue " + std::to_string(index) + " out of range (" +
           std::to_string(device_.queues.size()) + " queues)";
  return nullptr;
}

bool ProtocolHandler::SetVringNum(const Message& m, std::string* error) {
  vhost_user::VringState state;
  if (!ReadPayload(m, &state, error)) return false;
  QueueSlot* slot = Slot(state.index, error);
  if (slot == nullptr) return false;
  const bool packed = device_.Negotiated(VIRTIO_F_RING_PACKED);
  // Split rings index with a 16-bit counter modulo num, which needs a power of two (2.7).
  if (state.num == 0 || state.num > device_.options.queue_size_max ||
      (!packed && (state.num & (state.num - 1)) != 0)) {
    *error = "queue size " + std::to_string(state.num) + " (at most " +
             std::to_string(device_.options.queue_size_max) + (packed ? ")" : ", a power of two)");
    return false;
  }
  if (slot->started) {
    *error = "queue " + std::to_string(state.index) + " is running";
    return false;
  }
  slot->num = state.num;
  return true;
}

bool ProtocolHandler::SetVringAddr(const Message& m, std::string* error) {
  vhost_user::VringAddress addr;
  if (!ReadPayload(m, &addr, error)) return false;
  QueueSlot* slot = Slot(addr.index, error);
  if (slot == nullptr) return false;
  if (slot->started) {
    *error = "queue " + std::to_string(addr.index) + " is running";
    return false;
  }
  slot->addr = addr;
  slot->addr_set = true;
  return true;
}

bool ProtocolHandler::SetVringBase(const Message& m, std::string* error) {
  vhost_user::VringState state;
  if (!ReadPayload(m, &state, error)) return false;
  QueueSlot* slot = Slot(state.index, error);
  if (slot == nullptr) return false;
  if (slot->started) {
    *error = "queue " + std::to_string(state.index) + " is running";
    return false;
  }
  slot->base = state.num;
  slot->base_set = true;
  return true;
}

bool ProtocolHandler::GetVringBase(const Message& m, HandleResult* result, std::string* error) {
  vhost_user::VringState state;
  if (!ReadPayload(m, &state, error)) return false;
  QueueSlot* slot = Slot(state.index, error);
  if (slot == nullptr) return false;
  // Stopping a ring completes what it has in flight first (SPDK waits the same way), so that
  // the base we return leaves nothing behind.
  CompletePending(device_, *slot, true, Clock::now());
  state.num = slot->ring.attached() ? slot->ring.Base() : slot->base;
  slot->base = state.num;
  slot->base_set = true;
  slot->started = false;
  slot->broken = false;
  slot->ring.Detach();
  slot->pending.clear();
  slot->kick.Reset();
  ++slot->kick_generation;
  slot->call.Reset();  // as libvhost-user does: a restart sends both fds again
  SetReply(result, state);
  return true;
}

bool ProtocolHandler::StartRing(QueueSlot& slot, uint32_t index, std::string* error) {
  if (slot.num == 0 || !slot.addr_set) {
    *error = "queue " + std::to_string(index) + " kicked before SET_VRING_NUM and SET_VRING_ADDR";
    return false;
  }
  if (device_.memory.empty()) {
    *error = "queue " + std::to_string(index) + " kicked before SET_MEM_TABLE";
    return false;
  }
  const RingFeatures features = device_.NegotiatedRingFeatures();
  RingLayout layout;
  if (!Virtqueue::MapLayout(device_.memory, slot.addr.desc_user_addr, slot.addr.avail_user_addr,
                            slot.addr.used_user_addr, slot.num, features, &layout, error)) {
    return false;
  }
  const uint32_t base =
      slot.base_set ? slot.base : (features.packed ? vhost_user::kPackedFreshBase : 0);
  if (!slot.ring.Attach(slot.num, features, layout, base, error)) return false;
  slot.ring.SetNotification(true);
  slot.started = true;
  slot.broken = false;
  // Without VHOST_USER_F_PROTOCOL_FEATURES a ring is enabled as soon as it starts; with it, the
  // ring waits for SET_VRING_ENABLE.
  if (!device_.Negotiated(vhost_user::kFProtocolFeatures)) slot.enabled = true;
  wake_data_path_ = true;
  return true;
}

bool ProtocolHandler::SetVringFd(Message& m, std::string* error) {
  uint64_t value;
  if (!ReadPayload(m, &value, error)) return false;
  const uint32_t index = value & vhost_user::kVringIndexMask;
  const bool no_fd = value & vhost_user::kVringNoFd;
  if ((value & ~(vhost_user::kVringIndexMask | vhost_user::kVringNoFd)) != 0) {
    *error = "unknown bits in " + std::to_string(value);
    return false;
  }
  if (m.fds.size() != (no_fd ? 0u : 1u)) {
    *error = std::to_string(m.fds.size()) + " file descriptors with" + (no_fd ? "" : "out") +
             " kVringNoFd";
    return false;
  }
  QueueSlot* slot = Slot(index, error);
  if (slot == nullptr) return false;
  UniqueFd fd = no_fd ? UniqueFd() : std::move(m.fds[0]);
  switch (static_cast<Request>(m.header.request)) {
    case Request::kSetVringKick:
      slot->kick = std::move(fd);
      ++slot->kick_generation;
      // A ring starts when it gets its kick fd (vhost-user.rst, "Starting and stopping rings").
      if (!slot->started) return StartRing(*slot, index, error);
      wake_data_path_ = true;
      return true;
    case Request::kSetVringCall:
      slot->call = std::move(fd);
      return true;
    default:
      slot->err = std::move(fd);  // never written: this device does not report ring errors
      return true;
  }
}

bool ProtocolHandler::SetVringEnable(const Message& m, std::string* error) {
  vhost_user::VringState state;
  if (!ReadPayload(m, &state, error)) return false;
  QueueSlot* slot = Slot(state.index, error);
  if (slot == nullptr) return false;
  if (!device_.Negotiated(vhost_user::kFProtocolFeatures)) {
    *error = "sent without VHOST_USER_F_PROTOCOL_FEATURES negotiated";
    return false;
  }
  if (state.num > 1) {
    *error = "enable value " + std::to_string(state.num);
    return false;
  }
  slot->enabled = state.num == 1;
  wake_data_path_ = true;
  return true;
}

void ProtocolHandler::GetConfig(const Message& m, HandleResult* result) {
  // A failed GET_CONFIG is answered with an empty payload (vhost-user.rst, GET_CONFIG).
  result->has_reply = true;
  result->reply.clear();
  vhost_user::ConfigSpace config;
  if (m.header.size < vhost_user::kConfigHeaderSize) {
    VHOST_TEST_LOG("GET_CONFIG failed: payload of %u bytes", m.header.size);
    return;
  }
  std::memcpy(&config, m.payload.data(), vhost_user::kConfigHeaderSize);
  const virtio_blk_config blk = BuildConfig(device_);
  if (config.size > vhost_user::kMaxConfigSize ||
      m.header.size != vhost_user::kConfigHeaderSize + config.size || config.offset > sizeof(blk) ||
      config.size > sizeof(blk) - config.offset) {
    VHOST_TEST_LOG("GET_CONFIG failed: window offset %u size %u (payload %u bytes, config %zu)",
                   config.offset, config.size, m.header.size, sizeof(blk));
    return;
  }
  result->reply.resize(vhost_user::kConfigHeaderSize + config.size);
  std::memcpy(result->reply.data(), &config, vhost_user::kConfigHeaderSize);
  std::memcpy(result->reply.data() + vhost_user::kConfigHeaderSize,
              reinterpret_cast<const uint8_t*>(&blk) + config.offset, config.size);
}

bool ProtocolHandler::SetConfig(const Message& m, std::string* error) {
  vhost_user::ConfigSpace config;
  if (m.header.size < vhost_user::kConfigHeaderSize) {
    return ExpectSize(m, vhost_user::kConfigHeaderSize, error);
  }
  std::memcpy(&config, m.payload.data(), vhost_user::kConfigHeaderSize);
  if (config.size > vhost_user::kMaxConfigSize ||
      !ExpectSize(m, vhost_user::kConfigHeaderSize + config.size, error)) {
    if (error->empty()) *error = "window of " + std::to_string(config.size) + " bytes";
    return false;
  }
  // Only wce is writable (5.2.4), and only with VIRTIO_BLK_F_CONFIG_WCE.
  if (config.offset != offsetof(virtio_blk_config, wce) || config.size != 1 ||
      !device_.Negotiated(VIRTIO_BLK_F_CONFIG_WCE)) {
    *error = "window offset " + std::to_string(config.offset) + " size " +
             std::to_string(config.size) + " is not the wce byte (or CONFIG_WCE not negotiated)";
    return false;
  }
  const uint8_t wce = m.payload[vhost_user::kConfigHeaderSize];
  if (wce > 1) {
    *error = "wce " + std::to_string(wce);
    return false;
  }
  device_.write_cache_enabled = wce == 1;
  return true;
}

}  // namespace pollux::testing::vhost_backend
