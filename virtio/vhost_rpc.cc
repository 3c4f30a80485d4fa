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
using rpc::MethodSpec;
using rpc::Optional;
using rpc::ParamReader;
using rpc::ParamType;
using rpc::ReplyError;
using rpc::ReplyTrueOrError;
using rpc::Required;
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
  // SPDK accepts "transport" (only vhost_user_blk exists) and "delay" (ignored there too: the
  // registry drops it, see the spec).
  std::string transport = reader.OptionalString("transport").value_or("vhost_user_blk");
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
POLLUX_RPC_METHOD(
    MethodSpec(
        "vhost_create_blk_controller", "vhost",
        "Creates a vhost-user-blk controller that serves a bdev to the VM connecting to its "
        "socket, `ctrlr` in the socket folder (-S). Answers true.",
        {Required("ctrlr", ParamType::kString,
                  "name of the controller and of its socket file in the socket folder"),
         Required("dev_name", ParamType::kString, "the bdev the controller serves"),
         Optional("cpumask", ParamType::kString,
                  "cores whose reactors serve the queues: a hexadecimal mask as SPDK's "
                  "(\"0x3\" or \"3\") or a list (\"[0,1]\", \"0-1\"); absent: every reactor"),
         Optional("readonly", ParamType::kBoolean,
                  "offer the device read-only (VIRTIO_BLK_F_RO) and open the bdev for reading "
                  "only",
                  "false"),
         Optional("packed_ring", ParamType::kBoolean,
                  "offer packed virtqueues (VIRTIO_F_RING_PACKED) besides split ones", "false"),
         Optional("socket_mode", ParamType::kAny,
                  "permissions of the socket file: octal text (\"0660\") or a number, at most "
                  "07777",
                  "\"0600\""),
         Optional("transport", ParamType::kString,
                  "SPDK's virtio-blk transport: only \"vhost_user_blk\"", "\"vhost_user_blk\""),
         rpc::SpdkHint("delay", ParamType::kBoolean,
                       "SPDK's delayed start, which SPDK ignores for blk controllers too")}),
    VhostCreateBlkController);

void VhostDeleteController(const Json& params, RpcResponder responder) {
  constexpr const char* kMethod = "vhost_delete_controller";
  ParamReader reader(params);
  std::string name = reader.String("ctrlr");
  if (absl::Status s = reader.Finish(); !s.ok()) return ReplyError(responder, kMethod, s);
  DeleteVhostBlkController(name, [responder = std::move(responder)](absl::Status s) mutable {
    ReplyTrueOrError(responder, kMethod, s);
  });
}
POLLUX_RPC_METHOD(
    MethodSpec("vhost_delete_controller", "vhost",
               "Deletes a vhost controller and its socket; refused while a VM is connected. "
               "Answers true once it is gone.",
               {Required("ctrlr", ParamType::kString, "the controller to delete")}),
    VhostDeleteController);

void VhostGetControllers(const Json& params, RpcResponder responder) {
  constexpr const char* kMethod = "vhost_get_controllers";
  ParamReader reader(params);
  std::string name = reader.OptionalString("name").value_or("");
  if (absl::Status s = reader.Finish(); !s.ok()) return ReplyError(responder, kMethod, s);
  GetVhostControllers(name, [responder = std::move(responder)](absl::StatusOr<Json> info) mutable {
    rpc::ReplyResultOrError(responder, kMethod, std::move(info));
  });
}
POLLUX_RPC_METHOD(
    MethodSpec("vhost_get_controllers", "vhost",
               "Lists the vhost controllers as SPDK does (name, cpumask, coalescing, socket, "
               "bdev), with the connected session and per-queue counters.",
               {Optional("name", ParamType::kString,
                         "the one controller to describe; absent: all of them")}),
    VhostGetControllers);

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
POLLUX_RPC_METHOD(
    MethodSpec("vhost_controller_set_coalescing", "vhost",
               "Sets a controller's interrupt coalescing, as SPDK does: above `iops_threshold` "
               "requests per second on a queue, the guest's interrupts are spaced by "
               "`delay_base_us` scaled by the excess. Answers true.",
               {Required("ctrlr", ParamType::kString, "the controller"),
                Required("delay_base_us", ParamType::kUnsigned,
                         "base delay between interrupts in microseconds, at most 1000000"),
                Required("iops_threshold", ParamType::kUnsigned,
                         "requests per second of a queue above which its interrupts are "
                         "delayed; 0 turns coalescing off")}),
    VhostControllerSetCoalescing);

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
