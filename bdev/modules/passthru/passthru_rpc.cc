// RPC methods of the passthru module: bdev_passthru_create and bdev_passthru_delete (SPDK's
// names and parameters). Config replay calls them too; save_config writes bdev_passthru_create
// back (PassthruModule::WriteConfig). Handlers run on the app thread.
#include <string>

#include "absl/strings/str_format.h"
#include "pollux/bdev_passthru/bdev_passthru.h"
#include "pollux/env/log.h"
#include "pollux/bdev/bdev_rpc.h"
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

// {"base_bdev_name", "name", "uuid"?} -> the name. A missing base is not an error: the bdev
// appears when the base does (as in SPDK).
void BdevPassthruCreate(const Json& params, RpcResponder responder) {
  constexpr const char* kMethod = "bdev_passthru_create";
  ParamReader reader(params);
  PassthruBdevOptions options;
  options.base_bdev_name = reader.String("base_bdev_name");
  options.name = reader.String("name");
  options.uuid = reader.OptionalString("uuid").value_or("");
  if (absl::Status s = reader.Finish(); !s.ok()) return ReplyError(responder, kMethod, s);
  absl::StatusOr<Bdev*> bdev = CreatePassthruBdev(options);
  if (!bdev.ok()) return ReplyError(responder, kMethod, bdev.status());
  if (*bdev == nullptr) {
    PX_LOG(kNotice, "passthru", "%s: base bdev %s not found; %s will be created when it appears",
           kMethod, options.base_bdev_name, options.name);
  }
  responder.Result(options.name);
}
POLLUX_RPC_METHOD(
    MethodSpec("bdev_passthru_create", "bdev_passthru",
               "Creates a passthru bdev over a base bdev, which it claims: every I/O goes to the "
               "base unchanged (the template for module writers). A missing base is no error: "
               "the bdev appears with it. Answers the name.",
               {Required("base_bdev_name", ParamType::kString, "the base bdev"),
                Required("name", ParamType::kString, "name of the new bdev"),
                Optional("uuid", ParamType::kString, "UUID of the bdev (default: a random one)")}),
    BdevPassthruCreate);

// {"name"} -> true once the bdev is gone.
void BdevPassthruDelete(const Json& params, RpcResponder responder) {
  HandleBdevDelete(params, std::move(responder), "bdev_passthru_delete", &DeletePassthruBdev);
}
POLLUX_RPC_METHOD(BdevDeleteSpec("bdev_passthru_delete", "bdev_passthru", "passthru bdev"),
                  BdevPassthruDelete);

}  // namespace
}  // namespace pollux
