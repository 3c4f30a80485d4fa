#include "guest_vm.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "child_process.h"

namespace pollux::testing {
namespace {

constexpr char kQemu[] = "/usr/bin/qemu-system-x86_64";
// Printed by the image's /init around what the workload wrote (scripts/guest-image.sh).
constexpr char kBeginMarker[] = "@@POLLUX-RESULT-BEGIN@@\n";
constexpr char kEndMarker[] = "@@POLLUX-RESULT-END status=";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The serial console ends lines with "\r\n".
std::string WithoutCarriageReturns(std::string text) {
  std::erase(text, '\r');
  return text;
}

void AppendNewcEntry(std::string* out, uint32_t ino, uint32_t mode, uint32_t nlink,
                     const std::string& name, const std::string& data) {
  absl::StrAppendFormat(out, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", ino,
                        mode, 0, 0, nlink, 0, data.size(), 0, 0, 0, 0, name.size() + 1, 0);
  *out += name;
  *out += '\0';
  out->resize((out->size() + 3) & ~size_t{3}, '\0');
  *out += data;
  out->resize((out->size() + 3) & ~size_t{3}, '\0');
}

// "--- NAME, last N lines ---" and the last `count` lines of `text`.
std::string LastLines(const std::string& name, const std::string& text, size_t count) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  const size_t first = lines.size() > count ? lines.size() - count : 0;
  std::string out = absl::StrCat("--- ", name, ", last ", lines.size() - first, " lines ---\n");
  for (size_t i = first; i < lines.size(); ++i) absl::StrAppend(&out, lines[i], "\n");
  return out;
}

}  // namespace

absl::StatusOr<GuestImage> GuestImage::Find() {
  const char* env = std::getenv("POLLUX_GUEST_IMAGE");
  GuestImage image;
  image.dir = env != nullptr && *env != '\0' ? env : POLLUX_GUEST_IMAGE_LINK;
  image.vmlinux = image.dir + "/vmlinux";
  image.initramfs = image.dir + "/initramfs.cpio";
  for (const std::string& file : {image.vmlinux, image.initramfs, image.dir + "/image.env"}) {
    if (access(file.c_str(), R_OK) != 0) {
      return absl::NotFoundError(absl::StrCat(
          "no guest image: ", file, " is missing; build it with `", POLLUX_GUEST_IMAGE_SCRIPT,
          " --link ", POLLUX_GUEST_IMAGE_LINK,
          "` (ctest runs that as the fixture test guest_image), or set POLLUX_GUEST_IMAGE"));
    }
  }
  return image;
}

std::string NewcArchive(const std::vector<GuestFile>& files) {
  std::string out;
  uint32_t ino = 1;
  std::set<std::string> dirs;
  for (const GuestFile& file : files) {
    std::filesystem::path parent = std::filesystem::path(file.path).relative_path().parent_path();
    std::vector<std::string> chain;
    for (; !parent.empty(); parent = parent.parent_path()) chain.push_back(parent.string());
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
      if (dirs.insert(*it).second) AppendNewcEntry(&out, ino++, 040755, 2, *it, "");
    }
  }
  for (const GuestFile& file : files) {
    AppendNewcEntry(&out, ino++, 0100000 | file.mode, 1,
                    std::filesystem::path(file.path).relative_path().string(), file.data);
  }
  AppendNewcEntry(&out, 0, 0, 1, "TRAILER!!!", "");
  return out;
}

std::string GuestRun::Describe(size_t lines) const {
  std::string text;
  if (finished) {
    text = absl::StrCat("the workload exited with status ", workload_status);
  } else if (timed_out) {
    text = "the guest did not finish in time: QEMU was killed";
  } else if (qemu_exit) {
    text = absl::StrCat("QEMU exited with code ", *qemu_exit, " before the workload finished");
  } else {
    text = "the guest did not finish";
  }
  absl::StrAppendFormat(&text, " (%.1f s)\n", seconds);
  if (finished) absl::StrAppend(&text, LastLines("workload output", output, lines));
  absl::StrAppend(&text, LastLines("serial console", console, lines));
  if (!qemu_log.empty()) absl::StrAppend(&text, "--- QEMU ---\n", qemu_log);
  return text;
}

