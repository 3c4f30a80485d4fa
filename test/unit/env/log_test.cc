// Log levels (parsing, names, the process-wide threshold), the line format, and DPDK's lines
// forwarded as pollux's.
#include "pollux/env/log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rte_log.h>
#include <stdlib.h>
#include <time.h>

#include <chrono>
#include <optional>
#include <string>

#include "dpdk_log.h"

namespace pollux {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

// Sets TZ for the scope of a test (local time is what the log prints), then restores it.
class ScopedTimeZone {
 public:
  explicit ScopedTimeZone(const char* tz) {
    if (const char* old = getenv("TZ")) saved_ = old;
    setenv("TZ", tz, 1);
    tzset();
  }
  ~ScopedTimeZone() {
    if (saved_) {
      setenv("TZ", saved_->c_str(), 1);
    } else {
      unsetenv("TZ");
    }
    tzset();
  }
  ScopedTimeZone(const ScopedTimeZone&) = delete;
  ScopedTimeZone& operator=(const ScopedTimeZone&) = delete;

 private:
  std::optional<std::string> saved_;
};

std::chrono::system_clock::time_point At(int64_t seconds, int64_t microseconds) {
  return std::chrono::system_clock::time_point(std::chrono::seconds(seconds) +
                                               std::chrono::microseconds(microseconds));
}

// 2026-12-06 03:49:05 UTC.
constexpr int64_t kDecember6 = 1796528945;

TEST(LogLevelTest, ParsesEveryNameCaseInsensitively) {
  const std::pair<const char*, LogLevel> cases[] = {
      {"error", LogLevel::kError},    {"warning", LogLevel::kWarning},
      {"notice", LogLevel::kNotice},  {"info", LogLevel::kInfo},
      {"debug", LogLevel::kDebug},    {"DEBUG", LogLevel::kDebug},
      {"Warning", LogLevel::kWarning}};
  for (const auto& [name, level] : cases) {
    auto parsed = ParseLogLevel(name);
    ASSERT_TRUE(parsed.ok()) << name << ": " << parsed.status();
    EXPECT_EQ(*parsed, level) << name;
  }
}

TEST(LogLevelTest, NamesRoundTrip) {
  for (LogLevel level : {LogLevel::kError, LogLevel::kWarning, LogLevel::kNotice, LogLevel::kInfo,
                         LogLevel::kDebug}) {
    auto parsed = ParseLogLevel(LogLevelName(level));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, level);
  }
}

TEST(LogLevelTest, RejectsUnknownNamesWithTheChoices) {
  for (const char* name : {"", "warn", "verbose", "3", "error "}) {
    auto parsed = ParseLogLevel(name);
    ASSERT_FALSE(parsed.ok()) << name;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(parsed.status().message(),
                HasSubstr(absl::StrFormat("unknown log level \"%s\"", name)));
    EXPECT_THAT(parsed.status().message(), HasSubstr("error, warning, notice, info or debug"));
  }
}

TEST(LogLevelTest, ThresholdControlsLogEnabled) {
  LogLevel saved = GetLogLevel();
  EXPECT_EQ(saved, LogLevel::kNotice);  // the documented default
  SetLogLevel(LogLevel::kWarning);
  EXPECT_TRUE(LogEnabled(LogLevel::kError));
  EXPECT_TRUE(LogEnabled(LogLevel::kWarning));
  EXPECT_FALSE(LogEnabled(LogLevel::kNotice));
  EXPECT_FALSE(LogEnabled(LogLevel::kDebug));
  SetLogLevel(LogLevel::kDebug);
  EXPECT_TRUE(LogEnabled(LogLevel::kDebug));
  SetLogLevel(saved);
}

TEST(LogLineFormatTest, DateAndTimeToTheMicrosecondThenComponentLevelMessage) {
  ScopedTimeZone utc("UTC");
  EXPECT_EQ(FormatLogLine(At(kDecember6, 337858), LogLevel::kWarning, "bdev", "disk \"a\" is slow"),
            "[2026-12-06 03:49:05.337858] bdev: warning: disk \"a\" is slow\n");
}

TEST(LogLineFormatTest, PadsEveryFieldWithZeros) {
  ScopedTimeZone utc("UTC");
  // 2027-01-02 03:04:05.000007 UTC.
  EXPECT_EQ(FormatLogLine(At(1798859045, 7), LogLevel::kError, "env", "x"),
            "[2027-01-02 03:04:05.000007] env: error: x\n");
  EXPECT_EQ(FormatLogLine(At(1798859045, 0), LogLevel::kDebug, "env", ""),
            "[2027-01-02 03:04:05.000000] env: debug: \n");
}

TEST(LogLineFormatTest, PrintsLocalTimeAsSpdkDoes) {
  // One hour east of UTC, no daylight saving rule: 04:49 there is 03:49 UTC.
  ScopedTimeZone cet("CET-1");
  EXPECT_EQ(FormatLogLine(At(kDecember6, 337858), LogLevel::kNotice, "app", "started"),
            "[2026-12-06 04:49:05.337858] app: notice: started\n");
  // Local time crosses midnight and the year where UTC does not yet.
  EXPECT_EQ(FormatLogLine(At(1798761599, 999999), LogLevel::kInfo, "app", "late"),
            "[2027-01-01 00:59:59.999999] app: info: late\n");
}

