// The registered clusters (bdev_rbd_register_cluster): named connections that rbd bdevs with a
// cluster_name share, and what the bdev side of the module needs of them. App thread only, so
// no lock. Private to the module.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "pollux/bdev_rbd/bdev_rbd.h"
#include "rbd_connection.h"

namespace pollux::rbd {

// The connection of registered cluster `cluster`, with `bdev` counted among its users (a bdev
// being created counts too) until ReleaseClusterUser. NotFound when no such cluster is
// registered, Unavailable while it is still connecting.
absl::StatusOr<std::shared_ptr<Connection>> AcquireClusterUser(std::string_view cluster,
                                                               const std::string& bdev);
void ReleaseClusterUser(std::string_view cluster, const std::string& bdev);

// Appends one bdev_rbd_register_cluster call per registered cluster (save_config).
void WriteClustersConfig(rpc::Json& config);

// The module is stopping: connections under way are dropped when they finish, and every
// registered cluster is forgotten, its connection shut down off the reactor.
void ForgetAllClusters();
// The module starts again (a new bdev layer in the same process).
void AllowClusters();

// Settings of a bdev's own connection, or of a registered cluster.
ConnectionSettings SettingsOf(const RbdClusterOptions& options);

}  // namespace pollux::rbd
