// SPDK's kernel-NBD methods (nbd_start_disk, nbd_stop_disk, nbd_get_disks), which attach a bdev
// to a /dev/nbdX of the host's kernel. pollux serves NBD over a socket instead, to any client
// (the kernel's among them, through qemu-nbd --connect or nbd-client): nbd_start_disk says so
// and how, so that an SPDK config or script using it fails with directions rather than
// "unknown method"; the other two answer as SPDK would with no disk started.
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "pollux/rpc/method_registry.h"

namespace pollux {
namespace {

using rpc::Json;
using rpc::MethodSpec;
using rpc::Optional;
using rpc::ParamReader;
using rpc::ParamType;
using rpc::ReplyError;
using rpc::Required;
using rpc::RpcResponder;

void NbdStartDisk(const Json& params, RpcResponder responder) {
  constexpr const char* kMethod = "nbd_start_disk";
  ParamReader reader(params);
  std::string bdev_name = reader.String("bdev_name");
  std::string device = reader.OptionalString("nbd_device").value_or("/dev/nbdX");
  if (absl::Status s = reader.Finish(); !s.ok()) return ReplyError(responder, kMethod, s);
  ReplyError(responder, kMethod,
             absl::UnimplementedError(absl::StrCat(
                 "pollux does not drive the kernel's NBD devices (", device,
                 "); it is an NBD server: nbd_server_start, then nbd_export_add --bdev-name ",
                 bdev_name, ", and where the kernel has NBD: qemu-nbd --connect ", device,
                 " nbd://127.0.0.1:10809/", bdev_name)));
}
POLLUX_RPC_METHOD(
    MethodSpec("nbd_start_disk", "nbd",
               "SPDK's: would attach a bdev to a kernel /dev/nbdX. pollux refuses it with "
               "directions: it serves NBD over a socket (nbd_server_start, nbd_export_add).",
               {Required("bdev_name", ParamType::kString, "the bdev"),
                Optional("nbd_device", ParamType::kString, "the kernel device")}),
    NbdStartDisk);

void NbdStopDisk(const Json& params, RpcResponder responder) {
  constexpr const char* kMethod = "nbd_stop_disk";
  ParamReader reader(params);
  std::string device = reader.String("nbd_device");
  if (absl::Status s = reader.Finish(); !s.ok()) return ReplyError(responder, kMethod, s);
  ReplyError(responder, kMethod,
             absl::NotFoundError(
                 absl::StrCat("no kernel NBD disk ", device,
                              " (pollux starts none; nbd_export_remove removes an export)")));
}
POLLUX_RPC_METHOD(MethodSpec("nbd_stop_disk", "nbd",
                             "SPDK's: would detach a kernel /dev/nbdX. pollux starts none, so "
                             "it answers that the device is not found.",
                             {Required("nbd_device", ParamType::kString, "the kernel device")}),
                  NbdStopDisk);

void NbdGetDisks(const Json& params, RpcResponder responder) {
  constexpr const char* kMethod = "nbd_get_disks";
  ParamReader reader(params);
  std::optional<std::string> device = reader.OptionalString("nbd_device");
  if (absl::Status s = reader.Finish(); !s.ok()) return ReplyError(responder, kMethod, s);
  if (device) {
    return ReplyError(responder, kMethod,
                      absl::NotFoundError(absl::StrCat("no kernel NBD disk ", *device)));
  }
  responder.Result(Json::array());
}
POLLUX_RPC_METHOD(MethodSpec("nbd_get_disks", "nbd",
                             "SPDK's: lists kernel NBD disks, of which pollux has none: an "
                             "empty list (nbd_get_exports lists its exports).",
                             {Optional("nbd_device", ParamType::kString, "the one device")}),
                  NbdGetDisks);

}  // namespace
}  // namespace pollux
