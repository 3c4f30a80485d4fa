// The terminal while pollux-top runs: raw keys (no echo, no line buffering; Ctrl-C still sends
// SIGINT), the alternate screen, no cursor, no line wrap. Everything is put back when the
// session ends, however pollux-top ends: the destructor on a normal exit or an error, the
// signal watcher's clean exit on SIGINT/SIGTERM/SIGHUP, and a terminate handler on an uncaught
// exception.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace pollux::top {

class TerminalSession {
 public:
  // Takes over the terminal on `in_fd` (keys) and `out_fd` (the screen). Fails when either is
  // not a terminal. One session at a time.
  static absl::StatusOr<std::unique_ptr<TerminalSession>> Enter(int in_fd, int out_fd);

  ~TerminalSession();  // restores the terminal as it was
  TerminalSession(const TerminalSession&) = delete;
  TerminalSession& operator=(const TerminalSession&) = delete;

  struct Size {
    int width;
    int height;
  };
  // The terminal's size now (80x24 when it does not say).
  Size size() const;

  // Draws `lines` from the top left, replacing the previous frame; `header_lines` first lines
  // and the last line in reverse video. Each line must fit the width, and there must be as many
  // as the screen's height (RenderFrame's are and do).
  void Draw(const std::vector<std::string>& lines, int header_lines);

  int in_fd() const { return in_fd_; }

 private:
  // The terminal's saved state is the process's (restored from signal and terminate handlers
  // too), not the session's.
  TerminalSession(int in_fd, int out_fd);

  int in_fd_;
  int out_fd_;
};

// SIGINT, SIGTERM, SIGHUP and SIGWINCH turned into bytes on a pipe that the main loop polls, so
// that a signal ends pollux-top through its normal exit (the terminal restored by the session's
// destructor) instead of killing it mid-frame. Restores the previous handlers when destroyed.
class SignalWatcher {
 public:
  static absl::StatusOr<std::unique_ptr<SignalWatcher>> Install();
  ~SignalWatcher();
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

  // The fd to poll for POLLIN.
  int fd() const;
  // The signals received since the last call, in order.
  std::vector<int> Take();

 private:
  SignalWatcher() = default;
};

}  // namespace pollux::top
