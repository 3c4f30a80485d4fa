// RPC methods of the vhost-user initiator, with SPDK's names and parameters:
// bdev_virtio_attach_controller, bdev_virtio_detach_controller, bdev_virtio_get_controllers.
// save_config writes bdev_virtio_attach_controller back (VirtioBlkBdev::WriteConfig).
#include <limits>
#include <string>

#include "absl/strings/str_format.h"
#include "pollux/bdev/bdev.h"
#include "pollux/bdev/bdev_rpc.h"
#include "pollux/rpc/method_registry.h"
#include "pollux/virtio/bdev_virtio_blk.h"

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

void BdevVirtioAttachController(const Json& params, RpcResponder responder) {
  constexpr const char* kMethod = "bdev_virtio_attach_controller";
  ParamReader reader(params);
  VirtioBlkControllerOptions options;
  options.name = reader.String("name");
  std::string trtype = reader.String("trtype");
  options.socket_path = reader.String("traddr");
  std::string dev_type = reader.String("dev_type");
  uint64_t vq_count = reader.OptionalUint("vq_count").value_or(options.vq_count);
  uint64_t vq_size = reader.OptionalUint("vq_size").value_or(options.vq_size);
  options.packed_ring = reader.OptionalBool("packed_ring").value_or(false);
  if (absl::Status s = reader.Finish(); !s.ok()) return ReplyError(responder, kMethod, s);
  if (trtype != "user" && trtype != "User") {
    return ReplyError(responder, kMethod,
                      absl::InvalidArgumentError(absl::StrFormat(
                          "trtype \"%s\": only \"user\" (a vhost-user socket) is supported; "
                          "pollux has no virtio-pci driver",
                          trtype)));
  }
  if (dev_type != "blk") {
    return ReplyError(responder, kMethod,
                      absl::InvalidArgumentError(absl::StrFormat(
                          "dev_type \"%s\": only \"blk\" is supported", dev_type)));
  }
  if (vq_count > std::numeric_limits<uint32_t>::max() ||
      vq_size > std::numeric_limits<uint32_t>::max()) {
    return ReplyError(responder, kMethod,
                      absl::InvalidArgumentError("vq_count and vq_size must fit in 32 bits"));
  }
  options.vq_count = static_cast<uint32_t>(vq_count);
  options.vq_size = static_cast<uint32_t>(vq_size);
  absl::StatusOr<Bdev*> bdev = AttachVirtioBlkController(options);
  if (!bdev.ok()) return ReplyError(responder, kMethod, bdev.status());
  // SPDK answers with the names of the bdevs the controller made.
  responder.Result(Json::array({(*bdev)->name()}));
}
POLLUX_RPC_METHOD(
    MethodSpec("bdev_virtio_attach_controller", "virtio",
               "Connects to a vhost-user-blk back-end's socket as its front-end and makes one "
               "bdev of its disk, named `name`. Answers the names of the bdevs made, as SPDK "
               "does.",
               {Required("name", ParamType::kString, "name of the controller and of its bdev"),
                Required("trtype", ParamType::kString,
                         "SPDK's transport type: only \"user\" (a vhost-user socket)"),
                Required("traddr", ParamType::kString, "path of the back-end's vhost-user socket"),
                Required("dev_type", ParamType::kString, "SPDK's device type: only \"blk\""),
                Optional("vq_count", ParamType::kUnsigned,
                         "virtqueues to use, 1 to 64 and at most what the back-end has", "1"),
                Optional("vq_size", ParamType::kUnsigned,
                         "entries per virtqueue, 2 to 32768 (a power of two for split rings)",
                         "512"),
                Optional("packed_ring", ParamType::kBoolean,
                         "use packed virtqueues (the back-end must offer VIRTIO_F_RING_PACKED)",
                         "false")}),
    BdevVirtioAttachController);

void BdevVirtioDetachController(const Json& params, RpcResponder responder) {
  constexpr const char* kMethod = "bdev_virtio_detach_controller";
  ParamReader reader(params);
  std::string name = reader.String("name");
  if (absl::Status s = reader.Finish(); !s.ok()) return ReplyError(responder, kMethod, s);
  DetachVirtioBlkController(name, [responder = std::move(responder)](absl::Status s) mutable {
    ReplyTrueOrError(responder, kMethod, s);
  });
}
POLLUX_RPC_METHOD(
    MethodSpec("bdev_virtio_detach_controller", "virtio",
               "Detaches a virtio controller: hot-removes its bdev, stops its virtqueues and "
               "closes the socket. Answers true once it is gone.",
               {Required("name", ParamType::kString, "the controller to detach")}),
    BdevVirtioDetachController);

void BdevVirtioGetControllers(const Json& params, RpcResponder responder) {
  constexpr const char* kMethod = "bdev_virtio_get_controllers";
  ParamReader reader(params);
  std::string name = reader.OptionalString("name").value_or("");
  if (absl::Status s = reader.Finish(); !s.ok()) return ReplyError(responder, kMethod, s);
  rpc::ReplyResultOrError(responder, kMethod, VirtioBlkControllersInfo(name));
}
POLLUX_RPC_METHOD(
    MethodSpec("bdev_virtio_get_controllers", "virtio",
               "Lists the attached virtio controllers, with each one's socket, negotiated "
               "features and per-virtqueue counters.",
               {Optional("name", ParamType::kString,
                         "the one controller to describe; absent: all of them")}),
    BdevVirtioGetControllers);

}  // namespace
}  // namespace pollux
