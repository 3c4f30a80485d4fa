#include "spdk_sections.h"

#include <array>

namespace pollux::rpc {

bool SetsOptionsOnly(std::string_view method) {
  // SPDK's naming for a component's options, then the option methods save_config writes under
  // other names (read from SPDK's *_write_config_json functions).
  if (method.ends_with("_set_options") || method.ends_with("_set_config")) return true;
  static constexpr std::array<std::string_view, 5> kOptionMethods = {
      "sock_set_default_impl",    // sock: which socket implementation is the default
      "nvmf_set_max_subsystems",  // nvmf: a table size
      "nvmf_set_crdt",            // nvmf: command retry delay times
      "bdev_nvme_set_hotplug",    // bdev: NVMe hot-plug polling (no NVMe driver here)
      "accel_assign_opc",         // accel: which engine runs an operation (software here)
  };
  for (std::string_view name : kOptionMethods) {
    if (method == name) return true;
  }
  return false;
}

}  // namespace pollux::rpc
