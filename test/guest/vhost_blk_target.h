// The vhost-user-blk server that a guest test boots against, behind one small interface: the
// same tests run against qemu-storage-daemon now (qsd_target.h) and against pollux-tgt once
// it serves vhost-user-blk, by adding a launcher and one INSTANTIATE_TEST_SUITE_P line.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace pollux::testing {

// What to export: the test creates `backing_file` (`size_bytes`, on tmpfs) before Start().
struct VhostBlkExportSpec {
  std::string socket;  // the vhost-user socket the server listens on; QEMU connects to it
  std::string backing_file;
  uint64_t size_bytes = 0;
  int num_queues = 1;
  bool read_only = false;  // the guest sees VIRTIO_BLK_F_RO
  std::string log_path;    // the server's own output, quoted in failure messages
};

// What a target offers, so that a test asserts what the guest must see instead of skipping.
struct VhostBlkTargetFeatures {
  bool packed_ring = false;  // offers VIRTIO_F_RING_PACKED when QEMU asks for packed=on
};

// A running server; destroying it stops it. Lives on the test's thread.
class VhostBlkTarget {
 public:
  virtual ~VhostBlkTarget() = default;
  // Whether it still runs (a target that died mid-test shows here).
  virtual bool running() = 0;
  // What the target says of its state (queues, pollers, reactors), taken while a guest that
  // did not finish is still connected: failure messages quote it. Empty if it cannot say.
  virtual std::string DescribeState() { return {}; }
};

// Starts servers of one kind. Stateless; one instance per kind, shared by the tests.
class VhostBlkTargetLauncher {
 public:
  virtual ~VhostBlkTargetLauncher() = default;
  // A name for test names and messages ("Qsd").
  virtual std::string name() const = 0;
  virtual VhostBlkTargetFeatures features() const = 0;
  // Starts a server for `spec` and returns once its socket accepts QEMU; otherwise why not.
  virtual absl::StatusOr<std::unique_ptr<VhostBlkTarget>> Start(
      const VhostBlkExportSpec& spec) const = 0;
};

}  // namespace pollux::testing
