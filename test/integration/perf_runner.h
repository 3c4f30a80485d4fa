// pollux-perf as a real process, for the integration tests that run it (perf_test.cc,
// perf_moves_test.cc, perf_sched_test.cc): a fixture that writes the config and runs the
// program to completion, the JSON report parsed, and a process to signal or query while it runs.
// The test target defines POLLUX_PERF_PATH.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "process.h"

namespace pollux::testing {

inline std::string PerfPath() { return POLLUX_PERF_PATH; }

class PerfProcessTest : public ::testing::Test {
 protected:
  // Runs pollux-perf with the config text given and `args`; killed after perf_timeout_.
  RunResult Perf(const std::string& config, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {PerfPath(), "-c", dir_.Write("config.json", config)};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProgram(argv, perf_timeout_);
  }
  // The whole of stdout must be one JSON document; an empty object (and a failure) otherwise.
  static nlohmann::json ParseJson(const RunResult& r) {
    try {
      return nlohmann::json::parse(r.out);
    } catch (const nlohmann::json::exception& e) {
      ADD_FAILURE() << "stdout is not one JSON document: " << e.what() << "\nstdout:\n"
                    << r.out << "\nstderr:\n"
                    << r.err;
      return nlohmann::json::object();
    }
  }

  TempDir dir_;
  std::chrono::seconds perf_timeout_{60};
};

// A process we can signal or query while it runs, its output in files.
class Process {
 public:
  explicit Process(const std::vector<std::string>& argv) {
    out_ = dir_.File("out");
    err_ = dir_.File("err");
    pid_ = Spawn(argv, out_, err_);
  }
  ~Process() {
    if (!exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // Waits up to `timeout` for the exit code (-1: killed or timed out).
  int Wait(std::chrono::seconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (running()) {
      if (std::chrono::steady_clock::now() >= deadline) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return exit_code_;
  }
  // Whether it still runs (once it has exited: reaped, its exit code kept for Wait).
  bool running() {
    if (exited_) return false;
    int status;
    if (waitpid(pid_, &status, WNOHANG) != pid_) return true;
    exited_ = true;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return false;
  }
  // Waits until stderr holds `text` or `timeout` passes; whether it does.
  bool WaitForErr(const std::string& text, std::chrono::seconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (Err().find(text) == std::string::npos) {
      if (std::chrono::steady_clock::now() >= deadline || !running()) {
        return Err().find(text) != std::string::npos;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
  }
  void Signal(int signo) { kill(pid_, signo); }
  pid_t pid() const { return pid_; }
  std::string Out() const { return ReadFile(out_); }
  std::string Err() const { return ReadFile(err_); }

 private:
  TempDir dir_;
  std::string out_, err_;
  pid_t pid_ = -1;
  bool exited_ = false;
  int exit_code_ = -1;
};

}  // namespace pollux::testing
