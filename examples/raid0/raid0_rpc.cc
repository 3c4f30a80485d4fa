// RPC methods of the RAID0 module, with SPDK's names and parameters: bdev_raid_create (only
// raid_level "raid0"), bdev_raid_delete, bdev_raid_get_bdevs. On the app thread.
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "pollux/bdev/bdev_rpc.h"
#include "pollux/rpc/method_registry.h"
#include "raid0.h"

namespace raid0 {
namespace {

using pollux::rpc::Json;
using pollux::rpc::MethodSpec;
using pollux::rpc::Optional;
using pollux::rpc::ParamReader;
using pollux::rpc::ParamType;
using pollux::rpc::ReplyError;
using pollux::rpc::Required;
using pollux::rpc::RpcResponder;

// SPDK takes base_bdevs as an array of names or as one string of names separated by spaces.
absl::StatusOr<std::vector<std::string>> BaseBdevs(const Json& value) {
  std::vector<std::string> names;
  if (value.is_string()) {
    std::istringstream words(value.get<std::string>());
    for (std::string name; words >> name;) names.push_back(name);
    return names;
  }
  if (!value.is_array()) {
    return absl::InvalidArgumentError(
        "parameter \"base_bdevs\" must be an array of bdev names (or one string of them)");
  }
  for (const Json& name : value) {
    if (!name.is_string()) {
      return absl::InvalidArgumentError("parameter \"base_bdevs\": every entry must be a string");
    }
    names.push_back(name.get<std::string>());
  }
  return names;
}

// {"name", "raid_level", "strip_size_kb", "base_bdevs", "uuid"?, "superblock"?} -> true.
void BdevRaidCreate(const Json& params, RpcResponder responder) {
  constexpr const char* kMethod = "bdev_raid_create";
  ParamReader reader(params);
  RaidConfig config;
  config.name = reader.String("name");
  std::string level = reader.String("raid_level");
  config.strip_size_kb = reader.Uint("strip_size_kb");
  std::optional<Json> bases = reader.OptionalValue("base_bdevs");
  config.uuid = reader.OptionalString("uuid").value_or("");
  bool superblock = reader.OptionalBool("superblock").value_or(false);
  if (absl::Status s = reader.Finish(); !s.ok()) return ReplyError(responder, kMethod, s);
  if (level != "raid0" && level != "0") {
    return ReplyError(responder, kMethod,
                      absl::InvalidArgumentError(absl::StrFormat(
                          "raid_level \"%s\": this module makes raid0 only", level)));
  }
  if (superblock) {
    return ReplyError(responder, kMethod,
                      absl::InvalidArgumentError("superblock: not supported by this module"));
  }
  if (!bases) {
    return ReplyError(responder, kMethod,
                      absl::InvalidArgumentError("missing parameter \"base_bdevs\""));
  }
  absl::StatusOr<std::vector<std::string>> names = BaseBdevs(*bases);
  if (!names.ok()) return ReplyError(responder, kMethod, names.status());
  config.base_bdevs = std::move(*names);
  if (absl::Status s = Raid0Module::Get().Create(std::move(config)); !s.ok()) {
    return ReplyError(responder, kMethod, s);
  }
  responder.Result(true);
}
POLLUX_RPC_METHOD(
    MethodSpec("bdev_raid_create", "bdev_raid0",
               "Creates a RAID0 bdev striped over base bdevs, which it claims; until every base "
               "exists the RAID waits, configuring. Answers true.",
               {Required("name", ParamType::kString, "name of the new RAID bdev"),
                Required("raid_level", ParamType::kString,
                         "\"raid0\" or \"0\": this module makes RAID0 only"),
                Required("strip_size_kb", ParamType::kUnsigned,
                         "strip size in KiB: a power of two from 1 to 1048576, at least one "
                         "block"),
                Required("base_bdevs", ParamType::kAny,
                         "the base bdevs in stripe order: an array of names, or one string of "
                         "names separated by spaces"),
                Optional("uuid", ParamType::kString,
                         "UUID of the RAID bdev (default: a random one, then kept)"),
                Optional("superblock", ParamType::kBoolean,
                         "SPDK's RAID superblock on the bases: only false, this module writes none",
                         "false")}),
    BdevRaidCreate);

void BdevRaidDelete(const Json& params, RpcResponder responder) {
  pollux::HandleBdevDelete(params, std::move(responder), "bdev_raid_delete",
                           [](std::string_view name, absl::AnyInvocable<void(absl::Status)> done) {
                             Raid0Module::Get().Delete(std::string(name), std::move(done));
                           });
}
POLLUX_RPC_METHOD(pollux::BdevDeleteSpec("bdev_raid_delete", "bdev_raid0", "RAID0 bdev"),
                  BdevRaidDelete);

// {"category": "all" | "online" | "configuring" | "offline"} -> the RAIDs, as SPDK lists them.
void BdevRaidGetBdevs(const Json& params, RpcResponder responder) {
  constexpr const char* kMethod = "bdev_raid_get_bdevs";
  ParamReader reader(params);
  std::string category = reader.OptionalString("category").value_or("all");
  if (absl::Status s = reader.Finish(); !s.ok()) return ReplyError(responder, kMethod, s);
  if (category != "all" && category != "online" && category != "configuring" &&
      category != "offline") {
    return ReplyError(
        responder, kMethod,
        absl::InvalidArgumentError(absl::StrFormat(
            "category \"%s\": expected all, online, configuring or offline", category)));
  }
  Json result = Json::array();
  for (const auto& raid : Raid0Module::Get().raids()) {
    const char* state = RaidStateName(raid->state());
    if (category != "all" && category != state) continue;
    Json bases = Json::array();
    for (size_t slot = 0; slot < raid->bases.size(); ++slot) {
      bases.push_back({{"name", raid->config.base_bdevs[slot]},
                       {"is_configured", raid->bases[slot] != nullptr}});
    }
    result.push_back({{"name", raid->config.name},
                      {"strip_size_kb", raid->config.strip_size_kb},
                      {"state", state},
                      {"raid_level", "raid0"},
                      {"num_base_bdevs", raid->bases.size()},
                      {"num_base_bdevs_discovered", raid->discovered()},
                      {"base_bdevs_list", std::move(bases)}});
  }
  responder.Result(std::move(result));
}
POLLUX_RPC_METHOD(
    MethodSpec("bdev_raid_get_bdevs", "bdev_raid0",
               "Lists the RAIDs as SPDK does: name, strip size, state, and each base bdev with "
               "whether it is there.",
               {Optional("category", ParamType::kString,
                         "which RAIDs: all, online, configuring (waiting for bases) or offline",
                         "\"all\"")}),
    BdevRaidGetBdevs);

}  // namespace
}  // namespace raid0
