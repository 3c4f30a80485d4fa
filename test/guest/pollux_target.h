// pollux-tgt as the guest tests' vhost-user-blk target: the backing file through the io_uring
// bdev (a write cache, so the guest's flushes reach it), served by vhost_create_blk_controller
// on two reactors, packed rings offered, in interrupt mode (an idle target leaves both cores to
// the TCG guest).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "child_process.h"
#include "nlohmann/json.hpp"
#include "vhost_blk_target.h"

namespace pollux::testing {

struct PolluxTgtOptions {
  // A broken target for negative controls: an error bdev over the file that corrupts every
  // read (bdev_error_inject_error corrupt_data, always).
  bool corrupt_reads = false;
};

class PolluxTgtTarget : public VhostBlkTarget {
 public:
  // Starts pollux-tgt for `spec` and waits until its vhost socket accepts connections.
  static absl::StatusOr<std::unique_ptr<PolluxTgtTarget>> Start(const VhostBlkExportSpec& spec,
                                                                PolluxTgtOptions options = {});
  bool running() override { return process_.running(); }
  // Its reactors, threads' pollers, vhost controllers (queues, in flight, kicks) and the
  // bdev's counters, over RPC.
  std::string DescribeState() override;

  // Calls pollux-rpc on this target: the parsed result, or why not.
  absl::StatusOr<nlohmann::json> Rpc(const std::string& method,
                                     const nlohmann::json& params = nullptr);
  // kill -9, then a new process on the same config, socket and backing file (reconnection).
  void Kill() { process_.Kill(); }
  absl::Status Restart();

  // The served bdev's name ("Disk0", or "EE_Disk0" when corrupting).
  const std::string& bdev() const { return bdev_; }

 private:
  PolluxTgtTarget(VhostBlkExportSpec spec, std::string config_path, std::string bdev)
      : spec_(std::move(spec)), config_path_(std::move(config_path)), bdev_(std::move(bdev)) {}
  absl::Status Launch();

  VhostBlkExportSpec spec_;
  std::string config_path_;
  std::string bdev_;
  std::string rpc_socket_;
  ChildProcess process_;
};

class PolluxTgtLauncher : public VhostBlkTargetLauncher {
 public:
  explicit PolluxTgtLauncher(PolluxTgtOptions options = {}) : options_(options) {}
  std::string name() const override {
    return options_.corrupt_reads ? "PolluxTgtCorruptReads" : "PolluxTgt";
  }
  VhostBlkTargetFeatures features() const override { return {.packed_ring = true}; }
  absl::StatusOr<std::unique_ptr<VhostBlkTarget>> Start(
      const VhostBlkExportSpec& spec) const override;

 private:
  PolluxTgtOptions options_;
};

}  // namespace pollux::testing
