#include "qsd_process.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace pollux::testing {

SocketServerProcess::SocketServerProcess(std::vector<std::string> argv,
                                         const std::string& socket) {
  Start(std::move(argv), socket);
}

void SocketServerProcess::Start(std::vector<std::string> args, const std::string& socket) {
  unlink(socket.c_str());
  pid_ = fork();
  if (pid_ == 0) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  if (pid_ < 0) {
    error_ = "fork failed";
    return;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  struct stat st;
  while (std::chrono::steady_clock::now() < deadline) {
    if (stat(socket.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
      ready_ = true;
      return;
    }
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      error_ = args[0] + " exited at start";
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  error_ = args[0] + " did not create its socket within 20 s";
}

void SocketServerProcess::Kill() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    int status;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }
}

SocketServerProcess::~SocketServerProcess() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  int status;
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid_, &status, WNOHANG) == pid_) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  Kill();
}

std::string QsdProcess::Path() {
  for (const char* dir : {"/usr/bin", "/usr/local/bin"}) {
    std::string path = std::string(dir) + "/qemu-storage-daemon";
    if (access(path.c_str(), X_OK) == 0) return path;
  }
  return "";
}

QsdProcess::QsdProcess(const std::string& socket, const std::string& image, int num_queues,
                       uint64_t null_size) {
  const std::string path = Path();
  if (path.empty()) {
    error_ = "qemu-storage-daemon is not installed (scripts/setup.sh installs qemu-system-common)";
    return;
  }
  std::string blockdev =
      image.empty()
          ? "driver=null-co,node-name=disk0,size=" + std::to_string(null_size)
          : "driver=file,node-name=disk0,filename=" + image + ",aio=io_uring,discard=unmap";
  std::string exportdev =
      "type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,addr.path=" + socket +
      ",writable=on,num-queues=" + std::to_string(num_queues);
  Start({path, "--blockdev", blockdev, "--export", exportdev}, socket);
}

}  // namespace pollux::testing
