#include "dpdk_log.h"

#include <rte_log.h>
#include <sys/types.h>

#include <string>

#include "absl/strings/ascii.h"

namespace pollux {
namespace {

// The start of a line DPDK has not finished (a caller that builds one in several rte_log
// calls), with the level of its first piece.
struct PartialLine {
  std::string text;
  uint32_t dpdk_level = RTE_LOG_INFO;
};
thread_local PartialLine t_partial;

void LogDpdkLine(std::string_view line, uint32_t dpdk_level) {
  const absl::string_view trimmed =
      absl::StripTrailingAsciiWhitespace(absl::string_view(line.data(), line.size()));
  if (trimmed.empty()) return;
  const LogLevel level = LogLevelOfDpdk(dpdk_level);
  if (LogEnabled(level)) LogLine(level, "dpdk", std::string_view(trimmed.data(), trimmed.size()));
}

// fopencookie's write: DPDK writes a message with one vfprintf and flushes, so `buf` is usually
// one whole message (longer ones come in buffer-sized pieces).
ssize_t WriteToLog(void* /*cookie*/, const char* buf, size_t size) {
  // The level of the message being written: rte_vlog sets it per thread before it writes.
  ForwardDpdkLogText(std::string_view(buf, size),
                     static_cast<uint32_t>(rte_log_cur_msg_loglevel()));
  return static_cast<ssize_t>(size);
}

}  // namespace

LogLevel LogLevelOfDpdk(uint32_t dpdk_level) {
  if (dpdk_level <= RTE_LOG_ERR) return LogLevel::kError;
  switch (dpdk_level) {
    case RTE_LOG_WARNING:
      return LogLevel::kWarning;
    case RTE_LOG_NOTICE:
      return LogLevel::kNotice;
    case RTE_LOG_INFO:
      return LogLevel::kInfo;
    default:
      return LogLevel::kDebug;
  }
}

void ForwardDpdkLogText(std::string_view text, uint32_t dpdk_level) {
  PartialLine& partial = t_partial;
  for (size_t newline; (newline = text.find('\n')) != std::string_view::npos;) {
    if (partial.text.empty()) {
      LogDpdkLine(text.substr(0, newline), dpdk_level);
    } else {
      partial.text.append(text.substr(0, newline));
      LogDpdkLine(partial.text, partial.dpdk_level);
      partial.text.clear();
    }
    text.remove_prefix(newline + 1);
  }
  if (text.empty()) return;
  if (partial.text.empty()) partial.dpdk_level = dpdk_level;
  partial.text.append(text);
}

std::unique_ptr<DpdkLogForwarder> DpdkLogForwarder::Install() {
  // One stream for the process, never closed: a thread DPDK started and never stops (rte_vhost's
  // socket thread) may have taken it from rte_log_get_stream() just before an uninstall. Kept
  // here, it stays reachable (no leak report) and serves a later Install too.
  static FILE* const stream = [] {
    cookie_io_functions_t functions{};
    functions.write = &WriteToLog;
    FILE* f = fopencookie(nullptr, "w", functions);
    // Line-buffered is enough: DPDK flushes after every message anyway.
    if (f != nullptr) setvbuf(f, nullptr, _IOLBF, 0);
    return f;
  }();
  if (stream == nullptr) return nullptr;
  rte_openlog_stream(stream);
  return std::unique_ptr<DpdkLogForwarder>(new DpdkLogForwarder());
}

DpdkLogForwarder::~DpdkLogForwarder() { rte_openlog_stream(nullptr); }

}  // namespace pollux
