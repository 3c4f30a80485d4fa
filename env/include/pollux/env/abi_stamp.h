// The ABI stamp of a pollux plugin: an ELF note (section .note.pollux.abi) naming the pollux
// version the code was built against. pollux-tgt --plugin reads it from the file before it
// loads the file, so a plugin built against another version is refused with both versions
// named, before any of its code (static constructors included) runs.
//
// POLLUX_BDEV_MODULE stamps every module; POLLUX_ABI_STAMP(tag) stamps other code.
#pragma once

#include <cstdint>

#include "pollux/env/version.h"

namespace pollux::internal {

inline constexpr char kAbiNoteName[] = "pollux";
inline constexpr uint32_t kAbiNoteType = 0x504c5801;  // "PLX" 1
inline constexpr uint32_t kAbiNoteVersionSize = 16;

// Laid out as an ELF note: name and descriptor sizes, type, name padded to 4 bytes, then the
// descriptor: the version string (POLLUX_VERSION), NUL-padded.
struct AbiNote {
  uint32_t name_size;
  uint32_t desc_size;
  uint32_t type;
  char name[8];
  char version[kAbiNoteVersionSize];
};

}  // namespace pollux::internal

#define POLLUX_ABI_STAMP(tag)                                                            \
  [[gnu::used, gnu::section(".note.pollux.abi"),                                         \
    gnu::aligned(4)]] static const ::pollux::internal::AbiNote pollux_abi_note_##tag = { \
      sizeof(::pollux::internal::kAbiNoteName), ::pollux::internal::kAbiNoteVersionSize, \
      ::pollux::internal::kAbiNoteType, "pollux", POLLUX_VERSION}
