// Reads the pollux ABI stamps (pollux/env/abi_stamp.h) of a shared object from its file,
// without loading it: the plugin loader's first check, before dlopen runs any of its code.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace pollux {

// The version strings of every pollux ABI note in the ELF file at `path` (empty: none).
// Errors: the file cannot be read, is not ELF, is not a 64-bit little-endian shared object
// for this machine, or its section table or notes are malformed. Reads only inside the file,
// whatever its bytes say.
absl::StatusOr<std::vector<std::string>> ReadElfAbiStamps(const std::string& path);

}  // namespace pollux
