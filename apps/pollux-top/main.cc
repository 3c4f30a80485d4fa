// pollux-top: a live terminal monitor of a running pollux-tgt over its RPC socket, in the
// spirit of SPDK's spdk_top. See TopUsage() for the options, keys and exit status.
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "command_line.h"
#include "key_decoder.h"
#include "pollux/env/version.h"
#include "screen_layout.h"
#include "target_sampler.h"
#include "terminal_session.h"

namespace pollux::top {
namespace {

constexpr const char* kDefaultSocket = "/var/tmp/pollux.sock";
// How long one RPC call may take before the target counts as not answering.
constexpr std::chrono::milliseconds kCallTimeout{2000};

enum ExitCode : int {
  kExitOk = 0,
  kExitRpcError = 1,
  kExitUnreachable = 2,
  kExitUsage = 64,
  kExitSignalBase = 128,  // + the signal's number
};

int Fail(int code, std::string_view message) {
  std::cerr << "pollux-top: " << message << "\n";
  return code;
}

// The line that says why the target cannot be read.
std::string ProblemOf(const absl::Status& status, const std::string& socket) {
  if (absl::IsDeadlineExceeded(status)) {
    return absl::StrCat("target ", socket, " does not answer: ", status.message());
  }
  if (absl::IsUnavailable(status) || absl::IsDataLoss(status)) {
    return absl::StrCat("target ", socket, " is gone: ", status.message());
  }
  return absl::StrCat("target ", socket, ": ", status.message());
}

std::chrono::steady_clock::duration Seconds(double seconds) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(seconds));
}

// --once: two samples `delay` apart, the view's table on stdout.
int RunOnce(const TopOptions& options) {
  TargetSampler sampler(options.socket, kCallTimeout);
  for (int sample = 0; sample < 2; ++sample) {
    if (sample != 0) std::this_thread::sleep_for(Seconds(options.delay_s));
    if (absl::Status status = sampler.Sample(options.view); !status.ok()) {
      const bool unreachable = absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status) ||
                               absl::IsDataLoss(status);
      return Fail(unreachable ? kExitUnreachable : kExitRpcError,
                  ProblemOf(status, options.socket));
    }
  }
  Table table = BuildView(options.view, sampler.SamplesOf(options.view));
  SortTable(table, DefaultSort(options.view));
  int width = 80;
  if (const char* columns = std::getenv("COLUMNS"); columns != nullptr) {
    int parsed = 0;
    if (absl::SimpleAtoi(columns, &parsed) && parsed >= 20 && parsed <= 1000) width = parsed;
  }
  for (const std::string& line : RenderTable(table, width)) std::cout << line << "\n";
  return kExitOk;
}

// What a key does to the frame. Returns true when it asks to quit.
bool Apply(const Key& key, FrameInfo& info, int column_count, int page_rows,
           std::chrono::steady_clock::time_point& next_sample) {
  auto show = [&](int view) {
    const auto kind = static_cast<ViewKind>((view % kViewCount + kViewCount) % kViewCount);
    if (kind == info.view) return;
    info.view = kind;
    info.sort = DefaultSort(kind);
    info.scroll = 0;
    next_sample = std::chrono::steady_clock::now();  // its figures now, not in a second
  };
  const int columns = std::max(1, column_count);
  switch (key.action) {
    case KeyAction::kQuit:
      return true;
    case KeyAction::kShowView:
      show(key.view);
      break;
    case KeyAction::kNextView:
      show(static_cast<int>(info.view) + 1);
      break;
    case KeyAction::kPreviousView:
      show(static_cast<int>(info.view) - 1);
      break;
    case KeyAction::kNextSortColumn:
      info.sort = {(info.sort.column + 1) % columns, false};
      break;
    case KeyAction::kPreviousSortColumn:
      info.sort = {(info.sort.column + columns - 1) % columns, false};
      break;
    case KeyAction::kReverseSort:
      info.sort.reversed = !info.sort.reversed;
      break;
    case KeyAction::kScrollUp:
      --info.scroll;
      break;
    case KeyAction::kScrollDown:
      ++info.scroll;
      break;
    case KeyAction::kPageUp:
      info.scroll -= page_rows;
      break;
    case KeyAction::kPageDown:
      info.scroll += page_rows;
      break;
    case KeyAction::kScrollHome:
      info.scroll = 0;
      break;
    case KeyAction::kScrollEnd:
      info.scroll = 1 << 30;  // RenderFrame clamps it to the last page
      break;
  }
  return false;
}

