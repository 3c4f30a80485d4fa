// Config files: SPDK's shape, a replay of RPC calls grouped by subsystem:
//   {"subsystems":[{"subsystem":"framework","config":[{"method":"...","params":{...}}]}]}
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "pollux/rpc/json_rpc.h"
#include "pollux/rpc/method_registry.h"
#include "pollux/rpc/subsystem.h"

namespace pollux::rpc {

// Reads and parses a config file. Errors name the file and, for syntax errors, the line and
// column: `etc/x.json:3:17: syntax error: unexpected '}'`. Checks the shape as well (see
// ValidateConfig, against SubsystemRegistry::Global()).
absl::StatusOr<Json> LoadConfigFile(const std::string& path);

// Parses config text; `source` names it in errors. Syntax only: the shape is ValidateConfig's.
absl::StatusOr<Json> ParseConfig(std::string_view text, std::string_view source);

// Checks the shape: an object with a "subsystems" array whose entries have a "subsystem" name
// and a "config" array (or null) of objects with a string "method" and an optional object
// "params". Errors name the entry. As for configs SPDK wrote: other top-level keys are
// allowed, and so is a subsystem not in `subsystems` whose section only sets options
// (iobuf_set_options, sock_impl_set_options, ...; ReplayConfig skips it); any other method in
// such a section is an error.
absl::Status ValidateConfig(const Json& config, std::string_view source,
                            SubsystemRegistry& subsystems);

// Replays a validated config: subsystem by subsystem in subsystem order, each entry as an RPC
// call, one after the other (a call may answer later). Stops at the first failing call:
// `etc/x.json: subsystem "bdev", entry 2, method "bdev_malloc_create": <the RPC error>`.
// (The entry counts from 0, as in ValidateConfig's `subsystems[i].config[2]`; the RPC error is
// `<message> (code N)`.) Validates the shape first, and refuses a method that is not in
// `methods` before any call runs, unless it only sets options of a part pollux lacks (an SPDK
// module's *_set_options): what is skipped gets one warning line each. Run on the app thread.
void ReplayConfig(const Json& config, std::string source, MethodRegistry& methods,
                  SubsystemRegistry& subsystems, StatusCallback done);

// The running state in the same format (what save_config returns). Every registered subsystem
// appears, in order, with "config": [] when it has nothing to say.
Json SaveConfig(SubsystemRegistry& subsystems);

}  // namespace pollux::rpc
