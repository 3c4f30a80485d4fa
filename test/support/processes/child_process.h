// A program that a test runs as a child process: started with fork/exec, its output in a log
// file, waited for with a deadline and killed by its PID (never by name). Test code only.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace pollux::testing {

class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess();  // SIGKILL if still running, then reaped
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Runs `argv` (argv[0] a path) with stdin from /dev/null and stdout and stderr appended to
  // `log_path` ("" keeps the test's own). False with error() set if fork failed.
  bool Start(std::vector<std::string> argv, const std::string& log_path = "");

  // Whether it has been started and has not exited (reaps it if it has).
  bool running();
  // Waits up to `timeout` for it to exit: its exit code, -1 after a signal; nullopt while it
  // still runs (or was never started).
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  // SIGTERM, then SIGKILL once `grace` has passed; returns what Wait() would.
  std::optional<int> Stop(std::chrono::milliseconds grace = std::chrono::seconds(5));
  // SIGKILL and reap.
  void Kill();

  pid_t pid() const { return pid_; }
  const std::string& error() const { return error_; }
  // The exit code once it exited (-1 after a signal); nullopt before.
  std::optional<int> exit_code() const { return exit_code_; }

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::string error_;
};

}  // namespace pollux::testing