int RunInteractive(const TopOptions& options) {
  absl::StatusOr<std::unique_ptr<SignalWatcher>> signals = SignalWatcher::Install();
  if (!signals.ok()) return Fail(kExitRpcError, std::string(signals.status().message()));
  absl::StatusOr<std::unique_ptr<TerminalSession>> terminal =
      TerminalSession::Enter(STDIN_FILENO, STDOUT_FILENO);
  if (!terminal.ok()) return Fail(kExitUsage, std::string(terminal.status().message()));

  TargetSampler sampler(options.socket, kCallTimeout);
  FrameInfo info;
  info.view = options.view;
  info.sort = DefaultSort(options.view);
  info.socket = options.socket;
  info.delay_s = options.delay_s;
  KeyDecoder decoder;
  auto next_sample = std::chrono::steady_clock::now();
  for (;;) {
    if (std::chrono::steady_clock::now() >= next_sample) {
      absl::Status status = sampler.Sample(info.view);
      info.problem = status.ok() ? "" : ProblemOf(status, options.socket);
      next_sample = std::chrono::steady_clock::now() + Seconds(options.delay_s);
    }
    Table table = BuildView(info.view, sampler.SamplesOf(info.view));
    SortTable(table, info.sort);
    const TerminalSession::Size size = (*terminal)->size();
    (*terminal)->Draw(RenderFrame(table, info, size.width, size.height), 3);

    pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {(*signals)->fd(), POLLIN, 0}};
    const auto wait = std::chrono::ceil<std::chrono::milliseconds>(
        next_sample - std::chrono::steady_clock::now());
    const int rc = ::poll(fds, 2, static_cast<int>(std::max<int64_t>(0, wait.count())));
    if (rc < 0 && errno != EINTR) {
      return Fail(kExitRpcError, absl::StrCat("poll: ", std::strerror(errno)));
    }
    if (fds[1].revents & POLLIN) {
      for (int signo : (*signals)->Take()) {
        if (signo != SIGWINCH) return kExitSignalBase + signo;  // the session restores
      }
    }
    if (fds[0].revents & (POLLHUP | POLLERR)) return kExitOk;  // the terminal went away
    if (fds[0].revents & POLLIN) {
      char bytes[64];
      const ssize_t n = ::read(STDIN_FILENO, bytes, sizeof(bytes));
      if (n > 0) {
        for (const Key& key : decoder.Feed(std::string_view(bytes, static_cast<size_t>(n)))) {
          if (Apply(key, info, static_cast<int>(table.columns.size()),
                    std::max(1, TableRowsFor(size.height)), next_sample)) {
            return kExitOk;
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace pollux::top

int main(int argc, char** argv) {
  using namespace pollux::top;
  const char* env_socket = std::getenv("POLLUX_RPC_SOCKET");
  const std::string default_socket = env_socket && *env_socket ? env_socket : kDefaultSocket;
  absl::StatusOr<TopOptions> options = ParseTopCommandLine(argc, argv, default_socket);
  if (!options.ok()) {
    return Fail(kExitUsage, std::string(options.status().message()) + " (see pollux-top --help)");
  }
  if (options->help) {
    std::cout << TopUsage("pollux-top", default_socket);
    return kExitOk;
  }
  if (options->version) {
    std::cout << "pollux-top " << POLLUX_VERSION << "\n";
    return kExitOk;
  }
  return options->once ? RunOnce(*options) : RunInteractive(*options);
}
