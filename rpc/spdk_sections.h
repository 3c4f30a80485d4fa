// What a config written by SPDK (rpc.py save_config) holds that pollux has no part for: the
// sections of subsystems pollux lacks (iobuf, sock, accel, vmd, nvmf, ...) and the option
// methods of SPDK modules pollux lacks (bdev_nvme_set_options, bdev_raid_set_options, ...).
// Those that only set options are skipped with a warning; anything else stays an error.
#pragma once

#include <string_view>

namespace pollux::rpc {

// Whether SPDK method `method` only sets options of a component (pool sizes, socket and
// transport defaults): where pollux lacks the component, skipping it changes nothing stored
// or served.
bool SetsOptionsOnly(std::string_view method);

}  // namespace pollux::rpc
