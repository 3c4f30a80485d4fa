// What both virtqueue layouts take and give back. Private header.
#pragma once

#include <cstdint>

namespace pollux {

// One buffer of a request, as a descriptor describes it: an address the device translates
// through the memory table, a length, and its direction.
struct VirtqueueBuffer {
  uint64_t address;
  uint32_t length;
  bool device_writes;
};

enum class UsedResult : uint8_t {
  kNone,    // nothing new
  kUsed,    // one request completed
  kBroken,  // the device broke the protocol: stop using the queue
};

}  // namespace pollux
