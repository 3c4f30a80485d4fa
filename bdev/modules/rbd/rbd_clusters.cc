// The table of registered clusters and the cluster side of the public API (bdev_rbd.h).
#include "rbd_clusters.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "pollux/env/log.h"

namespace pollux {
namespace rbd {
namespace {

struct RegisteredCluster {
  RbdClusterOptions options;
  std::shared_ptr<Connection> connection;  // null while connecting
  std::vector<std::string> users;          // bdevs on it, those being created included
};

struct ClusterTable {
  std::map<std::string, RegisteredCluster, std::less<>> clusters;
  bool stopping = false;
};

// App thread only. Never destroyed: the module object outlives every bdev layer of the process.
ClusterTable& Table() {
  static ClusterTable* table = new ClusterTable;
  return *table;
}

rpc::Json Describe(const RegisteredCluster& cluster) {
  const RbdClusterOptions& o = cluster.options;
  rpc::Json info = {{"cluster_name", o.name}};
  if (!o.user_id.empty()) info["user_id"] = o.user_id;
  if (!o.config_param.empty()) info["config_param"] = o.config_param;
  if (!o.config_file.empty()) info["config_file"] = o.config_file;
  if (!o.key_file.empty()) info["key_file"] = o.key_file;
  info["bdevs"] = cluster.users;
  info["connected"] = cluster.connection != nullptr;
  return info;
}

}  // namespace

ConnectionSettings SettingsOf(const RbdClusterOptions& options) {
  return ConnectionSettings{options.user_id, options.config_param, options.config_file,
                            options.key_file};
}

absl::StatusOr<std::shared_ptr<Connection>> AcquireClusterUser(std::string_view cluster,
                                                               const std::string& bdev) {
  auto it = Table().clusters.find(cluster);
  if (it == Table().clusters.end()) {
    return absl::NotFoundError(absl::StrFormat(
        "cluster \"%s\" is not registered (bdev_rbd_register_cluster registers it)", cluster));
  }
  if (it->second.connection == nullptr) {
    return absl::UnavailableError(
        absl::StrFormat("cluster \"%s\" is still connecting: try again once "
                        "bdev_rbd_register_cluster has answered",
                        cluster));
  }
  it->second.users.push_back(bdev);
  return it->second.connection;
}

void ReleaseClusterUser(std::string_view cluster, const std::string& bdev) {
  auto it = Table().clusters.find(cluster);
  if (it == Table().clusters.end()) return;
  auto& users = it->second.users;
  if (auto user = std::find(users.begin(), users.end(), bdev); user != users.end()) {
    users.erase(user);
  }
}

void WriteClustersConfig(rpc::Json& config) {
  for (const auto& [name, cluster] : Table().clusters) {
    if (cluster.connection == nullptr) continue;  // not registered until connected
    const RbdClusterOptions& o = cluster.options;
    rpc::Json params = {{"name", name}};
    if (!o.user_id.empty()) params["user_id"] = o.user_id;
    if (!o.config_param.empty()) params["config_param"] = o.config_param;
    if (!o.config_file.empty()) params["config_file"] = o.config_file;
    if (!o.key_file.empty()) params["key_file"] = o.key_file;
    config.push_back({{"method", "bdev_rbd_register_cluster"}, {"params", std::move(params)}});
  }
}

void ForgetAllClusters() {
  ClusterTable& table = Table();
  table.stopping = true;
  for (auto& [name, cluster] : table.clusters) ReleaseOffReactor(std::move(cluster.connection));
  table.clusters.clear();
}

void AllowClusters() { Table().stopping = false; }

}  // namespace rbd

void RegisterRbdCluster(const RbdClusterOptions& options,
                        absl::AnyInvocable<void(absl::Status)> done) {
  rbd::ClusterTable& table = rbd::Table();
  if (options.name.empty()) return done(absl::InvalidArgumentError("the cluster name is empty"));
  if (table.stopping) return done(absl::UnavailableError("the rbd module is stopping"));
  if (auto it = table.clusters.find(options.name); it != table.clusters.end()) {
    const char* state = it->second.connection != nullptr ? "already" : "being";
    return done(absl::AlreadyExistsError(
        absl::StrFormat("cluster \"%s\" is %s registered", options.name, state)));
  }
  // Listed at once, without a connection: a second registration of the name fails meanwhile,
  // and no bdev can use it before it is connected.
  table.clusters.emplace(options.name, rbd::RegisteredCluster{options, nullptr, {}});
  rbd::RunOffReactor<absl::StatusOr<std::shared_ptr<rbd::Connection>>>(
      [settings = rbd::SettingsOf(options)] { return rbd::Connection::Connect(settings); },
      [name = options.name, done = std::move(done)](
          absl::StatusOr<std::shared_ptr<rbd::Connection>> connection) mutable {
        rbd::ClusterTable& table = rbd::Table();
        auto it = table.clusters.find(name);
        if (table.stopping || it == table.clusters.end()) {
          if (connection.ok()) rbd::ReleaseOffReactor(std::move(*connection));
          return done(absl::UnavailableError("the rbd module stopped meanwhile"));
        }
        if (!connection.ok()) {
          table.clusters.erase(it);
          return done(connection.status());
        }
        it->second.connection = std::move(*connection);
        PX_LOG(kInfo, "bdev_rbd", "cluster %s registered", name);
        done(absl::OkStatus());
      });
}

absl::Status UnregisterRbdCluster(std::string_view name) {
  auto& clusters = rbd::Table().clusters;
  auto it = clusters.find(name);
  if (it == clusters.end()) {
    return absl::NotFoundError(absl::StrFormat("cluster \"%s\" is not registered", name));
  }
  if (it->second.connection == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrFormat("cluster \"%s\" is still connecting", name));
  }
  if (!it->second.users.empty()) {
    return absl::FailedPreconditionError(
        absl::StrFormat("cluster \"%s\" is used by bdev %s: delete it first", name,
                        absl::StrJoin(it->second.users, ", ")));
  }
  rbd::ReleaseOffReactor(std::move(it->second.connection));
  clusters.erase(it);
  PX_LOG(kInfo, "bdev_rbd", "cluster %s unregistered", name);
  return absl::OkStatus();
}

absl::StatusOr<rpc::Json> GetRbdClustersInfo(std::string_view name) {
  const auto& clusters = rbd::Table().clusters;
  if (!name.empty()) {
    auto it = clusters.find(name);
    if (it == clusters.end() || it->second.connection == nullptr) {
      return absl::NotFoundError(absl::StrFormat("cluster \"%s\" is not registered", name));
    }
    return rbd::Describe(it->second);
  }
  rpc::Json all = rpc::Json::array();
  for (const auto& [cluster_name, cluster] : clusters) {
    if (cluster.connection != nullptr) all.push_back(rbd::Describe(cluster));
  }
  return all;
}

}  // namespace pollux
