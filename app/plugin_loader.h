// Loads bdev modules built outside pollux (pollux-tgt --plugin PATH): the ABI stamp is checked
// from the file first, then the shared object is loaded, which registers its module and RPC
// methods from its static constructors, before any config replays.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace pollux {

// Loads each plugin in order; the first failure stops and is returned, naming the plugin:
// a missing or unreadable file, not ELF, no pollux ABI stamp, built against another pollux
// version, dlopen's error (an unresolved symbol), a module, RPC method or subsystem name
// already taken, or no bdev module registered. A loaded plugin stays for the process's life:
// its registrations point into it. Call on the control thread before RunApp starts anything.
absl::Status LoadPlugins(const std::vector<std::string>& paths);

}  // namespace pollux
