#include "pollux/env/log.h"

#include <unistd.h>

#include <array>
#include <chrono>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace pollux {
namespace {

// Relaxed is enough: a level change need only be seen eventually by other threads.
std::atomic<int> g_log_level{static_cast<int>(LogLevel::kNotice)};

constexpr std::array<std::string_view, 5> kLevelNames = {"error", "warning", "notice", "info",
                                                         "debug"};

}  // namespace

LogLevel GetLogLevel() { return static_cast<LogLevel>(g_log_level.load(std::memory_order_relaxed)); }

void SetLogLevel(LogLevel level) {
  g_log_level.store(static_cast<int>(level), std::memory_order_relaxed);
}

absl::StatusOr<LogLevel> ParseLogLevel(std::string_view name) {
  std::string lower = absl::AsciiStrToLower(absl::string_view(name.data(), name.size()));
  for (size_t i = 0; i < kLevelNames.size(); ++i) {
    if (lower == kLevelNames[i]) return static_cast<LogLevel>(i);
  }
  return absl::InvalidArgumentError(
      absl::StrFormat("unknown log level \"%s\" (expected error, warning, notice, info or debug)", name));
}

std::string_view LogLevelName(LogLevel level) { return kLevelNames[static_cast<int>(level)]; }

void LogLine(LogLevel level, std::string_view component, std::string_view message) {
  auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  std::string line = absl::StrFormat("[%d.%06d] %s: %s: %s\n", now / 1000000, now % 1000000,
                                     LogLevelName(level), component, message);
  // One write so that concurrent lines stay whole; a short write to stderr is not worth retrying.
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace pollux
