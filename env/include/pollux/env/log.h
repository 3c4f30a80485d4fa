// Process-wide logging: one line per call, written with a single write(2) so lines from
// different cores never interleave. Callable from any thread. Not for the per-I/O path: a line
// costs a clock read, a time zone conversion, a format and a system call.
//
// A line: the local date and time to the microsecond (as SPDK prints them), the component, the
// level, the message:
//   [2026-12-06 03:49:05.337858] bdev: warning: bdev_uring_create: open "/x": No such file
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"

namespace pollux {

enum class LogLevel : int { kError = 0, kWarning = 1, kNotice = 2, kInfo = 3, kDebug = 4 };

// The level at or below which messages are printed. Starts at kNotice.
LogLevel GetLogLevel();
void SetLogLevel(LogLevel level);

// "error", "warning", "notice", "info", "debug" (case-insensitive).
absl::StatusOr<LogLevel> ParseLogLevel(std::string_view name);
std::string_view LogLevelName(LogLevel level);

// Writes one line (see the top of this file) for the current time to stderr.
void LogLine(LogLevel level, std::string_view component, std::string_view message);

// The line LogLine writes at `now`, newline included: "[YYYY-MM-DD HH:MM:SS.uuuuuu] component:
// level: message\n", the date and time in the process's local time zone (TZ).
std::string FormatLogLine(std::chrono::system_clock::time_point now, LogLevel level,
                          std::string_view component, std::string_view message);

inline bool LogEnabled(LogLevel level) {
  return static_cast<int>(level) <= static_cast<int>(GetLogLevel());
}

}  // namespace pollux

// PX_LOG(kWarning, "bdev", "open %s: %s", path, strerror(errno));
#define PX_LOG(level, component, ...)                                             \
  do {                                                                            \
    if (::pollux::LogEnabled(::pollux::LogLevel::level)) {                        \
      ::pollux::LogLine(::pollux::LogLevel::level, component,                     \
                        ::absl::StrFormat(__VA_ARGS__));                          \
    }                                                                             \
  } while (0)
