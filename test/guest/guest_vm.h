// A real Linux guest under QEMU (TCG, no KVM) whose only disk is a vhost-user-blk socket: it
// boots the image scripts/guest-image.sh builds, runs one workload script through the guest's
// own virtio-blk driver and powers off. Every boot is bounded by a timeout; QEMU is killed by
// its PID. Used from the test's thread; one guest at a time (the guest tests run serially).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace pollux::testing {

// The kernel and base initramfs that scripts/guest-image.sh builds.
struct GuestImage {
  std::string dir;
  std::string vmlinux;
  std::string initramfs;  // cpio newc; the workload's archive is appended to a copy

  // $POLLUX_GUEST_IMAGE if set, else the link the CTest fixture `guest_image` makes
  // (<build>/guest-image); an error naming the command that builds it if neither has one.
  static absl::StatusOr<GuestImage> Find();
};

// A file put into the guest's initramfs.
struct GuestFile {
  std::string path;  // absolute, in the guest
  std::string data;
  uint32_t mode = 0644;
};

// A cpio "newc" archive of `files` and the folders above them, as the kernel unpacks it.
std::string NewcArchive(const std::vector<GuestFile>& files);

// How QEMU is started. Every member has an initializer, so designated initializers may leave
// any out (g++ 12 warns about those without one).
struct GuestVmOptions {
  std::string socket{};  // the vhost-user-blk server's socket
  int num_queues = 1;    // the device's num-queues (QEMU exits if the server offers fewer)
  int vcpus = 1;
  bool packed_ring = false;  // the device's packed=on|off
  bool reconnect = false;    // the chardev reconnects (reconnect=1) after the server goes
  std::string extra_cmdline{};
  std::chrono::seconds timeout{80};  // boot, workload and power-off
  // Called at the timeout before QEMU is killed (the guest still connected); what it returns
  // is kept in GuestRun::at_timeout for the failure message.
  std::function<std::string()> on_timeout{};
};

// What one boot did.
struct GuestRun {
  bool finished = false;     // /init printed the end marker: the workload ran to its end
  int workload_status = -1;  // /workload.sh's exit status; -1 unless finished
  bool timed_out = false;    // QEMU was killed at the timeout
  std::optional<int> qemu_exit;
  std::string output;    // what the workload printed, between the markers
  std::string console;   // the whole serial console
  std::string qemu_log;  // QEMU's own stdout and stderr
  std::string at_timeout;  // what GuestVmOptions::on_timeout returned
  double seconds = 0;

  bool ok() const { return finished && workload_status == 0; }
  // For failure messages: how the boot ended, the last `lines` of the workload's output and of
  // the console (after the end marker: the kernel log if the workload failed), QEMU's output.
  std::string Describe(size_t lines = 30) const;
};

class GuestVm {
 public:
  // `work_dir`: where the initrd copy and the logs go (one set per boot, numbered).
  GuestVm(GuestImage image, GuestVmOptions options, std::string work_dir);

  // Boots with `workload` as /workload.sh and `files` beside it, waits for the guest to power
  // off (or kills QEMU at the timeout). An error only when QEMU could not be started.
  absl::StatusOr<GuestRun> Run(const std::string& workload,
                               const std::vector<GuestFile>& files = {});

  const GuestVmOptions& options() const { return options_; }

 private:
  std::vector<std::string> QemuArgs(const std::string& initrd, const std::string& console) const;

  GuestImage image_;
  GuestVmOptions options_;
  std::string work_dir_;
  int boots_ = 0;
};

}  // namespace pollux::testing
