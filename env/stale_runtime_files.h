// What a pollux process killed with SIGKILL leaves behind and the next one removes: DPDK's
// runtime folder of that process (`<base>/pollux_<pid>`, its config and lock files). One folder
// per process id (the default file prefix), so without this they would pile up forever.
#pragma once

#include <string>

namespace pollux {

// The folder DPDK keeps every process's runtime folder in (as rte_eal computes it): /var/run/dpdk
// for root, else $XDG_RUNTIME_DIR/dpdk, else /tmp/dpdk.
std::string DpdkRuntimeBase();

// Removes the runtime folders under `base` named pollux_<pid> whose process no longer exists,
// with a log line each; a live process's, and any other name, are left alone. Returns how many
// it removed.
int RemoveStaleRuntimeDirs(const std::string& base);

}  // namespace pollux
