#include "qsd_target.h"

#include "absl/status/status.h"
#include "qsd_process.h"

namespace pollux::testing {
namespace {

class QsdTarget : public VhostBlkTarget {
 public:
  // `image`: the file to export, or "" for null-co (drops writes) of the spec's size.
  QsdTarget(const VhostBlkExportSpec& spec, const std::string& image)
      : process_(QsdExport{.socket = spec.socket,
                           .image = image,
                           .num_queues = spec.num_queues,
                           .null_size = spec.size_bytes,
                           .writable = !spec.read_only,
                           .log_path = spec.log_path}) {}

  bool running() override { return process_.running(); }
  const QsdProcess& process() const { return process_; }

 private:
  QsdProcess process_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<VhostBlkTarget>> QsdLauncher::Start(
    const VhostBlkExportSpec& spec) const {
  if (!drop_writes_ && spec.backing_file.empty()) {
    return absl::InvalidArgumentError("qemu-storage-daemon target: no backing file");
  }
  auto target = std::make_unique<QsdTarget>(spec, drop_writes_ ? "" : spec.backing_file);
  if (!target->process().ready()) {
    return absl::UnavailableError("qemu-storage-daemon on " + spec.socket + ": " +
                                  target->process().error());
  }
  return target;
}

}  // namespace pollux::testing
