// qemu-storage-daemon as the guest tests' vhost-user-blk target: the file driver with
// aio=io_uring and discard=unmap (a guest's discard punches holes in the backing file).
#pragma once

#include "vhost_blk_target.h"

namespace pollux::testing {

class QsdLauncher : public VhostBlkTargetLauncher {
 public:
  // `drop_writes`: a broken target for negative controls instead (the null-co driver drops
  // every write and reads garbage; the backing file is ignored).
  explicit QsdLauncher(bool drop_writes = false) : drop_writes_(drop_writes) {}

  std::string name() const override { return drop_writes_ ? "QsdDropWrites" : "Qsd"; }
  // QEMU 7.2's libvhost-user has no packed rings: the guest falls back to split rings.
  VhostBlkTargetFeatures features() const override { return {.packed_ring = false}; }
  absl::StatusOr<std::unique_ptr<VhostBlkTarget>> Start(
      const VhostBlkExportSpec& spec) const override;

 private:
  bool drop_writes_;
};

}  // namespace pollux::testing
