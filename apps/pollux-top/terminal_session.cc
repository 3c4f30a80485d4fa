#include "terminal_session.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <exception>
#include <string_view>

#include "absl/strings/str_cat.h"

namespace pollux::top {

namespace {

// Alternate screen on, cursor hidden, line wrap off; and the reverse.
constexpr std::string_view kEnterScreen = "\x1b[?1049h\x1b[?25l\x1b[?7l\x1b[H\x1b[2J";
constexpr std::string_view kLeaveScreen = "\x1b[?7h\x1b[?25h\x1b[?1049l";

void WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the terminal is gone: nothing to restore on it
    data.remove_prefix(static_cast<size_t>(n));
  }
}

// The session's state for the terminate handler, which may run without any destructor.
struct ActiveSession {
  std::atomic<bool> active{false};
  int in_fd = -1;
  int out_fd = -1;
  termios saved{};
};
ActiveSession g_session;
std::terminate_handler g_previous_terminate = nullptr;

void RestoreTerminal() {
  if (!g_session.active.exchange(false)) return;
  WriteAll(g_session.out_fd, kLeaveScreen);
  ::tcsetattr(g_session.in_fd, TCSAFLUSH, &g_session.saved);
}

[[noreturn]] void RestoreThenTerminate() {
  RestoreTerminal();
  if (g_previous_terminate != nullptr) g_previous_terminate();
  std::abort();
}

}  // namespace

absl::StatusOr<std::unique_ptr<TerminalSession>> TerminalSession::Enter(int in_fd, int out_fd) {
  if (!::isatty(in_fd) || !::isatty(out_fd)) {
    return absl::FailedPreconditionError(
        "stdin and stdout must be a terminal (for a snapshot without one: --once)");
  }
  if (g_session.active.load()) return absl::FailedPreconditionError("a session is active");
  termios saved{};
  if (::tcgetattr(in_fd, &saved) != 0) {
    return absl::InternalError(absl::StrCat("tcgetattr: ", std::strerror(errno)));
  }
  termios raw = saved;
  // Keys one by one, unechoed; ISIG stays so that Ctrl-C is SIGINT (a clean exit).
  raw.c_lflag &= static_cast<tcflag_t>(~(ICANON | ECHO | IEXTEN));
  raw.c_iflag &= static_cast<tcflag_t>(~(IXON | ICRNL));
  raw.c_cc[VMIN] = 0;
  raw.c_cc[VTIME] = 0;
  if (::tcsetattr(in_fd, TCSAFLUSH, &raw) != 0) {
    return absl::InternalError(absl::StrCat("tcsetattr: ", std::strerror(errno)));
  }
  g_session.in_fd = in_fd;
  g_session.out_fd = out_fd;
  g_session.saved = saved;
  g_session.active.store(true);
  g_previous_terminate = std::set_terminate(RestoreThenTerminate);
  WriteAll(out_fd, kEnterScreen);
  return std::unique_ptr<TerminalSession>(new TerminalSession(in_fd, out_fd));
}

TerminalSession::TerminalSession(int in_fd, int out_fd) : in_fd_(in_fd), out_fd_(out_fd) {}

TerminalSession::~TerminalSession() {
  RestoreTerminal();
  std::set_terminate(g_previous_terminate);
}

TerminalSession::Size TerminalSession::size() const {
  winsize ws{};
  if (::ioctl(out_fd_, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) {
    return {ws.ws_col, ws.ws_row};
  }
  return {80, 24};
}

void TerminalSession::Draw(const std::vector<std::string>& lines, int header_lines) {
  // One write per frame, each line erased then written: no flicker. Erasing after writing
  // would take the last column of a full-width line with it (the cursor stays on it).
  std::string frame = "\x1b[H";
  for (size_t i = 0; i < lines.size(); ++i) {
    const bool reverse = static_cast<int>(i) < header_lines || i + 1 == lines.size();
    if (i != 0) frame += "\r\n";
    frame += "\x1b[2K";
    if (reverse) frame += "\x1b[7m";
    frame += lines[i];
    if (reverse) frame += "\x1b[27m";
  }
  // No "erase below" after the last line: the cursor stays on its last column, which that would
  // erase too; and a frame is the screen's height (RenderFrame), so nothing is left below.
  WriteAll(out_fd_, frame);
}

namespace {

int g_signal_pipe[2] = {-1, -1};
constexpr int kWatchedSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGWINCH};
struct sigaction g_previous_actions[std::size(kWatchedSignals)];

void OnSignal(int signo) {
  const int saved_errno = errno;
  const unsigned char byte = static_cast<unsigned char>(signo);
  // The pipe is non-blocking: when full, the loop has signals to read anyway.
  [[maybe_unused]] ssize_t n = ::write(g_signal_pipe[1], &byte, 1);
  errno = saved_errno;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SignalWatcher>> SignalWatcher::Install() {
  if (g_signal_pipe[0] >= 0) return absl::FailedPreconditionError("signals are already watched");
  if (::pipe2(g_signal_pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe2: ", std::strerror(errno)));
  }
  for (size_t i = 0; i < std::size(kWatchedSignals); ++i) {
    struct sigaction action {};
    action.sa_handler = OnSignal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    ::sigaction(kWatchedSignals[i], &action, &g_previous_actions[i]);
  }
  return std::unique_ptr<SignalWatcher>(new SignalWatcher());
}

SignalWatcher::~SignalWatcher() {
  for (size_t i = 0; i < std::size(kWatchedSignals); ++i) {
    ::sigaction(kWatchedSignals[i], &g_previous_actions[i], nullptr);
  }
  ::close(g_signal_pipe[0]);
  ::close(g_signal_pipe[1]);
  g_signal_pipe[0] = g_signal_pipe[1] = -1;
}

int SignalWatcher::fd() const { return g_signal_pipe[0]; }

std::vector<int> SignalWatcher::Take() {
  std::vector<int> signals;
  unsigned char buffer[64];
  for (;;) {
    ssize_t n = ::read(g_signal_pipe[0], buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    signals.insert(signals.end(), buffer, buffer + n);
  }
  return signals;
}

}  // namespace pollux::top
