// The rbd bdev module (SPDK's bdev_rbd): block devices backed by Ceph RBD images through
// librbd, and the named cluster connections they may share (bdev_rbd_register_cluster).
//
// I/O goes to librbd's asynchronous calls from the submitting thread; librbd completes it on
// its own threads, and a per-channel lockless ring brings each completion back to that thread
// (pollux/reactor/completion_ring.h). Everything that blocks on the cluster (connecting, opening an
// image, resizing, closing) runs on short-lived OS threads, so the functions below that need
// the cluster finish later, through their `done`.
//
// Threads: every function below runs on the app thread (where the RPC methods in rbd_rpc.cc
// run) and calls `done` there; I/O runs on any thread.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pollux/bdev/bdev.h"
#include "pollux/bdev/bdev_module.h"
#include "pollux/rpc/json_rpc.h"

namespace pollux {

class RbdModule final : public BdevModule {
 public:
  RbdModule();
  static RbdModule& Get();

  absl::Status Init() override;
  // Creates still waiting for the cluster end in an error from now on: no bdev appears after
  // the layer unregistered them all.
  void FiniStart(Done done) override;
  // Waits for connections and closes still under way on their OS threads (each bounded by
  // the librados timeouts), then shuts the registered clusters down.
  void FiniAsync(Done done) override;
  // The registered clusters first (bdev_rbd_register_cluster), then the bdevs.
  void WriteConfig(rpc::Json& config) const override;
  size_t io_context_size() const override;
};

// bdev_rbd_register_cluster's parameters (SPDK's cluster_register_info).
struct RbdClusterOptions {
  std::string name;
  std::string user_id;                              // empty: "admin"
  std::map<std::string, std::string> config_param;  // librados settings
  std::string config_file;
  std::string key_file;
};

// Connects to a cluster off the reactor and registers it under options.name; done(OK) once
// connected. AlreadyExists for a name registered or being registered; the connection's error
// otherwise (nothing stays registered).
void RegisterRbdCluster(const RbdClusterOptions& options,
                        absl::AnyInvocable<void(absl::Status)> done);
// Forgets cluster `name` and shuts its connection down. NotFound when unknown;
// FailedPrecondition while a bdev uses it or a bdev on it is being created.
absl::Status UnregisterRbdCluster(std::string_view name);
// bdev_rbd_get_clusters_info: one cluster's settings as an object, or (empty name) every
// cluster's as an array. NotFound for an unknown name.
absl::StatusOr<rpc::Json> GetRbdClustersInfo(std::string_view name);

// bdev_rbd_create's parameters.
struct RbdBdevOptions {
  std::string name;  // empty: the first free of "Ceph0", "Ceph1", ...
  std::string pool_name;
  std::string rbd_name;
  uint32_t block_size = 512;  // power of two, 512 to 65536
  // The bdev's own connection (without cluster_name): librados settings, or, when empty,
  // $CEPH_CONF / /etc/ceph/ceph.conf.
  std::string user_id;
  std::map<std::string, std::string> config;
  std::string cluster_name;  // a registered cluster instead of an own connection
  std::string uuid;          // empty: the layer generates one
};

// Opens the image off the reactor and registers a bdev over it; done(its name). Parameter
// errors (block size, unknown cluster, duplicate name, ...) come at once; the cluster's (no such
// pool, no such image, no answer) once it has answered or timed out. Nothing stays behind
// after an error.
void CreateRbdBdev(const RbdBdevOptions& options,
                   absl::AnyInvocable<void(absl::StatusOr<std::string>)> done);
// Unregisters rbd bdev `name`; its image is closed off the reactor once every descriptor has
// closed.
void DeleteRbdBdev(std::string_view name, absl::AnyInvocable<void(absl::Status)> done);
// Resizes the image of rbd bdev `name` to `new_size_mib` MiB (SPDK's unit); done once the
// cluster did it and the bdev took the new size (its descriptors get BdevEvent::kResize).
// Shrinking is refused (SPDK's bdev_rbd_resize refuses it too).
void ResizeRbdBdev(std::string_view name, uint64_t new_size_mib,
                   absl::AnyInvocable<void(absl::Status)> done);

}  // namespace pollux