TEST(LogLineFormatTest, NamesEveryLevel) {
  ScopedTimeZone utc("UTC");
  for (LogLevel level : {LogLevel::kError, LogLevel::kWarning, LogLevel::kNotice, LogLevel::kInfo,
                         LogLevel::kDebug}) {
    EXPECT_EQ(FormatLogLine(At(kDecember6, 1), level, "rpc", "m"),
              absl::StrFormat("[2026-12-06 03:49:05.000001] rpc: %s: m\n", LogLevelName(level)));
  }
}

TEST(LogLineFormatTest, ClockBefore1970KeepsTheFractionPositive) {
  ScopedTimeZone utc("UTC");
  // 0.25 s before the epoch is 23:59:59.750000 on the last day of 1969.
  EXPECT_EQ(FormatLogLine(At(0, -250000), LogLevel::kError, "env", "x"),
            "[1969-12-31 23:59:59.750000] env: error: x\n");
}

TEST(LogLevelTest, LogLineWritesOneWholeLine) {
  ::testing::internal::CaptureStderr();
  LogLine(LogLevel::kWarning, "env", "disk \"a\" is slow");
  std::string out = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(out, ContainsRegex("^\\[[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\\."
                                 "[0-9]{6}\\] env: warning: disk \"a\" is slow\n$"));
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1);
}

TEST(LogLevelTest, MacroSkipsDisabledLevels) {
  LogLevel saved = GetLogLevel();
  SetLogLevel(LogLevel::kError);
  ::testing::internal::CaptureStderr();
  PX_LOG(kInfo, "env", "hidden %d", 1);
  PX_LOG(kError, "env", "shown %d", 2);
  std::string out = ::testing::internal::GetCapturedStderr();
  SetLogLevel(saved);
  EXPECT_THAT(out, HasSubstr("] env: error: shown 2\n"));
  EXPECT_THAT(out, Not(HasSubstr("hidden")));
}

TEST(DpdkLogTest, MapsDpdkLevelsToPollux) {
  EXPECT_EQ(LogLevelOfDpdk(RTE_LOG_EMERG), LogLevel::kError);
  EXPECT_EQ(LogLevelOfDpdk(RTE_LOG_ALERT), LogLevel::kError);
  EXPECT_EQ(LogLevelOfDpdk(RTE_LOG_CRIT), LogLevel::kError);
  EXPECT_EQ(LogLevelOfDpdk(RTE_LOG_ERR), LogLevel::kError);
  EXPECT_EQ(LogLevelOfDpdk(RTE_LOG_WARNING), LogLevel::kWarning);
  EXPECT_EQ(LogLevelOfDpdk(RTE_LOG_NOTICE), LogLevel::kNotice);
  EXPECT_EQ(LogLevelOfDpdk(RTE_LOG_INFO), LogLevel::kInfo);
  EXPECT_EQ(LogLevelOfDpdk(RTE_LOG_DEBUG), LogLevel::kDebug);
}

TEST(DpdkLogTest, EachDpdkLineBecomesAPolluxLine) {
  ::testing::internal::CaptureStderr();
  ForwardDpdkLogText("VHOST_CONFIG: (/tmp/v.0) vhost-user server: socket created\nEAL: two\n",
                     RTE_LOG_ERR);
  std::string out = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(out,
              ContainsRegex("^\\[[0-9-]{10} [0-9:]{8}\\.[0-9]{6}\\] dpdk: error: VHOST_CONFIG: "
                            "\\(/tmp/v.0\\) vhost-user server: socket created\n"
                            "\\[[0-9-]{10} [0-9:]{8}\\.[0-9]{6}\\] dpdk: error: EAL: two\n$"));
}

TEST(DpdkLogTest, ALineInPiecesWaitsForItsNewlineWithItsFirstLevel) {
  ::testing::internal::CaptureStderr();
  ForwardDpdkLogText("EAL: one ", RTE_LOG_WARNING);
  ForwardDpdkLogText("line", RTE_LOG_DEBUG);
  std::string before = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(before, "");
  ::testing::internal::CaptureStderr();
  ForwardDpdkLogText(" ends\r\n\n", RTE_LOG_DEBUG);
  std::string out = ::testing::internal::GetCapturedStderr();
  // Trailing whitespace goes; an empty line is dropped.
  EXPECT_THAT(out, ContainsRegex("\\] dpdk: warning: EAL: one line ends\n$"));
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1);
}

TEST(DpdkLogTest, PolluxLevelFiltersDpdkLines) {
  LogLevel saved = GetLogLevel();
  SetLogLevel(LogLevel::kWarning);
  ::testing::internal::CaptureStderr();
  ForwardDpdkLogText("EAL: chatty\n", RTE_LOG_INFO);
  ForwardDpdkLogText("EAL: trouble\n", RTE_LOG_WARNING);
  std::string out = ::testing::internal::GetCapturedStderr();
  SetLogLevel(saved);
  EXPECT_THAT(out, Not(HasSubstr("chatty")));
  EXPECT_THAT(out, HasSubstr("] dpdk: warning: EAL: trouble\n"));
}

}  // namespace
}  // namespace pollux
