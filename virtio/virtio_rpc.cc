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
using rpc::ParamReader;
using rpc::ReplyError;
using rpc::ReplyTrueOrError;
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
POLLUX_RPC_METHOD("bdev_virtio_attach_controller", BdevVirtioAttachController);

void BdevVirtioDetachController(const Json& params, RpcResponder responder) {
  constexpr const char* kMethod = "bdev_virtio_detach_controller";
  ParamReader reader(params);
  std::string name = reader.String("name");
  if (absl::Status s = reader.Finish(); !s.ok()) return ReplyError(responder, kMethod, s);
  DetachVirtioBlkController(name, [responder = std::move(responder)](absl::Status s) mutable {
    ReplyTrueOrError(responder, kMethod, s);
  });
}
POLLUX_RPC_METHOD("bdev_virtio_detach_controller", BdevVirtioDetachController);

void BdevVirtioGetControllers(const Json& params, RpcResponder responder) {
  constexpr const char* kMethod = "bdev_virtio_get_controllers";
  ParamReader reader(params);
  std::string name = reader.OptionalString("name").value_or("");
  if (absl::Status s = reader.Finish(); !s.ok()) return ReplyError(responder, kMethod, s);
  absl::StatusOr<Json> info = VirtioBlkControllersInfo(name);
  if (!info.ok()) return ReplyError(responder, kMethod, info.status());
  responder.Result(std::move(*info));
}
POLLUX_RPC_METHOD("bdev_virtio_get_controllers", BdevVirtioGetControllers);

}  // namespace
}  // namespace pollux
