// RPC methods of the rbd module, with SPDK's names and parameters: bdev_rbd_register_cluster,
// bdev_rbd_unregister_cluster, bdev_rbd_get_clusters_info, bdev_rbd_create, bdev_rbd_delete
// and bdev_rbd_resize. Those that need the cluster answer once it has (or its timeout passed);
// the app thread goes on serving other calls meanwhile.
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "absl/functional/function_ref.h"
#include "absl/strings/str_format.h"
#include "pollux/bdev/bdev_rpc.h"
#include "pollux/bdev_rbd/bdev_rbd.h"
#include "pollux/rpc/method_registry.h"

namespace pollux {
namespace {

using rpc::ParamType;

// Reads a method's params with `read`; false, with the error answered (prefixed by `method`),
// when they are malformed.
bool ReadParams(const rpc::Json& params, rpc::RpcResponder& responder, const char* method,
                absl::FunctionRef<void(rpc::ParamReader&)> read) {
  rpc::ParamReader reader(params);
  read(reader);
  absl::Status status = reader.Finish();
  if (!status.ok()) rpc::ReplyError(responder, method, status);
  return status.ok();
}

// The answer of a call that finishes later: `true`, or the error prefixed by `method`.
absl::AnyInvocable<void(absl::Status)> AnswerTrue(const char* method, rpc::RpcResponder responder) {
  return [method, responder = std::move(responder)](absl::Status status) mutable {
    rpc::ReplyTrueOrError(responder, method, status);
  };
}

// The answer of a call that finishes later with a name (SPDK's create and register methods).
absl::AnyInvocable<void(absl::StatusOr<std::string>)> AnswerName(const char* method,
                                                                 rpc::RpcResponder responder) {
  return [method, responder = std::move(responder)](absl::StatusOr<std::string> name) mutable {
    if (!name.ok()) return rpc::ReplyError(responder, method, name.status());
    responder.Result(*name);
  };
}

// A librados settings map (SPDK's "string map": config_param, config): string values; numbers
// and booleans are taken as their JSON text, which is what librados parses them from.
absl::StatusOr<std::map<std::string, std::string>> ReadSettings(
    const std::optional<rpc::Json>& value, std::string_view param) {
  std::map<std::string, std::string> settings;
  if (!value) return settings;
  for (const auto& [key, item] : value->items()) {
    if (key.empty()) {
      return absl::InvalidArgumentError(absl::StrFormat("%s has an empty key", param));
    }
    if (item.is_string()) {
      settings[key] = item.get<std::string>();
    } else if (item.is_number() || item.is_boolean()) {
      settings[key] = item.dump();
    } else {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s.%s must be a string (a librados setting), not %s", param, key, item.type_name()));
    }
  }
  return settings;
}

// Optional strings given as "" are refused rather than taken as absent: the first such, or OK.
absl::Status CheckStrings(
    std::initializer_list<std::pair<const std::optional<std::string>*, const char*>> strings) {
  for (const auto& [value, param] : strings) {
    if (*value && (*value)->empty()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("parameter \"%s\" must not be empty", param));
    }
  }
  return absl::OkStatus();
}

// The spec of a cluster method whose one parameter is the cluster's name.
rpc::MethodSpec ClusterNameSpec(std::string method, std::string description, rpc::ParamSpec name) {
  return rpc::MethodSpec(std::move(method), "bdev_rbd", std::move(description), {std::move(name)});
}

void BdevRbdRegisterCluster(const rpc::Json& params, rpc::RpcResponder responder) {
  constexpr const char* kMethod = "bdev_rbd_register_cluster";
  RbdClusterOptions options;
  std::optional<std::string> user_id;
  std::optional<rpc::Json> config_param;
  if (!ReadParams(params, responder, kMethod, [&](rpc::ParamReader& reader) {
        options.name = reader.String("name");
        user_id = reader.OptionalString("user_id");
        config_param = reader.OptionalValue("config_param");
        options.config_file = reader.OptionalString("config_file").value_or("");
        options.key_file = reader.OptionalString("key_file").value_or("");
      })) {
    return;
  }
  auto settings = ReadSettings(config_param, "config_param");
  absl::Status checked = CheckStrings({{&user_id, "user_id"}});
  if (checked.ok()) checked = settings.status();
  if (!checked.ok()) return rpc::ReplyError(responder, kMethod, checked);
  options.user_id = user_id.value_or("");
  options.config_param = std::move(*settings);
  auto answer = AnswerName(kMethod, std::move(responder));
  RegisterRbdCluster(
      options, [name = options.name, answer = std::move(answer)](absl::Status status) mutable {
        if (status.ok()) return answer(name);  // SPDK answers the cluster's name
        answer(status);
      });
}
POLLUX_RPC_METHOD(
    rpc::MethodSpec(
        "bdev_rbd_register_cluster", "bdev_rbd",
        "Connects to a Ceph cluster and registers the connection under a name that "
        "bdev_rbd_create's cluster_name then shares. Settings: config_file first, then "
        "config_param, then key_file; with none of them $CEPH_CONF or /etc/ceph/ceph.conf. "
        "Answers once connected (within client_mount_timeout, 30 s unless set): the name.",
        {rpc::Required("name", ParamType::kString, "name of the cluster connection"),
         rpc::Optional("user_id", ParamType::kString,
                       "Ceph user without \"client.\" (default admin)"),
         rpc::Optional("config_param", ParamType::kObject,
                       "librados settings, {\"mon_host\": \"...\", \"key\": \"...\"}"),
         rpc::Optional("config_file", ParamType::kString, "a ceph.conf to read"),
         rpc::Optional("key_file", ParamType::kString, "a keyring file"),
         rpc::SpdkHint("core_mask", ParamType::kString,
                       "SPDK's cores for librados' threads; here they take the cores the "
                       "process started with")}),
    BdevRbdRegisterCluster);

void BdevRbdUnregisterCluster(const rpc::Json& params, rpc::RpcResponder responder) {
  std::string name;
  if (ReadParams(params, responder, "bdev_rbd_unregister_cluster",
                 [&](rpc::ParamReader& reader) { name = reader.String("name"); })) {
    AnswerTrue("bdev_rbd_unregister_cluster", std::move(responder))(UnregisterRbdCluster(name));
  }
}
POLLUX_RPC_METHOD(ClusterNameSpec("bdev_rbd_unregister_cluster",
                                  "Shuts a registered cluster connection down; refused while a "
                                  "bdev uses it. Answers true.",
                                  rpc::Required("name", ParamType::kString, "the cluster")),
                  BdevRbdUnregisterCluster);

void BdevRbdGetClustersInfo(const rpc::Json& params, rpc::RpcResponder responder) {
  constexpr const char* kMethod = "bdev_rbd_get_clusters_info";
  std::string name;
  if (!ReadParams(params, responder, kMethod, [&](rpc::ParamReader& reader) {
        name = reader.OptionalString("name").value_or("");
      })) {
    return;
  }
  absl::StatusOr<rpc::Json> info = GetRbdClustersInfo(name);
  if (info.ok()) return responder.Result(std::move(*info));
  rpc::ReplyError(responder, kMethod, info.status());
}
POLLUX_RPC_METHOD(ClusterNameSpec("bdev_rbd_get_clusters_info",
                                  "The registered clusters' settings and the bdevs using each: "
                                  "one object for a name, an array of all without.",
                                  rpc::Optional("name", ParamType::kString,
                                                "one cluster (default: all)")),
                  BdevRbdGetClustersInfo);

void BdevRbdCreate(const rpc::Json& params, rpc::RpcResponder responder) {
  constexpr const char* kMethod = "bdev_rbd_create";
  RbdBdevOptions options;
  std::optional<std::string> name, user_id, cluster_name;
  std::optional<rpc::Json> config;
  uint64_t block_size = 0;
  if (!ReadParams(params, responder, kMethod, [&](rpc::ParamReader& reader) {
        name = reader.OptionalString("name");
        options.pool_name = reader.String("pool_name");
        options.rbd_name = reader.String("rbd_name");
        block_size = reader.Uint("block_size");
        user_id = reader.OptionalString("user_id");
        config = reader.OptionalValue("config");
        cluster_name = reader.OptionalString("cluster_name");
        options.uuid = reader.OptionalString("uuid").value_or("");
      })) {
    return;
  }
  auto settings = ReadSettings(config, "config");
  absl::Status checked =
      CheckStrings({{&name, "name"}, {&user_id, "user_id"}, {&cluster_name, "cluster_name"}});
  if (checked.ok()) checked = settings.status();
  if (checked.ok() && block_size > UINT32_MAX) {
    checked = absl::InvalidArgumentError(
        absl::StrFormat("block_size %u is not a power of two from 512 to 65536", block_size));
  }
  if (!checked.ok()) return rpc::ReplyError(responder, kMethod, checked);
  options.name = name.value_or("");
  options.block_size = static_cast<uint32_t>(block_size);
  options.user_id = user_id.value_or("");
  options.cluster_name = cluster_name.value_or("");
  options.config = std::move(*settings);
  CreateRbdBdev(options, AnswerName(kMethod, std::move(responder)));
}
POLLUX_RPC_METHOD(
    rpc::MethodSpec(
        "bdev_rbd_create", "bdev_rbd",
        "Creates a bdev over a Ceph RBD image. Its connection is a registered cluster "
        "(cluster_name) or its own (user_id and config; without config $CEPH_CONF or "
        "/etc/ceph/ceph.conf). Answers once the image is open: the bdev's name.",
        {rpc::Optional("name", ParamType::kString,
                       "name of the new bdev (default: CephN, the first free)"),
         rpc::Required("pool_name", ParamType::kString, "the image's pool"),
         rpc::Required("rbd_name", ParamType::kString, "the image"),
         rpc::Optional("block_size", ParamType::kUnsigned,
                       "bytes per block: a power of two from 512 to 65536", "512"),
         rpc::Optional("user_id", ParamType::kString, "Ceph user of the bdev's own connection"),
         rpc::Optional("config", ParamType::kObject,
                       "librados settings of the bdev's own connection"),
         rpc::Optional("cluster_name", ParamType::kString,
                       "a cluster registered with bdev_rbd_register_cluster"),
         rpc::Optional("uuid", ParamType::kString, "UUID of the bdev (default: a random one)")}),
    BdevRbdCreate);

void BdevRbdDelete(const rpc::Json& params, rpc::RpcResponder responder) {
  HandleBdevDelete(params, std::move(responder), "bdev_rbd_delete", &DeleteRbdBdev);
}
POLLUX_RPC_METHOD(BdevDeleteSpec("bdev_rbd_delete", "bdev_rbd", "rbd bdev"), BdevRbdDelete);

void BdevRbdResize(const rpc::Json& params, rpc::RpcResponder responder) {
  std::string name;
  uint64_t new_size = 0;
  if (ReadParams(params, responder, "bdev_rbd_resize", [&](rpc::ParamReader& reader) {
        name = reader.String("name");
        new_size = reader.Uint("new_size");
      })) {
    ResizeRbdBdev(name, new_size, AnswerTrue("bdev_rbd_resize", std::move(responder)));
  }
}
POLLUX_RPC_METHOD(
    rpc::MethodSpec("bdev_rbd_resize", "bdev_rbd",
                    "Grows the image under an rbd bdev; its descriptors hear of the new size. "
                    "Answers true once the cluster has resized it.",
                    {rpc::Required("name", ParamType::kString, "the rbd bdev"),
                     rpc::Required("new_size", ParamType::kUnsigned, "the new size in MiB")}),
    BdevRbdResize);

}  // namespace
}  // namespace pollux
