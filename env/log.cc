#include "pollux/env/log.h"

#include <time.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
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

std::string FormatLogLine(std::chrono::system_clock::time_point now, LogLevel level,
                          std::string_view component, std::string_view message) {
  const int64_t us =
      std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
  // Floored, so that the fraction is never negative (a clock set before 1970).
  time_t seconds = static_cast<time_t>(us / 1000000);
  int64_t fraction = us % 1000000;
  if (fraction < 0) {
    fraction += 1000000;
    --seconds;
  }
  // Local time, as SPDK's log prints it; localtime_r, not localtime: any thread logs.
  char date[32];
  tm local{};
  if (localtime_r(&seconds, &local) == nullptr ||
      strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &local) == 0) {
    return absl::StrFormat("[%d.%06d] %s: %s: %s\n", static_cast<int64_t>(seconds), fraction,
                           component, LogLevelName(level), message);
  }
  return absl::StrFormat("[%s.%06d] %s: %s: %s\n", date, fraction, component, LogLevelName(level),
                         message);
}

void LogLine(LogLevel level, std::string_view component, std::string_view message) {
  const std::string line =
      FormatLogLine(std::chrono::system_clock::now(), level, component, message);
  // One write so that concurrent lines stay whole; a short write to stderr is not worth retrying.
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace pollux
