// A plugin stamped with another pollux version. The loader must refuse it from the stamp
// alone: if any of its code ran (its static constructors run when it is loaded), the process
// would abort here instead of printing the versions.
#include <cstdlib>

#include "pollux/env/abi_stamp.h"

namespace {

[[gnu::used, gnu::section(".note.pollux.abi"),
  gnu::aligned(4)]] const pollux::internal::AbiNote kOtherVersion = {
    sizeof(pollux::internal::kAbiNoteName), pollux::internal::kAbiNoteVersionSize,
    pollux::internal::kAbiNoteType, "pollux", "9.8.7"};

[[gnu::constructor]] void RanAtLoad() { std::abort(); }

}  // namespace
