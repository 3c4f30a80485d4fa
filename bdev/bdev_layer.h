// What the layer's parts share about the running layer. Private.
#pragma once

#include <cstdint>

namespace pollux {

// The Thread that ran InitBdevLayer (the app thread): module hooks run there. 0 before.
uint64_t BdevAppThreadId();

}  // namespace pollux
