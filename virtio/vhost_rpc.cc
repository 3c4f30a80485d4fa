// RPC methods of the vhost-user-blk target, with SPDK's names and parameters:
// vhost_create_blk_controller, vhost_delete_controller, vhost_get_controllers,
// vhost_controller_set_coalescing; and the "vhost_blk" subsystem, whose save_config writes
// every controller back, packed_ring included.
#include <limits>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "pollux/rpc/method_registry.h"
#include "pollux/rpc/subsystem.h"
#include "pollux/virtio/vhost_blk.h"

namespace pollux {
namespace {

using rpc::Json;
using rpc::ParamReader;
using rpc::ReplyError;
using rpc::ReplyTrueOrError;
using rpc::RpcResponder;

// "0600", "660" or 384: permissions in octal text or as a number.
absl::StatusOr<uint32_t> ParseSocketMode(const Json& value) {
  uint32_t mode = 0;
  if (value.is_number_unsigned()) {
    uint64_t v = value.get<uint64_t>();
    if (v > 07777) return absl::InvalidArgumentError("socket_mode must be at most 07777");
    return static_cast<uint32_t>(v);
  }
  if (!value.is_string()) {
    return absl::InvalidArgumentError("socket_mode must be octal text (\"0600\") or a number");
  }
  const std::string text = value.get<std::string>();
  if (text.empty() || text.size() > 5) {
    return absl::InvalidArgumentError("socket_mode \"" + text + "\": expected octal, e.g. 0660");
  }
  for (char ch : text) {
    if (ch < '0' || ch > '7') {
      return absl::InvalidArgumentError("socket_mode \"" + text + "\": expected octal, e.g. 0660");
    }
    mode = mode * 8 + static_cast<uint32_t>(ch - '0');
  }
  if (mode > 07777) return absl::InvalidArgumentError("socket_mode must be at most 07777");
  return mode;
}

void VhostCreateBlkController(const Json& params, RpcResponder responder) {
  constexpr const char* kMethod = "vhost_create_blk_controller";
  ParamReader reader(params);
  VhostBlkControllerOptions options;
  options.name = reader.String("ctrlr");
  options.bdev_name = reader.String("dev_name");
  options.cpumask = reader.OptionalString("cpumask").value_or("");
  options.readonly = reader.OptionalBool("readonly").value_or(false);
  options.packed_ring = reader.OptionalBool("packed_ring").value_or(false);
  std::optional<Json> mode = reader.OptionalValue("socket_mode");
  // SPDK accepts "transport" (only vhost_user_blk exists) and "delay" (ignored there too).
  std::string transport = reader.OptionalString("transport").value_or("vhost_user_blk");
  (void)reader.OptionalBool("delay");
  if (absl::Status s = reader.Finish(); !s.ok()) return ReplyError(responder, kMethod, s);
  if (transport != "vhost_user_blk") {
    return ReplyError(responder, kMethod,
                      absl::InvalidArgumentError(absl::StrFormat(
                          "transport \"%s\": only \"vhost_user_blk\" is supported", transport)));
  }
  if (mode) {
    absl::StatusOr<uint32_t> parsed = ParseSocketMode(*mode);
    if (!parsed.ok()) return ReplyError(responder, kMethod, parsed.status());
    options.socket_mode = *parsed;
  }
  ReplyTrueOrError(responder, kMethod, CreateVhostBlkController(options));
}
POLLUX_RPC_METHOD("vhost_create_blk_controller", VhostCreateBlkController);

void VhostDeleteController(const Json& params, RpcResponder responder) {
  constexpr const char* kMethod = "vhost_delete_controller";
  ParamReader reader(params);
  std::string name = reader.String("ctrlr");
  if (absl::Status s = reader.Finish(); !s.ok()) return ReplyError(responder, kMethod, s);
  DeleteVhostBlkController(name, [responder = std::move(responder)](absl::Status s) mutable {
    ReplyTrueOrError(responder, kMethod, s);
  });
}
POLLUX_RPC_METHOD("vhost_delete_controller", VhostDeleteController);

void VhostGetControllers(const Json& params, RpcResponder responder) {
  constexpr const char* kMethod = "vhost_get_controllers";
  ParamReader reader(params);
  std::string name = reader.OptionalString("name").value_or("");
  if (absl::Status s = reader.Finish(); !s.ok()) return ReplyError(responder, kMethod, s);
  GetVhostControllers(name, [responder = std::move(responder)](
                                absl::StatusOr<Json> info) mutable {
    if (!info.ok()) return ReplyError(responder, kMethod, info.status());
    responder.Result(std::move(*info));
  });
}
POLLUX_RPC_METHOD("vhost_get_controllers", VhostGetControllers);

void VhostControllerSetCoalescing(const Json& params, RpcResponder responder) {
  constexpr const char* kMethod = "vhost_controller_set_coalescing";
  ParamReader reader(params);
  std::string name = reader.String("ctrlr");
  uint64_t delay_base_us = reader.Uint("delay_base_us");
  uint64_t iops_threshold = reader.Uint("iops_threshold");
  if (absl::Status s = reader.Finish(); !s.ok()) return ReplyError(responder, kMethod, s);
  if (delay_base_us > std::numeric_limits<uint32_t>::max() ||
      iops_threshold > std::numeric_limits<uint32_t>::max()) {
    return ReplyError(responder, kMethod,
                      absl::InvalidArgumentError("delay_base_us and iops_threshold: 32 bits"));
  }
  ReplyTrueOrError(responder, kMethod,
                   SetVhostCoalescing(name, static_cast<uint32_t>(delay_base_us),
                                      static_cast<uint32_t>(iops_threshold)));
}
POLLUX_RPC_METHOD("vhost_controller_set_coalescing", VhostControllerSetCoalescing);

rpc::Subsystem MakeVhostBlkSubsystem() {
  rpc::Subsystem subsystem;
  subsystem.name = "vhost_blk";
  subsystem.order = 20;  // after "bdev": controllers serve bdevs
  subsystem.fini = [](absl::AnyInvocable<void()> done) {
    DeleteAllVhostControllers(std::move(done));
  };
  subsystem.write_config = [](Json& config) { WriteVhostBlkConfig(config); };
  return subsystem;
}
POLLUX_SUBSYSTEM(vhost_blk, MakeVhostBlkSubsystem);

}  // namespace
}  // namespace pollux
