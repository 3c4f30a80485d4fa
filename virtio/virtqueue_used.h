// What both virtqueue layouts answer when asked for the next used entry. Private header.
#pragma once

#include <cstdint>

namespace pollux {

enum class UsedResult : uint8_t {
  kNone,    // nothing new
  kUsed,    // one request completed
  kBroken,  // the device broke the protocol: stop using the queue
};

}  // namespace pollux
