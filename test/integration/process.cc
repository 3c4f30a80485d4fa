#include "process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace pollux::testing {
namespace {

using Clock = std::chrono::steady_clock;

// Waits for `pid`; returns true with the exit code (-1 for a signal) if it exited in time.
bool WaitPid(pid_t pid, std::chrono::milliseconds timeout, int* exit_code) {
  auto deadline = Clock::now() + timeout;
  while (true) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      return true;
    }
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

bool SocketAnswers(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

}  // namespace

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

pid_t Spawn(const std::vector<std::string>& argv, const std::string& out_path,
            const std::string& err_path) {
  pid_t pid = fork();
  if (pid == 0) {
    int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int in = open("/dev/null", O_RDONLY);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/pollux-test-XXXXXX";
  char* dir = mkdtemp(tmpl);
  path_ = dir != nullptr ? dir : "/tmp";
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::string TempDir::Write(const std::string& name, const std::string& text) const {
  std::string path = File(name);
  std::ofstream(path) << text;
  return path;
}

RunResult RunProgram(const std::vector<std::string>& argv, std::chrono::seconds timeout) {
  TempDir dir;
  std::string out = dir.File("out"), err = dir.File("err");
  pid_t pid = Spawn(argv, out, err);
  RunResult result;
  if (!WaitPid(pid, timeout, &result.exit_code)) {
    kill(pid, SIGKILL);
    int ignored;
    WaitPid(pid, std::chrono::seconds(10), &ignored);
    result.exit_code = -1;
  }
  result.out = ReadFile(out);
  result.err = ReadFile(err);
  return result;
}

std::string TgtPath() { return POLLUX_TGT_PATH; }
std::string RpcPath() { return POLLUX_RPC_PATH; }

Target::Target(std::vector<std::string> args, std::string socket, std::string program) {
  socket_ = socket.empty() ? dir_.File("rpc.sock") : socket;
  stderr_path_ = dir_.File("stderr");
  std::vector<std::string> argv = {program.empty() ? TgtPath() : program};
  bool has_socket = false;
  for (const std::string& a : args) has_socket |= a == "-r" || a == "--rpc-socket";
  argv.insert(argv.end(), args.begin(), args.end());
  if (!has_socket) {
    argv.push_back("-r");
    argv.push_back(socket_);
  }
  pid_ = Spawn(argv, dir_.File("stdout"), stderr_path_);
  auto deadline = Clock::now() + std::chrono::seconds(60);
  while (Clock::now() < deadline) {
    if (!running()) return;
    // The socket exists before the config has been replayed; pollux-tgt logs "started" after.
    if (SocketAnswers(socket_) && Stderr().find("started") != std::string::npos) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

Target::~Target() {
  if (!exited_ && pid_ > 0) {
    kill(pid_, SIGKILL);
    int ignored;
    WaitPid(pid_, std::chrono::seconds(10), &ignored);
  }
}

bool Target::running() {
  if (exited_) return false;
  int code;
  if (WaitPid(pid_, std::chrono::milliseconds(0), &code)) {
    exited_ = true;
    exit_code_ = code;
    return false;
  }
  return true;
}

RunResult Target::Rpc(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {RpcPath(), "-s", socket_};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProgram(argv);
}

int Target::Signal(int signo, std::chrono::seconds timeout) {
  if (running()) kill(pid_, signo);
  return Wait(timeout);
}

int Target::Wait(std::chrono::seconds timeout) {
  if (exited_) return exit_code_;
  int code;
  if (!WaitPid(pid_, timeout, &code)) return -1;
  exited_ = true;
  exit_code_ = code;
  return code;
}

std::string Target::Stderr() const { return ReadFile(stderr_path_); }

std::string Describe(const RunResult& r) {
  return (r.exit_code == -1 ? std::string("killed (signal or time-out)")
                            : "exit code " + std::to_string(r.exit_code)) +
         "\n--- stdout:\n" + r.out + "\n--- stderr:\n" + r.err;
}

}  // namespace pollux::testing
