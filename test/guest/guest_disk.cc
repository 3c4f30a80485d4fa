#include "guest_disk.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace pollux::testing {
namespace {

std::string ErrnoText(const std::string& what, const std::string& path) {
  return absl::StrCat(what, " \"", path, "\": ", std::strerror(errno));
}

std::string Tail(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  return text.size() > max_bytes ? "..." + text.substr(text.size() - max_bytes) : text;
}

}  // namespace

TmpfsDir::TmpfsDir() {
  char tmpl[] = "/dev/shm/pollux-guest-XXXXXX";
  if (mkdtemp(tmpl) != nullptr) path_ = tmpl;
}

TmpfsDir::~TmpfsDir() {
  if (path_.empty() || std::getenv("POLLUX_GUEST_KEEP") != nullptr) return;
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

GuestDisk::GuestDisk(const VhostBlkTargetLauncher& launcher, GuestDiskOptions options)
    : launcher_(launcher), options_(options) {
  spec_ = {.socket = dir_.File("vhost-blk.sock"),
           .backing_file = dir_.File("disk.img"),
           .size_bytes = options_.size_bytes,
           .num_queues = options_.num_queues,
           .read_only = options_.read_only,
           .log_path = dir_.File("target.log")};
}

GuestDisk::~GuestDisk() { StopTarget(); }

absl::Status GuestDisk::Create() {
  if (!dir_.ok()) return absl::InternalError(ErrnoText("mkdtemp", "/dev/shm/pollux-guest-*"));
  absl::StatusOr<GuestImage> image = GuestImage::Find();
  if (!image.ok()) return image.status();
  image_ = *image;
  const int fd = open(spec_.backing_file.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return absl::InternalError(ErrnoText("create", spec_.backing_file));
  const int rc = ftruncate(fd, static_cast<off_t>(options_.size_bytes));
  close(fd);
  if (rc != 0) return absl::InternalError(ErrnoText("ftruncate", spec_.backing_file));
  return absl::OkStatus();
}

absl::Status GuestDisk::StartTarget() {
  StopTarget();
  absl::StatusOr<std::unique_ptr<VhostBlkTarget>> target = launcher_.Start(spec_);
  if (!target.ok()) {
    return absl::Status(target.status().code(),
                        absl::StrCat(target.status().message(), "\n--- target log ---\n",
                                     Tail(spec_.log_path, 4000)));
  }
  target_ = std::move(*target);
  return absl::OkStatus();
}

void GuestDisk::StopTarget() { target_.reset(); }

absl::StatusOr<GuestRun> GuestDisk::Boot(const std::string& workload,
                                         const std::vector<GuestFile>& files, GuestVmOptions vm) {
  if (target_ == nullptr) return absl::FailedPreconditionError("Boot() before StartTarget()");
  const std::string work_dir = dir_.File(absl::StrCat("boot-", ++boots_));
  std::error_code error;
  std::filesystem::create_directory(work_dir, error);
  if (error) return absl::InternalError(absl::StrCat("mkdir ", work_dir, ": ", error.message()));
  vm.socket = spec_.socket;
  vm.num_queues = options_.num_queues;
  if (!vm.on_timeout) vm.on_timeout = [this] { return target_ ? target_->DescribeState() : ""; };
  return GuestVm(image_, vm, work_dir).Run(workload, files);
}

absl::StatusOr<std::string> GuestDisk::ReadBacking(uint64_t offset, size_t length) const {
  const int fd = open(spec_.backing_file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::InternalError(ErrnoText("open", spec_.backing_file));
  std::string data(length, '\0');
  const ssize_t n = pread(fd, data.data(), length, static_cast<off_t>(offset));
  close(fd);
  if (n != static_cast<ssize_t>(length)) {
    return absl::InternalError(absl::StrCat("pread ", length, " bytes at ", offset, " of \"",
                                            spec_.backing_file, "\" returned ", n));
  }
  return data;
}

absl::Status GuestDisk::WriteBacking(uint64_t offset, const std::string& data) const {
  const int fd = open(spec_.backing_file.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return absl::InternalError(ErrnoText("open", spec_.backing_file));
  const ssize_t n = pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
  close(fd);
  if (n != static_cast<ssize_t>(data.size())) {
    return absl::InternalError(absl::StrCat("pwrite ", data.size(), " bytes at ", offset, " of \"",
                                            spec_.backing_file, "\" returned ", n));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> GuestDisk::AllocatedBytes() const {
  struct stat st;
  if (stat(spec_.backing_file.c_str(), &st) != 0) {
    return absl::InternalError(ErrnoText("stat", spec_.backing_file));
  }
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

std::string GuestDisk::Explain(const GuestRun& run) const {
  std::string text = run.Describe();
  absl::StrAppend(&text, "--- target ", launcher_.name(),
                  target_ == nullptr   ? " (stopped)"
                  : target_->running() ? " (running)"
                                       : " (DIED)",
                  ", log ---\n", Tail(spec_.log_path, 2000));
  if (!run.at_timeout.empty()) {
    absl::StrAppend(&text, "\n--- target state when the guest timed out ---\n", run.at_timeout);
  }
  return text;
}

}  // namespace pollux::testing
