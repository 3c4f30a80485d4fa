// The back-end side of the vhost-user protocol (QEMU's docs/interop/vhost-user.rst): one message
// in, the device state updated, the reply (if any) out.
#pragma once

#include <cstdint>
#include <vector>

#include "backend_device.h"
#include "data_path.h"
#include "message_channel.h"

namespace pollux::testing::vhost_backend {

struct HandleResult {
  bool has_reply = false;
  std::vector<uint8_t> reply;  // payload; the reply's request code is the message's
  bool disconnect = false;     // the message was bad in a way only a disconnect can report
};

// Handles the messages of one back-end on its protocol thread.
//
// Errors: a bad message (wrong payload size, queue index out of range, missing fd, a value the
// device cannot take) is logged and fails. Messages whose reply is part of the protocol
// (GET_FEATURES, GET_VRING_BASE...) cannot report a failure except GET_CONFIG, which replies with
// an empty payload; for the others the connection is closed. Every other message answers a
// REPLY_ACK u64 (0 success, 1 failure) when the front-end set kFlagNeedReply.
class ProtocolHandler {
 public:
  ProtocolHandler(Device* device, DataPath* data_path);

  HandleResult Handle(Message& message);

 private:
  // Each returns false, with a reason, when the message fails; the explicit-reply ones fill
  // result->reply.
  bool GetU64(const Message& m, uint64_t value, HandleResult* result, std::string* error);
  bool SetFeatures(const Message& m, std::string* error);
  bool SetProtocolFeatures(const Message& m, std::string* error);
  bool SetMemTable(Message& m, std::string* error);
  bool SetVringNum(const Message& m, std::string* error);
  bool SetVringAddr(const Message& m, std::string* error);
  bool SetVringBase(const Message& m, std::string* error);
  bool GetVringBase(const Message& m, HandleResult* result, std::string* error);
  bool SetVringFd(Message& m, std::string* error);
  bool SetVringEnable(const Message& m, std::string* error);
  void GetConfig(const Message& m, HandleResult* result);
  bool SetConfig(const Message& m, std::string* error);

  // The queue a message names, or nullptr with a reason.
  QueueSlot* Slot(uint32_t index, std::string* error);
  // Starts the ring on SET_VRING_KICK: translates it and attaches it.
  bool StartRing(QueueSlot& slot, uint32_t index, std::string* error);

  Device& device_;
  DataPath& data_path_;
  bool wake_data_path_ = false;
};

// "SET_MEM_TABLE" for the requests this back-end knows, "request N" otherwise.
std::string RequestLabel(uint32_t request);

}  // namespace pollux::testing::vhost_backend
