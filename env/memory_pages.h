// What IoMemory (io_memory.cc) and the shared I/O arena (shared_io_memory.cc) both need:
// populating pages up front, the RAM the machine can give, sizes in messages. Defined in
// io_memory.cc. Private to env.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace pollux::memory_pages {

// "256 MiB", "1.5 GiB", "4 KiB", "100 bytes": sizes for error messages.
std::string FormatSize(uint64_t bytes);

// MemAvailable from /proc/meminfo (what can be had without swapping), or 0 if unknown.
uint64_t AvailableRam();

// Maps every page of [data, data + size) now, so the data path never faults. A shortage of
// RAM is ResourceExhausted ("cannot back 4 GiB with RAM: ..."), not the OOM killer later.
absl::Status Populate(uint8_t* data, size_t size);

}  // namespace pollux::memory_pages
