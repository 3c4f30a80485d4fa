// One disk for guest tests: a backing file on tmpfs, a vhost-user-blk target exporting it,
// and guests booted against it one after another. The host side reads and changes the
// backing file between boots. Lives on the test's thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "guest_vm.h"
#include "vhost_blk_target.h"

namespace pollux::testing {

// A folder on tmpfs (/dev/shm), removed with what it holds.
class TmpfsDir {
 public:
  TmpfsDir();
  ~TmpfsDir();
  TmpfsDir(const TmpfsDir&) = delete;
  TmpfsDir& operator=(const TmpfsDir&) = delete;

  bool ok() const { return !path_.empty(); }
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct GuestDiskOptions {
  uint64_t size_bytes = 64ull << 20;
  int num_queues = 1;
  bool read_only = false;
};

class GuestDisk {
 public:
  GuestDisk(const VhostBlkTargetLauncher& launcher, GuestDiskOptions options);
  ~GuestDisk();  // stops the target first
  GuestDisk(const GuestDisk&) = delete;
  GuestDisk& operator=(const GuestDisk&) = delete;

  // Creates the backing file (sparse, zero-filled) and finds the guest image.
  absl::Status Create();
  // Starts the target on the backing file (Create() first; write the file before, if needed);
  // a target already running is stopped first.
  absl::Status StartTarget();
  void StopTarget();

  // Boots a guest against the target with `workload` as /workload.sh; `vm`'s socket and
  // num_queues are this disk's.
  absl::StatusOr<GuestRun> Boot(const std::string& workload,
                                const std::vector<GuestFile>& files = {}, GuestVmOptions vm = {});

  // The backing file, on the host: read, overwritten, its allocation (st_blocks * 512).
  absl::StatusOr<std::string> ReadBacking(uint64_t offset, size_t length) const;
  absl::Status WriteBacking(uint64_t offset, const std::string& data) const;
  absl::StatusOr<uint64_t> AllocatedBytes() const;

  // A failure message: `run` described, then the target's state and the end of its log.
  std::string Explain(const GuestRun& run) const;

  const VhostBlkTargetLauncher& launcher() const { return launcher_; }
  // The running target (nullptr when stopped), for tests that know its kind.
  VhostBlkTarget* target() const { return target_.get(); }
  const GuestDiskOptions& options() const { return options_; }
  const std::string& backing_file() const { return spec_.backing_file; }

 private:
  const VhostBlkTargetLauncher& launcher_;
  GuestDiskOptions options_;
  TmpfsDir dir_;
  VhostBlkExportSpec spec_;
  std::unique_ptr<VhostBlkTarget> target_;
  GuestImage image_;
  int boots_ = 0;
};

}  // namespace pollux::testing
