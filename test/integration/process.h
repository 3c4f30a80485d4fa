// Helpers for integration tests: run pollux programs as real processes.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace pollux::testing {

// A temporary directory, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }
  // Writes `text` to a file in the directory and returns its path.
  std::string Write(const std::string& name, const std::string& text) const;

 private:
  std::string path_;
};

struct RunResult {
  int exit_code = -1;  // -1 when killed by a signal or timed out
  std::string out;
  std::string err;
};

// Starts `argv` with stdin from /dev/null and stdout and stderr written to the files given;
// the caller waits for it.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& out_path,
            const std::string& err_path);
// A file's whole content ("" when it cannot be read).
std::string ReadFile(const std::string& path);

// How a run ended and what it printed, for a failure message.
std::string Describe(const RunResult& r);

// Runs a program to completion (killed after `timeout`), capturing stdout and stderr.
RunResult RunProgram(const std::vector<std::string>& argv,
                     std::chrono::seconds timeout = std::chrono::seconds(60));

// A pollux-tgt process with its own RPC socket.
class Target {
 public:
  // Starts pollux-tgt (or `program`, a target built on pollux::app that takes -r) with `args`
  // plus "-r <socket>" (unless args already name one), and waits until its RPC socket answers
  // or the process exits.
  explicit Target(std::vector<std::string> args, std::string socket = "", std::string program = "");
  ~Target();  // SIGKILL if still running
  Target(const Target&) = delete;
  Target& operator=(const Target&) = delete;

  bool running();
  const std::string& socket() const { return socket_; }
  pid_t pid() const { return pid_; }

  // Calls pollux-rpc against this target.
  RunResult Rpc(const std::vector<std::string>& args) const;

  // Sends `signo` and waits for the exit code (-1: signal death or timeout).
  int Signal(int signo, std::chrono::seconds timeout = std::chrono::seconds(30));
  // Waits for the process to exit by itself.
  int Wait(std::chrono::seconds timeout = std::chrono::seconds(30));
  // Everything the target wrote to stderr so far.
  std::string Stderr() const;

 private:
  TempDir dir_;
  std::string socket_;
  std::string stderr_path_;
  pid_t pid_ = -1;
  int exit_code_ = -1;
  bool exited_ = false;
};

std::string TgtPath();
std::string RpcPath();

}  // namespace pollux::testing
