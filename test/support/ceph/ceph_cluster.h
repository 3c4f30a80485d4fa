// A one-node Ceph cluster for tests (shared/ceph-one-node.md's recipe): one mon and one
// memstore OSD on 127.0.0.1, auth none, all state in a temporary directory, the mon on a port
// found free. Started by Start(), stopped by the destructor: the OSD first, then the mon, each
// by its PID, SIGKILL after 5 s, then the directory is removed. Test code only.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "child_process.h"

namespace pollux::testing {

// What a command run against the cluster printed and how it ended.
struct CephCommandResult {
  int exit_code = -1;  // -1: killed (a signal, or its timeout)
  std::string output;  // stdout and stderr together
};

class CephCluster {
 public:
  // Why no cluster can run here ("ceph-mon is not installed: scripts/setup.sh installs it"),
  // or nothing when every program is installed. For GTEST_SKIP.
  static std::optional<std::string> MissingPrograms();

  CephCluster() = default;
  ~CephCluster();
  CephCluster(const CephCluster&) = delete;
  CephCluster& operator=(const CephCluster&) = delete;

  // Makes the cluster in a new directory and starts it: mon, OSD, the pool "rbd" initialised
  // (its placement groups active). False with error() set if any step failed (the daemons'
  // logs' last lines included).
  bool Start();
  // Stops the daemons, OSD first, keeping the data (memstore writes it out on SIGTERM) and the
  // ports: the cluster "goes away".
  void Stop();
  // Starts the daemons again on the same directory and ports and waits until the pool answers.
  bool Restart();

  // Runs `rbd ARGS` (or `ceph ARGS`) against this cluster, killed after `timeout`.
  CephCommandResult Rbd(std::vector<std::string> args,
                        std::chrono::seconds timeout = std::chrono::seconds(60));
  CephCommandResult Ceph(std::vector<std::string> args,
                         std::chrono::seconds timeout = std::chrono::seconds(60));
  // `rbd create --size SIZE_MIB rbd/NAME`; false with error() set on failure.
  bool CreateImage(const std::string& name, uint64_t size_mib);

  const std::string& error() const { return error_; }
  const std::string& dir() const { return dir_; }
  // Its ceph.conf (what $CEPH_CONF would name; bdev_rbd_register_cluster's config_file).
  std::string conf_path() const { return dir_ + "/ceph.conf"; }
  int mon_port() const { return port_; }
  // What a client needs, as librados settings (bdev_rbd_register_cluster's config_param).
  std::map<std::string, std::string> ClientConfig() const;

 private:
  CephCommandResult Run(const std::string& program, std::vector<std::string> args,
                        std::chrono::seconds timeout);
  // Runs a set-up step; on failure sets error_ with its output and returns false.
  bool Step(const std::string& what, const CephCommandResult& result);
  // Starts `program` -i `id` on this cluster's config, its output in log/`log`.out.
  bool StartDaemon(ChildProcess& daemon, const std::string& program, const std::string& id,
                   const std::string& log);
  bool WaitForPool();
  std::string DaemonLogs();

  std::string dir_;
  int port_ = 0;
  std::string fsid_;
  ChildProcess mon_;
  ChildProcess osd_;
  std::string error_;
  int commands_run_ = 0;
};

}  // namespace pollux::testing
