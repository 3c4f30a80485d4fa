#include "qsd_process.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace pollux::testing {

SocketServerProcess::SocketServerProcess(std::vector<std::string> argv, const std::string& socket,
                                         const std::string& log_path) {
  Start(std::move(argv), socket, log_path);
}

void SocketServerProcess::Start(std::vector<std::string> args, const std::string& socket,
                                const std::string& log_path) {
  unlink(socket.c_str());
  const std::string program = args[0];
  if (!process_.Start(std::move(args), log_path)) {
    error_ = process_.error();
    return;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  struct stat st;
  while (std::chrono::steady_clock::now() < deadline) {
    if (stat(socket.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
      ready_ = true;
      return;
    }
    if (!process_.running()) {
      error_ = program + " exited at start";
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  error_ = program + " did not create its socket within 20 s";
}

void SocketServerProcess::Kill() { process_.Kill(); }

SocketServerProcess::~SocketServerProcess() { process_.Stop(std::chrono::seconds(5)); }

std::string QsdProcess::Path() {
  for (const char* dir : {"/usr/bin", "/usr/local/bin"}) {
    std::string path = std::string(dir) + "/qemu-storage-daemon";
    if (access(path.c_str(), X_OK) == 0) return path;
  }
  return "";
}

QsdProcess::QsdProcess(const std::string& socket, const std::string& image, int num_queues,
                       uint64_t null_size)
    : QsdProcess(QsdExport{.socket = socket,
                           .image = image,
                           .num_queues = num_queues,
                           .null_size = null_size,
                           .writable = true,
                           .log_path = ""}) {}

QsdProcess::QsdProcess(const QsdExport& spec) {
  const std::string path = Path();
  if (path.empty()) {
    error_ = "qemu-storage-daemon is not installed (scripts/setup.sh installs qemu-system-common)";
    return;
  }
  std::string blockdev =
      spec.image.empty()
          ? "driver=null-co,node-name=disk0,size=" + std::to_string(spec.null_size)
          : "driver=file,node-name=disk0,filename=" + spec.image + ",aio=io_uring,discard=unmap";
  std::string exportdev =
      "type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,addr.path=" + spec.socket +
      ",writable=" + (spec.writable ? "on" : "off") +
      ",num-queues=" + std::to_string(spec.num_queues);
  Start({path, "--blockdev", blockdev, "--export", exportdev}, spec.socket, spec.log_path);
}

}  // namespace pollux::testing