GuestVm::GuestVm(GuestImage image, GuestVmOptions options, std::string work_dir)
    : image_(std::move(image)), options_(std::move(options)), work_dir_(std::move(work_dir)) {}

std::vector<std::string> GuestVm::QemuArgs(const std::string& initrd,
                                           const std::string& console) const {
  std::string cmdline = "console=ttyS0 panic=-1 quiet";
  if (!options_.extra_cmdline.empty()) absl::StrAppend(&cmdline, " ", options_.extra_cmdline);
  // Guest memory the server can map (memfd, shared); see /work/shared/guest.md.
  // One option and its value a line.
  // clang-format off
  return {kQemu,
          "-accel", "tcg,thread=multi",
          "-cpu", "max",
          "-smp", std::to_string(options_.vcpus),
          "-m", "1G",
          "-object", "memory-backend-memfd,id=mem,size=1G,share=on",
          "-machine", "q35,memory-backend=mem",
          "-nodefaults", "-display", "none", "-monitor", "none",
          "-serial", "file:" + console,
          "-no-reboot",
          "-kernel", image_.vmlinux,
          "-initrd", initrd,
          "-append", cmdline,
          "-chardev", absl::StrCat("socket,id=vub0,path=", options_.socket,
                                   options_.reconnect ? ",reconnect=1" : ""),
          "-device", absl::StrCat("vhost-user-blk-pci,chardev=vub0,num-queues=",
                                  options_.num_queues, ",packed=",
                                  options_.packed_ring ? "on" : "off")};
  // clang-format on
}

absl::StatusOr<GuestRun> GuestVm::Run(const std::string& workload,
                                      const std::vector<GuestFile>& files) {
  if (access(kQemu, X_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(kQemu, " is missing (scripts/setup.sh installs qemu-system-x86)"));
  }
  const int boot = ++boots_;
  const std::string initrd = absl::StrCat(work_dir_, "/initrd");
  const std::string console = absl::StrCat(work_dir_, "/console.", boot, ".log");
  const std::string qemu_log = absl::StrCat(work_dir_, "/qemu.", boot, ".log");

  // The kernel unpacks concatenated archives in order: the workload's lands on the base.
  std::error_code error;
  std::filesystem::copy_file(image_.initramfs, initrd,
                             std::filesystem::copy_options::overwrite_existing, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("copy ", image_.initramfs, " to ", initrd, ": ", error.message()));
  }
  std::vector<GuestFile> all = files;
  all.push_back({.path = "/workload.sh", .data = workload, .mode = 0755});
  const std::string archive = NewcArchive(all);
  std::ofstream out(initrd, std::ios::binary | std::ios::app);
  out.write(archive.data(), static_cast<std::streamsize>(archive.size()));
  out.close();
  if (!out) return absl::InternalError("append the workload's archive to " + initrd);

  const auto start = std::chrono::steady_clock::now();
  ChildProcess qemu;
  if (!qemu.Start(QemuArgs(initrd, console), qemu_log)) return absl::InternalError(qemu.error());
  GuestRun run;
  run.qemu_exit = qemu.Wait(options_.timeout);
  if (!run.qemu_exit) {
    run.timed_out = true;
    if (options_.on_timeout) run.at_timeout = options_.on_timeout();
    qemu.Kill();
  }
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  run.console = WithoutCarriageReturns(ReadFile(console));
  run.qemu_log = ReadFile(qemu_log);
  std::filesystem::remove(initrd, error);  // 90 MB of tmpfs, made again for every boot

  const size_t begin = run.console.find(kBeginMarker);
  const size_t end = begin == std::string::npos ? begin : run.console.find(kEndMarker, begin);
  if (end != std::string::npos) {
    const size_t body = begin + sizeof(kBeginMarker) - 1;
    run.output = run.console.substr(body, end - body);
    run.finished = std::sscanf(run.console.c_str() + end + sizeof(kEndMarker) - 1, "%d",
                               &run.workload_status) == 1;
  }
  if (!run.finished) run.workload_status = -1;
  return run;
}

}  // namespace pollux::testing
